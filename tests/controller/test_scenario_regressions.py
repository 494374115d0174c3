"""Regressions from whole-platform scenario runs: the message sequences that raised false alarms.

* ``cable-cut``: after the repair the 14 dark poles reconnect one by one (their ``online`` status
  arrives with the platform's time, in no particular order) while the controller keeps ticking;
  judged half back, the dark run split into a shorter cable span and comm losses.
* ``day-burning``: a relay welded shut draws full power whatever the level; before sunrise that
  read as two driver faults (at 50 %, then at 0 % after dawn) ahead of the day-burning.
"""

from __future__ import annotations

import numpy as np
import pytest

from controller.faults import FaultBook
from controller.faults.detect import Detector
from controller.faults.pole_rules import PoleWatch
from controller.tables import fault_table
from streetlight.clock import parse_local
from streetlight.protocol import Telemetry
from streetlight.registry import load_road

from .road_stream import RoadStream

INTERVAL_MS = 10_000
FEEDER = "C2-L1"  # cabinet C2 … NH-061 (position 10), NH-060 (11) … NH-047 (24, the far end)


def _cut_and_wait() -> tuple[RoadStream, list[str]]:
    s = RoadStream()
    s.run_minutes(6)
    assert s.events == []
    dark = list(s.road.feeder_by_id[FEEDER].poles[10:])
    assert dark[0] == "NH-060" and dark[-1] == "NH-047"
    for pid in dark:  # the broker publishes each pole's will as its supply goes
        s.ctl.on_status(pid, False, s.now)
    s.silenced |= set(dark)
    s.run(6)
    (cut,) = s.opened()
    assert (cut.type, cut.span) == ("cable_fault", ["NH-061", "NH-060"])
    return s, dark


# the order the statuses arrived in one run, and the far end first (what split off comm losses)
ORDERS = [
    [["NH-056", "NH-057", "NH-058", "NH-059", "NH-060"], ["NH-051", "NH-048", "NH-053"],
     ["NH-054", "NH-047", "NH-049", "NH-052", "NH-050", "NH-055"]],
    [["NH-047", "NH-048", "NH-049", "NH-050", "NH-051"], ["NH-054", "NH-055", "NH-056"],
     ["NH-057", "NH-058", "NH-059", "NH-060"], ["NH-052", "NH-053"]],
]


@pytest.mark.parametrize("waves", ORDERS)
def test_repaired_cut_coming_back_pole_by_pole_is_still_one_fault(waves):
    s, dark = _cut_and_wait()
    assert sorted(p for w in waves for p in w) == sorted(dark)
    for wave in waves:  # each wave: statuses heard, its poles report, a tick before the rest is back
        for pid in wave:
            s.ctl.on_status(pid, True, s.now)
            s.silenced.discard(pid)
        s.step()
    s.run(2)
    assert {f.fault_id for f in s.events} == {s.events[0].fault_id}, [f.summary for f in s.events]
    assert all(f.span == ["NH-061", "NH-060"] for f in s.events)  # never moved to another span
    assert s.events[-1].state == "resolved" and s.ctl.open_faults() == []


def test_part_of_a_run_that_stays_dark_is_judged_after_the_settle_time():
    s, _ = _cut_and_wait()
    still_dark = {"NH-052", "NH-053"}
    for pid in set(s.silenced) - still_dark:
        s.ctl.on_status(pid, True, s.now)
        s.silenced.discard(pid)
    s.run(int(s.ctl.fault_rules.return_settle_intervals))
    assert [f.type for f in s.ctl.open_faults()] == ["cable_fault"]  # held while the run settles
    s.run(3)
    assert sorted((f.type, f.pole) for f in s.ctl.open_faults()) == [("comm_loss", "NH-052"), ("comm_loss", "NH-053")]


# --- a relay stuck closed -------------------------------------------------------------------
ROAD = load_road("nanhuan-1")
POLE = ROAD.pole("NH-050")
FULL_W = 3.0 + POLE.rated_power_w


def _level_walk(day: str) -> list[tuple[int, float, float, int]]:
    """(ts, reported dim, commanded level, command ts) of NH-050 in the day-burning run: at 100 %
    when the relay welds (05:45), told 50 % at 05:45:40, 75 % at 06:23 (traffic), 0 % at dawn
    (06:27:30), each reached over a ramp; reports every 10 s until 07:20."""
    steps = [("05:44:00", 100.0), ("05:45:40", 50.0), ("06:23:00", 75.0), ("06:27:30", 0.0)]
    t0, end = parse_local(f"{day} 05:44:00"), parse_local(f"{day} 07:20:00")
    out, dim, k = [], 100.0, 0
    level, cmd_ts = 100.0, t0 - 60_000
    for ts in range(t0, end, INTERVAL_MS):
        while k + 1 < len(steps) and ts > parse_local(f"{day} {steps[k + 1][0]}"):
            k += 1
            level, cmd_ts = steps[k][1], parse_local(f"{day} {steps[k][0]}")
        dim = level if abs(level - dim) <= 12.5 else dim + np.sign(level - dim) * 12.5  # ramp
        out.append((ts, float(dim), level, cmd_ts))
    return out


def _watch_and_judge(power_of, day: str = "2026-11-24"):
    """Feed NH-050's reports to its watch, judge each report's tick; return the faults seen."""
    from controller.astro import AstroClock

    table = fault_table("")
    astro = AstroClock(ROAD.lat, ROAD.lon, ROAD.timezone, 3.0)
    watches = {p.id: PoleWatch(p, table) for p in ROAD.poles}
    det = Detector(ROAD, table, INTERVAL_MS)
    book = FaultBook(ROAD.id, table.severity)
    stuck = np.zeros(len(ROAD.poles), bool)
    seen = []
    for seq, (ts, dim, level, cmd_ts) in enumerate(_level_walk(day)):
        t = Telemetry(ts=ts, seq=seq, dim=dim, power_w=power_of(dim), voltage_v=221.0)
        watches[POLE.id].on_telemetry(t, level, cmd_ts, astro.sun_elevation(ts) > table.day_elevation_deg)
        seen += book.reconcile(ts + 5_000, det.pole_findings(watches, set(), stuck, book.is_live))
    return seen, table


def test_stuck_relay_is_one_day_burning_at_sunrise_and_no_driver_fault():
    seen, table = _watch_and_judge(lambda dim: FULL_W)
    assert sorted({(f.type, f.pole) for f in seen}) == [("day_burning", "NH-050")], [f.summary for f in seen]
    opened = seen[0]
    sunrise = parse_local("2026-11-24 07:08:00")  # first minute with the sun above 5°
    assert opened.first_seen_ts == sunrise
    assert opened.last_seen_ts - sunrise <= 2 * INTERVAL_MS + 5_000  # the third daylight report's tick
    assert "relay is stuck closed" in opened.summary
    assert opened.evidence["full_output_since_ts"] == parse_local("2026-11-24 05:46:20")  # first at ≤ 60 %


@pytest.mark.parametrize("drift", [1.35, 0.6])
def test_a_driver_off_its_curve_is_still_a_driver_fault(drift):
    """A driver drawing a share more (or less) than its curve follows the level; it is not a stuck
    relay, even where it passes through full power (1.35 × 75 %)."""
    seen, _ = _watch_and_judge(lambda dim: 3.0 + POLE.rated_power_w * dim / 100 * drift)
    types = {f.type for f in seen}
    assert "driver_fault" in types and "day_burning" not in types
