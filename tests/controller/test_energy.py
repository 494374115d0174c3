"""Energy accounting, and the energy benchmark's claims on a short run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from controller.energy import EnergyMeter
from controller.errors import EnergyStateError
from streetlight.clock import parse_local
from streetlight.registry import load_road

from .road_stream import RoadStream

ROAD = load_road("nanhuan-1")


def test_meter_integrates_power_over_lit_time_only():
    m = EnergyMeter(ROAD, interval_ms=60_000, grid_kg_per_kwh=0.5)
    t0 = parse_local("2026-11-23 20:00")
    i = np.array([2])  # NH-003, rated 150 W
    for k in range(61):  # one hour at 75 W
        m.add(i, t0 + k * 60_000, np.array([75.0]), np.array([True]))
    for k in range(1, 61):  # then an hour of daylight at standby: not counted
        m.add(i, t0 + (60 + k) * 60_000, np.array([3.0]), np.array([False]))
    r = m.report()
    assert r.pole_kwh["NH-003"] == pytest.approx(0.075 + (75 + 3) / 2 / 1000 / 60, rel=1e-6)
    assert r.baseline_kwh == pytest.approx(0.150 + 0.150 / 60, rel=1e-6)
    assert r.savings_pct == pytest.approx(100 * (1 - r.road_kwh / r.baseline_kwh))
    assert r.co2_kg == pytest.approx(r.savings_kwh * 0.5)
    assert r.segment_kwh["S1"] == pytest.approx(r.road_kwh)
    assert m.nights() == ["2026-11-23"]


def test_gaps_are_not_bridged_and_nights_split_at_noon():
    m = EnergyMeter(ROAD, interval_ms=10_000)
    t0 = parse_local("2026-11-24 05:00")
    i = np.array([0])
    m.add(i, t0, np.array([200.0]), np.array([True]))
    m.add(i, t0 + 3_600_000, np.array([200.0]), np.array([True]))  # an hour of silence: not counted
    assert m.report().road_kwh == 0
    m.add(i, t0 + 3_610_000, np.array([200.0]), np.array([True]))
    assert m.nights() == ["2026-11-23"]  # 6 am belongs to the night that began the evening before


def test_controller_meters_a_dimmed_night_with_savings_and_no_time_under_floor():
    s = RoadStream(start="2026-11-23 23:00", vehicles_per_report=0.4)
    s.run_minutes(60)
    r = s.ctl.energy_report()
    assert r.savings_pct > 40 and r.road_kwh > 0
    assert set(r.minutes_under_floor.values()) == {0.0}
    assert r.to_dict()["night"] == "all"


@pytest.mark.slow
def test_energy_bench_quick_meets_the_target_on_the_truth():
    from benchmarks.energy import run

    rows = {r["case"]: r for r in run(quick=True)}
    full, step, adaptive = rows["full power"], rows["midnight step"], rows["adaptive"]
    stuck = rows["adaptive, 5 % detectors stuck"]
    assert full["saved_pct"] == 0 and full["segment_minutes_under_floor"] == 0
    for r in (adaptive, stuck):  # real power through the driver curve, judged on the real traffic
        assert r["saved_pct"] >= 40 and r["under_floor_at_night"] == 0
        # the only minutes short of the standard are at switch-on and switch-off (docs/benchmarks.md)
        assert r["segment_minutes_under_floor"] == r["under_floor_at_twilight"]
        assert r["controller_minutes_under_floor"] == 0
    assert step["saved_pct"] < adaptive["saved_pct"]
    assert adaptive["open_faults"] == 0
    assert stuck["detector_stuck_found"] == stuck["detectors_stuck"] and len(stuck["detectors_stuck"]) == 5


def test_meter_state_round_trips_through_json_mid_night():
    t0 = parse_local("2026-11-23 21:00")
    rng = np.random.default_rng(3)
    power = rng.uniform(40, 150, size=(120, len(ROAD.poles)))
    idx = np.arange(len(ROAD.poles))
    whole = EnergyMeter(ROAD, interval_ms=10_000)
    first = EnergyMeter(ROAD, interval_ms=10_000)
    for k in range(60):
        for m in (whole, first):
            m.add(idx, t0 + k * 10_000, power[k], np.ones(len(idx), dtype=bool))
            m.add_compliance(t0 + k * 10_000, np.array([1000.0 * (k % 2)] + [0.0] * (len(ROAD.segments) - 1)))
    second = EnergyMeter(ROAD, interval_ms=10_000)  # a new process takes the saved state up
    second.restore(json.loads(json.dumps(first.state())))
    for k in range(60, 120):
        for m in (whole, second):
            m.add(idx, t0 + k * 10_000, power[k], np.ones(len(idx), dtype=bool))
            m.add_compliance(t0 + k * 10_000, np.zeros(len(ROAD.segments)))
    assert second.report("2026-11-23") == whole.report("2026-11-23")
    assert whole.report().road_kwh > 0 and whole.report().minutes_under_floor["S1"] == 0.5
    bad = first.state() | {"poles": 3}
    with pytest.raises(EnergyStateError, match="nanhuan-1"):
        EnergyMeter(ROAD, interval_ms=10_000).restore(bad)
    with pytest.raises(EnergyStateError, match="malformed"):
        EnergyMeter(ROAD, interval_ms=10_000).restore(first.state() | {"wh": None})
