"""The compliance judge reads the road's truth: it fails a wrong controller and passes the right one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml

from benchmarks.energy import run_loop, run_scenario_loop
from controller.engine import ControllerConfig
from simulators.engine import RoadSim
from simulators.errors import JudgeTableError
from simulators.judge import judge_compliance, load_table
from simulators.scenario import load_scenario
from simulators.truth import TruthRecorder
from streetlight.clock import parse_local
from streetlight.registry import load_road

ROAD = load_road("nanhuan-1")
CONTROLLER_TABLE = Path(__file__).resolve().parents[2] / "controller" / "data" / "lighting.yaml"


def _evening(config: ControllerConfig | None = None):
    """A weekday evening peak (19:00-20:00) of the road with the controller in the loop."""
    start = parse_local("2026-11-24 19:00")
    return run_loop(ROAD, start, start + 3_600_000, seed=5, step_s=60, config=config)


def test_a_controller_set_to_dim_a_busy_road_to_25_percent_fails_the_judge(tmp_path):
    table = yaml.safe_load(CONTROLLER_TABLE.read_text(encoding="utf-8"))
    for c in table["classes"]:
        c["level"] = 25.0  # every class at the safety floor: the controller believes it complies
    # (follow-me still lifts the poles around each vehicle to 37.5 %)
    wrong = tmp_path / "wrong-lighting.yaml"
    wrong.write_text(yaml.safe_dump(table))
    run = _evening(ControllerConfig(report_interval_s=60, lighting_table=str(wrong)))
    own = run.controller.energy_report()
    assert sum(own.minutes_under_floor.values()) == 0  # by its own beliefs, all is well
    verdict = judge_compliance(run.truth)
    assert verdict.total_under >= 4 * 45, verdict.summary()  # every segment, most of the hour
    assert all(n > 0 for n in verdict.minutes_under.values())
    worst = verdict.worst(1)[0]
    assert worst["got_pct"] <= 37.5 and worst["required_pct"] >= 75.0 and worst["vehicles_h"] > 1500

    right = _evening()
    good = judge_compliance(right.truth)
    assert good.ok, good.summary()
    assert good.dark_segment_minutes == 4 * 60
    assert good.required_pct.min() >= 37.5 and good.required_pct.max() >= 75  # the evening: M4 to M2


def test_a_failed_lamp_is_no_light_and_its_segment_is_under_the_floor():
    t = parse_local("2026-11-24 01:00")
    sim = RoadSim(ROAD, t, seed=9, report_interval_s=60, heartbeat_required=False)  # its own schedule: 50 %
    rec = TruthRecorder(ROAD)
    for k in range(30):
        if k == 10:
            sim.lamp_ok[ROAD.pole("NH-060").index] = False
        t += 60_000
        rec.add(sim.step(t).truth)
        sim.apply_targets(t)
    verdict = judge_compliance(rec.truth())
    assert verdict.minutes_under == {"S1": 0, "S2": 0, "S3": 20, "S4": 0}
    assert verdict.got_pct[-1, 2] == 0.0 and verdict.required_pct[-1, 2] >= 25.0
    assert verdict.night_under == 20 and verdict.twilight_under == 0


def test_the_judge_does_not_ask_for_light_in_daylight():
    t = parse_local("2026-11-24 12:00")
    sim = RoadSim(ROAD, t, seed=9, report_interval_s=60, heartbeat_required=False)
    rec = TruthRecorder(ROAD)
    for _ in range(20):
        t += 60_000
        rec.add(sim.step(t).truth)
    verdict = judge_compliance(rec.truth())
    assert verdict.ok and not verdict.dark.any() and verdict.vehicles_h[-1].min() > 1000


def test_stuck_detectors_on_a_busy_night_are_found_and_the_segment_stays_lit():
    sc = load_scenario("stuck-detectors")
    stuck = sorted(f.label for f in sc.faults)
    assert len(stuck) == 12 and all(ROAD.pole(p).segment == "S3" for p in stuck)
    run = run_scenario_loop(sc)
    # the platform noticed: one detector_stuck alert for each stuck detector, and no other alarm
    opened = {f.fault_id: f for f in run.faults}.values()
    assert sorted(f.pole for f in opened if f.type == "detector_stuck") == stuck
    assert {f.type for f in opened} == {"detector_stuck"}
    first = min(f.first_seen_ts for f in opened)
    assert first - sc.faults[0].at_ms <= 16 * sc.report_interval_s * 1000
    # what the road really got: S3 lit to its real traffic's class all night, nothing under the floor
    verdict = judge_compliance(run.truth)
    assert verdict.ok, verdict.summary()
    s3 = run.truth.segment_of_pole == 2
    surge = (run.truth.t0_ms >= sc.surges[0].start_ms) & (run.truth.t1_ms <= sc.surges[0].end_ms)
    assert run.truth.light_pct[np.ix_(surge, s3)].min() >= 75.0  # not dimmed on the word of stuck detectors
    # and the sensors did lie: the stuck poles counted nothing while vehicles passed them
    idx = [ROAD.pole(p).index for p in stuck]
    assert run.truth.vehicles[np.ix_(surge, idx)].sum() > 1000
    # had the platform trusted their zeros and dimmed S3 to its lowest class, the judge would say so
    dimmed = run.truth.light_pct.copy()
    dimmed[np.ix_(surge, s3)] = 25.0
    lie = judge_compliance(dataclasses.replace(run.truth, light_pct=dimmed))
    assert lie.minutes_under["S3"] >= 40 and lie.minutes_under["S1"] == 0


def test_a_wrong_class_table_is_refused_with_its_file(tmp_path):
    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "simulators" / "judge" /
                           "lighting_classes.yaml").read_text(encoding="utf-8"))
    data["classes"] = list(reversed(data["classes"]))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(JudgeTableError, match=r"bad.yaml: .*busiest"):
        load_table(str(bad))
    assert load_table().classes[0].name == "M1" and load_table().dark_below_lux == 15
