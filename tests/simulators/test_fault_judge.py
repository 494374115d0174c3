"""The one scenario judge, on synthetic alert lists: each of its rules can fail a run."""

from __future__ import annotations

import orjson

from simulators.judge import format_table, judge_faults, timeline_of
from simulators.scenario import Expected, load_scenario
from simulators.truth import FaultSpan
from streetlight.protocol import parse_alert

INTERVAL_S = 10
T0 = 1_000_000  # the fault's first evidence
CUT = ("NH-061", "NH-060")


def alert(fid: str, type_: str, state: str, opened: int, pole: str | None = None,
          span: tuple[str, str] | None = None, feeder: str | None = None, first_seen: int | None = None) -> dict:
    return {"fault_id": fid, "type": type_, "state": state, "pole": pole, "span": list(span) if span else None,
            "feeder": feeder, "first_seen_ts": first_seen if first_seen is not None else opened - 30_000,
            "last_seen_ts": opened}


def lamp(within: int = 3, after: int = T0, pole: str = "NH-012") -> Expected:
    return Expected("lamp_failure", pole, None, within, after)


def test_delay_runs_from_first_evidence_to_the_tick_the_alert_opened_on():
    # first_seen_ts is backdated to where the evidence began: it must not shorten the delay
    v = judge_faults([Expected("cable_fault", None, CUT, 4, T0)],
                     [alert("F-1", "cable_fault", "open", T0 + 35_000, span=CUT, first_seen=T0 - 5_000),
                      alert("F-1", "cable_fault", "open", T0 + 60_000, span=CUT),
                      alert("F-1", "cable_fault", "resolved", T0 + 900_000, span=CUT)], INTERVAL_S)
    assert v.passed, format_table(v)
    assert v.rows[0].delay_reports == 3.5 and v.rows[0].fault_ids == ["F-1"]


def test_a_late_alert_misses():
    v = judge_faults([lamp(within=2)], [alert("F-1", "lamp_failure", "open", T0 + 25_000, "NH-012")], INTERVAL_S)
    assert not v.passed and "later than 2" in v.rows[0].note and v.rows[0].delay_reports == 2.5


def test_an_alert_opened_before_the_first_evidence_is_a_false_alarm_not_a_delay_of_zero():
    v = judge_faults([lamp()], [alert("F-1", "lamp_failure", "open", T0 - 10_000, "NH-012")], INTERVAL_S)
    assert not v.passed
    assert v.rows[0].delay_reports is None and "before the first evidence" in v.rows[0].note
    assert [fa.opening.fault_id for fa in v.false_alarms] == ["F-1"]
    assert "before the fault's first evidence" in v.false_alarms[0].why
    # an early alert beside an on-time one: the row is met, the early one still fails the run
    v2 = judge_faults([lamp()], [alert("F-1", "lamp_failure", "open", T0 - 10_000, "NH-012"),
                                 alert("F-1", "lamp_failure", "resolved", T0 - 5_000, "NH-012"),
                                 alert("F-2", "lamp_failure", "open", T0 + 10_000, "NH-012")], INTERVAL_S)
    assert v2.rows[0].ok and v2.rows[0].fault_ids == ["F-2"]
    assert not v2.passed and [fa.opening.fault_id for fa in v2.false_alarms] == ["F-1"]


def test_one_failure_opened_as_two_faults_fails_while_it_was_never_repaired():
    alerts = [alert("F-1", "driver_fault", "open", T0 + 20_000, "NH-004"),
              alert("F-1", "driver_fault", "resolved", T0 + 200_000, "NH-004"),
              alert("F-2", "driver_fault", "open", T0 + 260_000, "NH-004")]
    exp = [Expected("driver_fault", "NH-004", None, 3, T0)]
    never = [FaultSpan("driver_degradation", "pole", "NH-004", ("NH-004",), "C1-L1", T0, None)]
    v = judge_faults(exp, alerts, INTERVAL_S, never)
    assert not v.passed and v.rows[0].fault_ids == ["F-1", "F-2"]
    assert "one failure opened as 2 faults" in v.rows[0].note and v.unmet == exp
    assert "MISS: one failure opened as 2 faults" in format_table(v)
    # repaired in between: the second opening is no longer the same failure, but still unexpected
    repaired = [FaultSpan("driver_degradation", "pole", "NH-004", ("NH-004",), "C1-L1", T0, T0 + 230_000)]
    v2 = judge_faults(exp, alerts, INTERVAL_S, repaired)
    assert v2.rows[0].ok and [fa.opening.fault_id for fa in v2.false_alarms] == ["F-2"] and not v2.passed


