"""A fault stays one fault until the pole really recovers: across level changes and ramps.

Measured on the live road: a driver with one LED string open (half power at every level) on
NH-004 was opened as two faults when the controller moved its level from 50 to 100 %, so a crew
got two work orders for one driver. Here the pole behaves as the simulated one does: it executes
each dim at once, reports the level its ramp has reached at the moment of the report, and draws
half the load power of a healthy driver at that level.
"""

from __future__ import annotations

from controller.engine import Decisions
from controller.overrides import Override

from .road_stream import RoadStream

POLE = "NH-004"


class HalfPowerDriver:
    """NH-004 as the road sees it: ramps to each commanded level, draws half its load power."""

    def __init__(self, s: RoadStream, level: float) -> None:
        self.s = s
        self.rated = s.road.pole(POLE).rated_power_w
        self.ramp = (level, level, 0, 0)  # from, to, start, duration
        self.half = True

    def level_at(self, ts: int) -> float:
        a, b, t0, dur = self.ramp
        if dur <= 0 or ts >= t0 + dur:
            return b
        return a + (b - a) * max(0.0, (ts - t0) / dur)

    def heard(self, d: Decisions) -> None:
        for c in d.commands:
            if c.pole == POLE:
                self.ramp = (self.level_at(self.s.now), c.level, self.s.now, c.ramp_ms)

    def patch(self, pid: str, d: dict) -> dict:
        if pid != POLE:
            return d
        dim = self.level_at(d["ts"])
        load = self.rated * dim / 100 * (0.5 if self.half else 1.0)
        return {**d, "dim": round(dim, 1), "power_w": round(3.0 + load, 1)}


def _road_at(level: float) -> tuple[RoadStream, HalfPowerDriver]:
    s = RoadStream()
    s.ctl.set_override(Override("pin", "pole", POLE, level, s.now, None, priority=5, force=True))
    s.run_minutes(6)
    assert s.events == [], [f.summary for f in s.events]
    dev = HalfPowerDriver(s, level)
    dev.half = False
    s.patches.append(dev.patch)
    return s, dev


def _run(s: RoadStream, dev: HalfPowerDriver, minutes: float) -> None:
    for _ in range(int(minutes * 6)):
        dev.heard(s.step())


def _set(s: RoadStream, level: float) -> None:
    s.ctl.set_override(Override("pin", "pole", POLE, level, s.now, None, priority=5, force=True))


def _driver_faults(s: RoadStream) -> list:
    return [f for f in s.events if f.type == "driver_fault"]


def test_half_power_driver_is_one_fault_across_level_changes_and_ramps():
    s, dev = _road_at(50.0)
    dev.half = True
    _run(s, dev, 3)
    opened = s.opened("driver_fault")
    assert [f.pole for f in opened] == [POLE]
    for level in (100.0, 50.0, 100.0, 20.0, 100.0):  # ramp up 2 s, down 60 s, and a level too low to see it
        _set(s, level)
        _run(s, dev, 3)
    faults = _driver_faults(s)
    assert len({f.fault_id for f in faults}) == 1, [(f.fault_id, f.state, f.summary) for f in faults]
    assert all(f.state == "open" for f in faults)
    assert s.types_opened() == ["driver_fault"]


def test_a_repaired_driver_clears_once_seen_good_at_a_settled_level():
    s, dev = _road_at(100.0)
    dev.half = True
    _run(s, dev, 2)
    (fault,) = s.opened("driver_fault")
    dev.half = False  # the crew replaced the driver
    _run(s, dev, 2)
    last = _driver_faults(s)[-1]
    assert (last.fault_id, last.state) == (fault.fault_id, "resolved")
    assert len(s.opened("driver_fault")) == 1


def test_good_reports_at_a_level_too_low_to_show_the_fault_do_not_clear_it():
    s, dev = _road_at(100.0)
    dev.half = True
    _run(s, dev, 2)
    (fault,) = s.opened("driver_fault")
    _set(s, 20.0)  # half of 20 % is within the power tolerance: no evidence either way
    _run(s, dev, 4)
    assert _driver_faults(s)[-1].state == "open"
    assert [f.fault_id for f in s.ctl.open_faults()] == [fault.fault_id]
