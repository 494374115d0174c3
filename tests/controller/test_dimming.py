"""Schedules, traffic-adaptive dimming, follow-me, overrides and emergency."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.astro import AstroClock
from controller.engine import Controller, ControllerConfig
from controller.errors import ControllerError, TableError, UnknownPoleError
from controller.overrides import Override
from controller.schedule import ScheduleBook
from controller.tables import lighting_table
from streetlight.clock import parse_local
from streetlight.protocol import VehicleEvent
from streetlight.registry import load_road

from .road_stream import RoadStream

ROAD = load_road("nanhuan-1")
ASTRO = AstroClock(ROAD.lat, ROAD.lon, ROAD.timezone, 3.0)


def levels(s: RoadStream) -> list[float]:
    return [s.ctl.level_of(p.id)[0] for p in s.road.poles]


def reasons(s: RoadStream) -> set[str]:
    return {s.ctl.level_of(p.id)[1] for p in s.road.poles}


# --- schedules ---------------------------------------------------------------------------

@pytest.mark.parametrize(("local", "level"), [
    ("2026-11-23 12:00", 0), ("2026-11-23 16:30", 0), ("2026-11-23 17:40", 100), ("2026-11-23 21:59", 100),
    ("2026-11-23 22:00", 75), ("2026-11-23 23:59", 75), ("2026-11-24 00:00", 50), ("2026-11-24 05:00", 50),
    ("2026-11-24 07:00", 0),
])
def test_default_schedule_levels(local, level):
    book = ScheduleBook.default()
    assert book.level_at(book.road_schedule(), parse_local(local), ASTRO) == level


def test_dusk_and_dawn_follow_the_sun():
    winter = ASTRO.dusk_ms(ASTRO.local_date(parse_local("2026-12-21 12:00")))
    summer = ASTRO.dusk_ms(ASTRO.local_date(parse_local("2026-06-21 12:00")))
    w_local = (winter - parse_local("2026-12-21 00:00")) / 3_600_000
    s_local = (summer - parse_local("2026-06-21 00:00")) / 3_600_000
    assert 17.0 < w_local < 17.6 and 19.2 < s_local < 19.8  # Jintan, sun 3 degrees below


def test_calendar_exception_and_most_specific_scope():
    book = ScheduleBook.from_mapping({
        "version": 4,
        "schedules": [
            {"id": "road", "scope": "road", "steps": [{"at": "dusk", "level": 100}, {"at": "23:00", "level": 40},
                                                       {"at": "dawn", "level": 0}],
             "exceptions": [{"name": "fair", "start": "2026-11-25", "end": "2026-11-26",
                             "steps": [{"at": "dusk-10", "level": 100}, {"at": "dawn+10", "level": 0}]}]},
            {"id": "s2", "scope": "segment", "target": "S2", "steps": [{"at": "dusk", "level": 80}, {"at": "dawn", "level": 0}]},
            {"id": "p5", "scope": "pole", "target": "NH-005", "steps": [{"at": "18:30", "level": 60}, {"at": "06:00", "level": 0}]},
        ],
    })
    road_s = book.road_schedule()
    assert book.level_at(road_s, parse_local("2026-11-24 01:00"), ASTRO) == 40
    assert book.level_at(road_s, parse_local("2026-11-26 01:00"), ASTRO) == 100  # night of the 25th: fair
    assert book.for_pole(ROAD.pole("NH-030")).id == "s2"
    assert book.for_pole(ROAD.pole("NH-005")).id == "p5"
    assert book.for_pole(ROAD.pole("NH-060")).id == "road"
    p5 = book.for_pole(ROAD.pole("NH-005"))
    assert book.level_at(p5, parse_local("2026-11-24 18:00"), ASTRO) == 0
    assert book.level_at(p5, parse_local("2026-11-24 18:31"), ASTRO) == 60
    assert ScheduleBook.from_mapping(book.to_mapping()).to_mapping() == book.to_mapping()
    assert book.version == 4


def test_fallback_config_carries_the_road_schedule():
    ctl = Controller(ROAD)
    cfg = ctl.fallback_config(9)
    assert cfg.version == 9 and cfg.report_interval_s == 10
    assert [(s.at, s.level) for s in cfg.fallback.schedule] == [("dusk", 100), ("22:00", 75), ("00:00", 50), ("dawn", 0)]


@pytest.mark.parametrize("bad", [{"schedules": []}, {"schedules": [{"id": "x", "steps": [{"at": "25:00", "level": 1}]}]},
                                 {"schedules": [{"id": "x", "steps": [{"at": "dusk", "level": 120}]}]}])
def test_bad_schedule_is_a_clear_error(bad):
    with pytest.raises(TableError):
        ScheduleBook.from_mapping(bad, "my.yaml")


def test_bad_table_file_names_the_file(tmp_path):
    p = tmp_path / "lighting.yaml"
    p.write_text("classes: []\n")
    with pytest.raises(TableError, match="lighting.yaml"):
        lighting_table(str(p))


# --- traffic-adaptive ----------------------------------------------------------------------

@pytest.mark.parametrize(("per_report", "level"), [(8.0, 100.0), (0.05, 25.0), (1.2, 37.5)])
def test_traffic_selects_the_class_level(per_report, level):
    s = RoadStream(start="2026-11-23 20:00", vehicles_per_report=per_report)
    s.run_minutes(25)
    assert set(levels(s)) == {level}
    assert reasons(s) == {"traffic"}
    t = lighting_table()
    assert all(x >= t.safety_floor for x in levels(s))


def test_until_the_window_fills_the_schedule_holds():
    s = RoadStream(start="2026-11-23 20:00", vehicles_per_report=0.05)
    s.run_minutes(2)
    assert set(levels(s)) == {100.0} and reasons(s) == {"fallback"}


@pytest.mark.parametrize("silence", ["no_counts", "zeros_next_to_busy"])
def test_silent_or_stuck_detectors_never_dim_below_schedule(silence):
    s = RoadStream(start="2026-11-23 20:00", vehicles_per_report=4.0)
    seg2 = {p.id for p in s.road.poles_of_segment("S2")}
    if silence == "no_counts":
        s.patches.append(lambda pid, d: {**d, "vehicles": None, "pedestrians": None} if pid in seg2 else d)
    else:
        s.patches.append(lambda pid, d: {**d, "vehicles": 0, "pedestrians": 0} if pid in seg2 else d)
    s.run_minutes(25)
    seg = {x.segment: x for x in s.ctl.segments()}
    assert not seg["S2"].trusted and seg["S1"].trusted
    for pid in seg2:
        assert s.ctl.level_of(pid) == (100.0, "fallback")  # the schedule's level at 20:00-22:00


def test_rising_traffic_brightens_at_once_and_falls_back_slowly():
    s = RoadStream(start="2026-11-23 20:00", vehicles_per_report=0.05)
    s.run_minutes(20)
    assert set(levels(s)) == {25.0}
    s.vehicles_per_report = 8.0
    s.run(6)  # a minute of heavy traffic
    assert min(levels(s)) > 25.0
    up = [c for d in s.decisions[-6:] for c in d.commands]
    assert up and all(c.ramp_ms <= 2000 for c in up)
    s.vehicles_per_report = 0.05
    s.run_minutes(5)
    assert min(levels(s)) > 25.0  # held: no flap back within the hold time


def test_hysteresis_stops_flapping_at_a_class_boundary():
    lt = lighting_table()
    m3 = next(c for c in lt.classes if c.name == "M3").min_vehicles_h
    s = RoadStream(start="2026-11-23 20:00", vehicles_per_report=m3 / 360 * 1.02)
    s.run_minutes(20)
    before = sum(len(d.commands) for d in s.decisions)
    for k in range(12):  # volume wanders 5 % either side of the threshold
        s.vehicles_per_report = m3 / 360 * (1.05 if k % 2 else 0.95)
        s.run_minutes(2)
    changes = sum(len(d.commands) for d in s.decisions) - before
    assert changes <= 2 * len(s.road.poles)


@settings(max_examples=6, deadline=None)
@given(st.lists(st.floats(0.0, 9.0), min_size=4, max_size=4))
def test_never_under_the_floor(profile):
    s = RoadStream(start="2026-11-23 21:30", vehicles_per_report=profile[0], seed=3)
    for rate in profile:
        s.vehicles_per_report = rate
        s.run_minutes(8)
    rep = s.ctl.energy_report()
    assert all(v == 0 for v in rep.minutes_under_floor.values())
    for seg in s.ctl.segments():
        lv = [s.ctl.level_of(p.id)[0] for p in s.road.poles_of_segment(seg.segment)]
        floor = seg.floor if seg.trusted else 0
        assert min(lv) >= floor


# --- follow-me ---------------------------------------------------------------------------

def test_vehicle_raises_the_poles_ahead_then_they_fall_back():
    s = RoadStream(start="2026-11-24 02:00", vehicles_per_report=0.02)
    s.run_minutes(20)
    assert set(levels(s)) == {25.0}
    s.ctl.on_event("NH-040", VehicleEvent(ts=s.now, seq=1, speed_kmh=54.0, direction=1))
    d = s.ctl.tick(s.now + 1000)
    raised = sorted(c.pole for c in d.commands)
    assert raised and all(c.reason == "follow" and c.level == lighting_table().follow.vehicle_level for c in d.commands)
    idx = [s.ctl.index[p] for p in raised]
    assert min(idx) >= 39 and max(idx) > 40  # ahead (increasing chainage), never behind
    assert "NH-038" not in raised
    s.run(5)
    assert set(levels(s)) == {25.0}


# --- overrides and emergency ------------------------------------------------------------

def test_overrides_priority_expiry_floor_and_emergency():
    s = RoadStream(start="2026-11-23 20:00", vehicles_per_report=0.05)
    s.run_minutes(20)
    now = s.now
    ctl = s.ctl
    ctl.set_override(Override("road-low", "road", None, 10.0, now, now + 60_000, priority=1))
    ctl.set_override(Override("s3-high", "segment", "S3", 90.0, now, now + 600_000, priority=1))
    ctl.set_override(Override("pole", "pole", "NH-060", 60.0, now, None, priority=0))
    s.step()
    assert ctl.level_of("NH-001") == (25.0, "override")  # raised to the floor
    assert ctl.level_of("NH-060") == (90.0, "override")  # segment beats pole on priority
    ctl.set_emergency(True, s.now, "duty-officer")
    d = s.step()
    assert {c.reason for c in d.commands} == {"emergency"} and set(levels(s)) == {100.0}
    assert all(c.ramp_ms == 0 for c in d.commands)
    ctl.set_emergency(False, s.now, "duty-officer")
    s.run(6)  # road override expired, segment one still on
    assert ctl.level_of("NH-001") == (25.0, "traffic")
    assert ctl.level_of("NH-060") == (90.0, "override")
    ctl.clear_override("s3-high")
    s.step()
    assert ctl.level_of("NH-060") == (60.0, "override")
    ctl.set_override(Override("crew", "pole", "NH-061", 0.0, s.now, None, priority=5, force=True))
    s.step()
    assert ctl.level_of("NH-061") == (0.0, "override")
    with pytest.raises(UnknownPoleError):
        ctl.set_override(Override("x", "pole", "NH-999", 10.0, s.now))


def test_an_operator_level_is_decided_at_once_for_its_poles_alone():
    s = RoadStream(start="2026-11-23 20:00", vehicles_per_report=0.05)
    s.run_minutes(20)
    ctl, now = s.ctl, s.now
    with pytest.raises(ControllerError):  # no tick yet: no floors to raise an operator's level to
        Controller(ROAD, ControllerConfig()).operator_levels(now, ["NH-001"], 0)
    before = {p.id: ctl.level_of(p.id) for p in ROAD.poles}
    last_tick = ctl.last_tick_ms
    ctl.set_override(Override("seg", "segment", "S1", 10.0, now, now + 600_000, priority=10))
    ctl.set_override(Override("crew", "pole", "NH-002", 0.0, now, None, priority=10, force=True))
    s1 = [p.id for p in ROAD.poles if p.segment == "S1"]
    cmds = ctl.operator_levels(now, s1, 1500)
    assert [c.pole for c in cmds] == s1 and all(c.ramp_ms == 1500 for c in cmds)
    floor = ctl.floor_of("NH-001")
    assert floor > 10.0  # the test means something: the floor is above what the operator asked
    assert ctl.level_of("NH-001") == (floor, "override")  # raised to the floor of the last tick
    assert ctl.level_of("NH-002") == (0.0, "override")  # forced: under the floor
    # nothing else moved and no tick ran: traffic, faults and the other segments wait for the next
    assert ctl.last_tick_ms == last_tick
    assert all(ctl.level_of(p.id) == before[p.id] for p in ROAD.poles if p.segment != "S1")
    # a pole already at its level is still told (the operator asked); the next tick sends nothing new
    again = ctl.operator_levels(now, ["NH-001"], 0)
    assert [(c.pole, c.level) for c in again] == [("NH-001", floor)]
    assert not [c for c in s.step().commands if c.pole in s1]
    ctl.set_emergency(True, s.now, "duty-officer")
    s.step()
    assert {c.reason for c in ctl.operator_levels(s.now, s1, 0)} == {"emergency"}  # all-on still wins


def test_only_changes_are_commanded_and_each_has_a_reason():
    s = RoadStream(start="2026-11-23 20:00")
    first = s.step()
    assert len(first.commands) == len(s.road.poles)
    again = s.step()
    assert again.commands == []
    assert all(c.reason in {"schedule", "traffic", "follow", "override", "emergency", "fallback"} for c in first.commands)


def test_unknown_pole_is_counted_not_raised():
    ctl = Controller(ROAD, ControllerConfig())
    ctl.on_status("XX-1", True, 1)
    assert ctl.rejected == {"unknown_pole": 1}
    assert np.isnan(ctl.level[0])