def test_the_same_place_twice_with_two_injections_is_two_expectations():
    second = T0 + 600_000
    timeline = [FaultSpan("lamp_failure", "pole", "NH-012", ("NH-012",), None, T0, T0 + 300_000),
                FaultSpan("lamp_failure", "pole", "NH-012", ("NH-012",), None, second, None)]
    v = judge_faults([lamp(after=second), lamp()],
                     [alert("F-1", "lamp_failure", "open", T0 + 10_000, "NH-012"),
                      alert("F-2", "lamp_failure", "open", second + 10_000, "NH-012")], INTERVAL_S, timeline)
    assert v.passed, format_table(v)
    assert [r.fault_ids for r in v.rows] == [["F-2"], ["F-1"]]  # rows in the scenario's order


def test_wrong_place_and_unexpected_alerts_are_false_alarms():
    wrong = judge_faults([lamp()], [alert("F-1", "lamp_failure", "open", T0 + 10_000, "NH-013")], INTERVAL_S)
    assert not wrong.passed and wrong.rows[0].reported == "pole NH-013"
    assert "not reported at the expected place" in wrong.rows[0].note
    assert [fa.opening.pole for fa in wrong.false_alarms] == ["NH-013"]
    table = format_table(wrong)
    assert "MISS" in table and "FALSE ALARM: matches no expectation" in table
    assert judge_faults([], [], INTERVAL_S).passed
    assert not judge_faults([], [alert("F-9", "comm_loss", "open", 5, "NH-001")], INTERVAL_S).passed
    # updates and resolutions of an expected fault are not alarms of their own
    v = judge_faults([lamp()], [alert("F-1", "lamp_failure", "open", T0 + 10_000, "NH-012"),
                                alert("F-1", "lamp_failure", "acknowledged", T0 + 20_000, "NH-012"),
                                alert("F-1", "lamp_failure", "resolved", T0 + 90_000, "NH-012")], INTERVAL_S)
    assert v.passed


def test_feeder_faults_are_judged_at_their_feeder():
    exp = [Expected("voltage_out_of_band", None, None, 3, T0, "C1-L1")]
    ok = judge_faults(exp, [alert("F-1", "voltage_out_of_band", "open", T0 + 20_000, feeder="C1-L1")], INTERVAL_S)
    assert ok.passed and ok.rows[0].reported == "feeder C1-L1"
    other = judge_faults(exp, [alert("F-1", "voltage_out_of_band", "open", T0 + 20_000, feeder="C1-L2")], INTERVAL_S)
    assert not other.passed


def test_alert_models_as_the_collector_keeps_them_are_judged_alike():
    body = {**alert("F-1", "lamp_failure", "open", T0 + 10_000, "NH-012"), "severity": "major",
            "road": "nanhuan-1", "summary": "lamp dark"}
    model = parse_alert(orjson.dumps(body))
    v = judge_faults([lamp()], [model], INTERVAL_S)
    assert v.passed and v.rows[0].delay_reports == 1.0


def test_timeline_of_a_scenario_says_when_each_fault_ends():
    sc = load_scenario("cable-cut")
    (span,) = timeline_of(sc.faults)
    assert (span.type, span.label) == ("cable_cut", "NH-061/NH-060")
    assert span.began_ms == sc.expected[0].after_ms and span.ended_ms is not None and span.ended_ms > span.began_ms
