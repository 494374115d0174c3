"""Scenario files: the shipped library loads; a mistake names the file, the line and the problem."""

import numpy as np
import pytest

from simulators.engine import RoadSim
from simulators.errors import ScenarioError
from simulators.faults import Fault, FaultState
from simulators.scenario import load_scenario, shipped_scenarios
from streetlight.errors import StreetlightError

SHIPPED = ["breaker-open", "busy-night", "cabinet-silent", "cable-cut", "clock-skew", "comm-outage", "cycling",
           "day-burning", "demo-night", "driver-fault", "feeder-outage", "hung-camera", "illegal-tap", "lamp-failures",
           "leakage", "normal-night", "pole-struck", "silent-reboot", "stuck-detectors", "voltage-sag"]

GOOD = """\
name: t
road: nanhuan-1
start: "2026-11-23 18:00"
duration: 2h
seed: 4
faults:
  - {type: lamp_failure, pole: NH-012, at: "+30m"}
  - {type: cable_cut, span: [NH-061, NH-060], at: "19:00", until: "+1h45m"}
expected:
  - {type: lamp_failure, pole: NH-012}
  - {type: cable_fault, span: [NH-061, NH-060], within_reports: 9}
"""


def test_the_library_has_every_named_scenario_on_the_93_pole_road():
    assert shipped_scenarios() == SHIPPED
    for name in SHIPPED:
        sc = load_scenario(name)
        assert sc.name == name and len(sc.road.poles) == 93
        # a fault drill lasts half an hour or more, a night a few hours; the demo is a whole night
        assert 30 * 60 <= sc.duration_s <= (13 if name == "demo-night" else 5) * 3600
    cut = load_scenario("cable-cut")
    assert cut.expected[0].span == ("NH-061", "NH-060")
    assert cut.expected[0].after_ms == cut.faults[0].at_ms == cut.start_ms + 45 * 60_000
    assert len(cut.faults[0].poles) == 14  # NH-060 … NH-047, downstream on C2-L1
    # a feeder's faults are expected at the feeder, from the fault on it
    out = load_scenario("feeder-outage")
    assert out.expected[0].feeder == "C1-L2" and out.expected[0].pole is None
    assert out.expected[0].after_ms == out.faults[0].at_ms and len(out.faults[0].poles) == 23
    assert load_scenario("voltage-sag").expected[0].feeder == "C2-L2"


def test_times_resolve_relative_clock_and_expected(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text(GOOD)
    sc = load_scenario(str(f))
    assert sc.faults[0].at_ms == sc.start_ms + 1_800_000
    assert sc.faults[1].at_ms == sc.start_ms + 3_600_000
    assert sc.faults[1].until_ms == sc.start_ms + 6_300_000
    assert sc.expected[1].within_reports == 9 and sc.expected[0].within_reports == 6


@pytest.mark.parametrize(
    ("old", "new", "line", "words"),
    [
        ("pole: NH-012, at", "pole: NH-999, at", 7, "unknown pole 'NH-999'"),
        ('at: "+30m"', 'at: "+3x"', 7, "bad time"),
        ('at: "19:00"', 'at: "23:00"', 8, "outside the scenario"),
        ("type: lamp_failure, pole: NH-012, at", "type: lamp_explodes, pole: NH-012, at", 7, "unknown fault 'lamp_explodes'"),
        ("[NH-061, NH-060], at", "[NH-060, NH-061], at", 8, "not neighbours"),
        ("duration: 2h", "duration: soon", 4, "bad duration"),
        ("seed: 4", "seed: 4\ncolour: red", 6, "colour"),
        ("{type: lamp_failure, pole: NH-012}", "{type: lamp_failure, pole: NH-013}", 10, "no fault"),
        ('pole: NH-012, at: "+30m"}', 'pole: NH-012, at: "+30m", reboot_event: false}', 7, "only cable_cut"),
        ("{type: lamp_failure, pole: NH-012}", "{type: feeder_outage, feeder: C9-L9}", 10, "unknown feeder 'C9-L9'"),
        ("{type: lamp_failure, pole: NH-012}", "{type: feeder_outage, feeder: C1-L2}", 10, "no fault"),
        ("{type: lamp_failure, pole: NH-012}", "{type: comm_loss, cabinet: C9}", 10, "unknown cabinet 'C9'"),
        ('pole: NH-012, at: "+30m"}', 'pole: NH-012, at: "+30m", watts: 500}', 7, "only an illegal_tap"),
    ],
)
def test_a_mistake_names_file_line_and_problem(tmp_path, old, new, line, words):
    f = tmp_path / "broken.yaml"
    assert old in GOOD
    f.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(f))
    err = info.value
    assert isinstance(err, StreetlightError)
    assert err.file == str(f) and err.line == line, str(err)
    assert words in err.problem
    assert str(err).startswith(f"{f}:{line}: ")


def test_bad_yaml_and_missing_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: x\nroad: [unclosed\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(f))
    assert info.value.line is not None and "YAML" in info.value.problem
    with pytest.raises(ScenarioError, match="no such scenario"):
        load_scenario(str(tmp_path / "nope.yaml"))


def test_a_silent_restart_sends_no_reboot_event_and_starts_seq_at_zero():
    sc = load_scenario("silent-reboot")
    cut = sc.faults[0]
    assert cut.type == "cable_cut" and not cut.reboot_event and len(cut.poles) == 14
    for announce in (True, False):
        sim = RoadSim(sc.road, sc.start_ms, sc.seed)
        sim.seq[:] = 500
        state = FaultState(sim)
        f = Fault("cable_cut", sc.start_ms, cut.poles, reboot_event=announce)
        state.apply(f, sc.start_ms, True)
        sim.pending_events.clear()
        state.apply(f, sc.start_ms + 60_000, False)  # repaired: the poles come back
        back = np.array(cut.poles)
        assert (sim.seq[back] == 0).all() and (np.delete(sim.seq, back) == 500).all()
        reboots = [e for e in sim.pending_events if e.type == "reboot"]
        assert len(reboots) == (len(back) if announce else 0)
