"""The controller: observations and message time in, level commands and faults out.

No I/O and no wall clock: every method takes the time it acts on from the message (``ts``) or
from ``now_ms``, so the same inputs always give the same decisions, live or in replay.

For each pole, on every tick, the level is chosen in this order (the first that applies):

1. ``emergency`` — all-on, beats everything;
2. ``override`` — the winning operator override (raised to the segment's floor unless forced);
3. ``follow`` — a road user nearby needs more light than the segment's level;
4. ``traffic`` — the lit segment's measured traffic is trusted: its class's level;
5. ``fallback`` — the lit segment's detectors are silent or stuck: the schedule's level;
6. ``schedule`` — the schedule (0 in daylight).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from streetlight.protocol import CabinetTelemetry, Config, Event, State, Telemetry
from streetlight.registry import Road

from .astro import AstroClock
from .energy import CHINA_GRID_KG_PER_KWH, EnergyMeter, EnergyReport
from .errors import ControllerError, UnknownPoleError
from .faults import Fault, FaultBook
from .faults.cabinets import CabinetRules
from .faults.detect import Detector
from .faults.equipment import EquipmentRules
from .faults.pole_rules import PoleWatch
from .follow import FollowMe
from .overrides import Override, OverrideSet
from .schedule import ScheduleBook
from .tables import fault_table, lighting_table
from .traffic import SegmentTraffic, TrafficEstimator

REASONS = ("schedule", "traffic", "follow", "override", "emergency", "fallback")


@dataclass(frozen=True)
class ControllerConfig:
    report_interval_s: int = 10
    lighting_table: str = ""  # path of a lighting-class table; "" = the shipped one
    fault_table: str = ""
    adaptive: bool = True
    follow: bool = True
    grid_kg_per_kwh: float = CHINA_GRID_KG_PER_KWH
    fallback_after_s: int = 300
    first_fault_seq: int = 1
    min_change: float = 0.5  # level changes smaller than this are not sent


@dataclass(frozen=True, slots=True)
class LevelCommand:
    pole: str
    level: float
    ramp_ms: int
    reason: str


@dataclass(slots=True)
class Decisions:
    commands: list[LevelCommand] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)


class Controller:
    def __init__(self, road: Road, config: ControllerConfig | None = None, schedules: ScheduleBook | None = None) -> None:
        self.road = road
        self.config = cfg = config or ControllerConfig()
        self.lighting = lighting_table(cfg.lighting_table)
        self.fault_rules = fault_table(cfg.fault_table)
        self.interval_ms = cfg.report_interval_s * 1000
        self.schedules = schedules or ScheduleBook.default()
        self.astro = AstroClock(road.lat, road.lon, road.timezone, self.schedules.depression_deg)
        self.index = {p.id: i for i, p in enumerate(road.poles)}
        self.watches = {p.id: PoleWatch(p, self.fault_rules) for p in road.poles}
        self.traffic = TrafficEstimator(road, self.lighting, self.fault_rules, self.interval_ms)
        self.follow = FollowMe(road, self.lighting.follow)
        self.overrides = OverrideSet()
        self.faults = FaultBook(road.id, self.fault_rules.severity, cfg.first_fault_seq)
        self.detector = Detector(road, self.fault_rules, self.interval_ms)
        self.equipment = EquipmentRules(road)
        self.cabinets = CabinetRules(road, self.interval_ms, self.fault_rules.silent_after_intervals)
        self.energy = EnergyMeter(road, self.interval_ms, cfg.grid_kg_per_kwh)
        n = len(road.poles)
        self.level = np.full(n, np.nan)
        self.reason = ["schedule"] * n
        self.floors = np.zeros(n)  # per pole, the level an override may not go under unless forced (last tick)
        self.command_ts = np.full(n, -(2**62), dtype=np.int64)
        self.seg_state: list[SegmentTraffic] = []
        self.seg_floor = np.zeros(len(road.segments))
        self.emergency: tuple[bool, int, str] = (False, 0, "")
        self.rejected: dict[str, int] = {}
        self.start_ms: int | None = None
        self.last_tick_ms: int | None = None
        self._sched_of = [self.schedules.for_pole(p) for p in road.poles]

    # --- observations --------------------------------------------------------------------
    def _idx(self, pole_id: str) -> int | None:
        i = self.index.get(pole_id)
        if i is None:
            self.rejected["unknown_pole"] = self.rejected.get("unknown_pole", 0) + 1
        return i

    def _schedule_level(self, i: int, ts: int) -> float:
        return self.schedules.level_at(self._sched_of[i], ts, self.astro)

    def on_telemetry(self, pole_id: str, t: Telemetry) -> None:
        i = self._idx(pole_id)
        if i is None:
            return
        if self.start_ms is None:
            self.start_ms = t.ts
        cmd = float(self.level[i]) if not np.isnan(self.level[i]) else 0.0
        sun_up = self.astro.sun_elevation(t.ts) > self.fault_rules.day_elevation_deg
        self.watches[pole_id].on_telemetry(t, cmd, int(self.command_ts[i]), sun_up)
        self.equipment.on_telemetry(pole_id, t)
        self.cabinets.on_pole(pole_id, t)
        self.traffic.add(i, t.ts, t.vehicles, t.pedestrians)
        lit = self._schedule_level(i, t.ts) > 0
        self.energy.add(np.array([i]), t.ts, np.array([t.power_w]), np.array([lit]))

    def on_event(self, pole_id: str, e: Event) -> None:
        i = self._idx(pole_id)
        if i is None:
            return
        w = self.watches[pole_id]
        if e.type == "vehicle":
            self.follow.vehicles(np.array([i]), np.array([e.ts], dtype=np.int64),
                                 np.array([float(getattr(e, "speed_kmh", 50.0))]),
                                 np.array([int(getattr(e, "direction", 1))]))
        elif e.type == "pedestrian":
            self.follow.pedestrians(np.array([i]), np.array([e.ts], dtype=np.int64))
        elif e.type == "lamp_fault":
            w.on_lamp_fault(e.ts, str(getattr(e, "code", "")))
        elif e.type == "driver_fault":
            w.on_driver_fault(e.ts, str(getattr(e, "code", "")))
        elif e.type == "day_burner":  # a lamp controller's own diagnosis (LwM2M /3416/0/10)
            w.on_day_burner(e.ts, str(getattr(e, "code", "")))
        elif e.type == "cycling_failure":  # a lamp controller's own diagnosis (LwM2M /3416/0/11)
            w.on_cycling_failure(e.ts, str(getattr(e, "code", "")))
        elif e.type == "reboot":
            self.traffic.reset_pole(i)  # counts restart with the device
        else:
            self.equipment.on_event(pole_id, e)
        w.seen(e.ts)

    def on_cabinet(self, cabinet: str, c: CabinetTelemetry) -> None:
        """A distribution cabinet's report (protocol 1.1)."""
        self.cabinets.on_cabinet(cabinet, c)

    def on_cabinet_status(self, cabinet: str, online: bool, ts_ms: int) -> None:
        self.cabinets.on_status(cabinet, online, ts_ms)

    def on_vehicles(self, pole_idx: np.ndarray, ts: np.ndarray, speed_kmh: np.ndarray, direction: np.ndarray) -> None:
        """Many ``vehicle`` events at once (replay, benchmark): pole indices in road order."""
        self.follow.vehicles(pole_idx, ts, speed_kmh, direction)

    def on_clock(self, pole_id: str, skewed: bool, offset_ms: int, ts_ms: int) -> None:
        """How far a pole's clock is from road time at a reading (``ts_ms``: road time of it), and
        whether road time judges it out of tolerance; ``clock_skew`` follows that judgement."""
        i = self._idx(pole_id)
        if i is None:
            return
        w = self.watches[pole_id]
        if skewed and not w.clock_skewed:
            w.clock_since_ts = ts_ms
        w.clock_skewed, w.clock_offset_ms = skewed, offset_ms

    def on_status(self, pole_id: str, online: bool, ts_ms: int) -> None:
        i = self._idx(pole_id)
        if i is None:
            return
        w = self.watches[pole_id]
        w.online, w.status_ts = online, ts_ms
        if online:
            w.seen(ts_ms)

    def on_state(self, pole_id: str, s: State) -> None:
        i = self._idx(pole_id)
        if i is None:
            return
        self.watches[pole_id].mode = s.mode

    def restore(self, faults: Iterable[Fault] = (), overrides: Iterable[Override] = ()) -> None:
        """Take up stored state after a restart (see ``runtime.state``): live faults keep
        their ids and are not resolved before the rules have seen the road again."""
        self.faults.restore(faults)
        for o in overrides:
            self.set_override(o)

    # --- operator input ------------------------------------------------------------------
    def set_override(self, o: Override) -> None:
        if o.scope == "pole" and o.target not in self.index:
            raise UnknownPoleError(self.road.id, str(o.target))
        if o.scope == "segment" and o.target not in self.road.segment_by_id:
            raise ControllerError(f"segment {o.target!r} is not on road {self.road.id!r}; known: {sorted(self.road.segment_by_id)}")
        self.overrides.set(o)

    def clear_override(self, override_id: str) -> None:
        self.overrides.clear(override_id)

    def set_schedules(self, book: ScheduleBook) -> None:
        """Take a new version of the schedules (an operator edited them)."""
        self.schedules = book
        self.astro = AstroClock(self.road.lat, self.road.lon, self.road.timezone, book.depression_deg)
        self._sched_of = [book.for_pole(p) for p in self.road.poles]

    def set_emergency(self, on: bool, ts_ms: int, actor: str) -> None:
        self.emergency = (on, ts_ms, actor)

    def acknowledge(self, fault_id: str, actor: str, ts_ms: int) -> Fault:
        return self.faults.acknowledge(fault_id, actor, ts_ms)

    def resolve(self, fault_id: str, actor: str, ts_ms: int) -> Fault:
        return self.faults.resolve(fault_id, actor, ts_ms)

    # --- decisions -----------------------------------------------------------------------
    def _arbitrate(self, now: int) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
        n = len(self.road.poles)
        sched = np.array([self._schedule_level(i, now) for i in range(n)])
        follow = self.follow.levels(now) if self.config.follow else np.zeros(n)
        levels = np.zeros(n)
        reasons = ["schedule"] * n
        floors = np.zeros(n)
        emergency = self.emergency[0]
        for i, p in enumerate(self.road.poles):
            lit = sched[i] > 0
            seg = self.seg_state[self.road.arrays.segment[i]]
            if not lit:
                auto, why, floor = 0.0, "schedule", 0.0
            elif self.config.adaptive and seg.trusted:
                auto, why, floor = seg.level, "traffic", seg.floor
            else:
                auto, why, floor = sched[i], ("fallback" if self.config.adaptive else "schedule"), sched[i]
            floors[i] = floor
            if emergency:
                levels[i], reasons[i] = 100.0, "emergency"
                continue
            ov = self.overrides.winner(p, now)
            if ov is not None:
                levels[i], reasons[i] = (ov.level if ov.force else max(ov.level, floor)), "override"
            elif lit and follow[i] > auto:
                levels[i], reasons[i] = follow[i], "follow"
            else:
                levels[i], reasons[i] = auto, why
        return levels, reasons, floors, sched > 0

    def tick(self, now_ms: int) -> Decisions:
        if self.start_ms is None:
            self.start_ms = now_ms
        self.overrides.expire(now_ms)
        stuck = self.traffic.update_stuck(now_ms)
        self.seg_state = self.traffic.evaluate(now_ms)
        levels, reasons, floors, lit = self._arbitrate(now_ms)
        self.floors = floors
        out = Decisions()
        t = self.lighting
        for i, p in enumerate(self.road.poles):
            old = self.level[i]
            self.reason[i] = reasons[i]
            if not np.isnan(old) and abs(levels[i] - old) < self.config.min_change:
                continue
            if reasons[i] == "emergency":
                ramp = t.ramp_emergency_ms
            else:
                ramp = t.ramp_up_ms if np.isnan(old) or levels[i] > old else t.ramp_down_ms
            self.level[i] = levels[i]
            self.command_ts[i] = now_ms
            out.commands.append(LevelCommand(p.id, float(levels[i]), int(ramp), reasons[i]))
        self._account(now_ms, floors, lit)
        supply, covered = self.detector.supply_findings(self.watches, now_ms, self.start_ms)
        pole = self.detector.pole_findings(self.watches, covered, stuck, self.faults.is_live)
        warm = now_ms - self.start_ms > (self.fault_rules.silent_after_intervals + 1) * self.interval_ms
        equipment = self.equipment.findings(now_ms)
        # a cabinet's own word (an open breaker) comes first: for the same feeder it is the finding kept
        cabinets = self.cabinets.findings(now_ms, covered)
        out.faults = self.faults.reconcile(now_ms, cabinets + supply + pole + equipment, may_resolve=warm)
        self.last_tick_ms = now_ms
        return out

    def operator_levels(self, now_ms: int, poles: Iterable[str], ramp_ms: int) -> list[LevelCommand]:
        """The levels of poles an operator has just set, decided at once for those poles alone.

        A pole gets its winning override, raised to the floor the last tick set for it (unless
        forced); emergency all-on still beats it. Every pole named gets a command, even one already
        at its level: the operator asked. Traffic, faults and the rest of the road wait for the
        next tick (at most one tick away), which finds these poles at their level already. Before
        the first tick the floors are unknown: call :meth:`tick` instead.
        """
        if self.last_tick_ms is None:
            raise ControllerError("no tick yet: the segments' floors are unknown, so an operator's level waits for one")
        out = []
        for pole_id in poles:
            i = self.index.get(pole_id)
            if i is None:
                raise UnknownPoleError(self.road.id, pole_id)
            ov = self.overrides.winner(self.road.poles[i], now_ms)
            if self.emergency[0] or ov is None:  # all-on, or no override (expired meanwhile): as the last tick left it
                level, why = self.level_of(pole_id)
            else:
                level, why = (ov.level if ov.force else max(ov.level, float(self.floors[i]))), "override"
                self.level[i], self.reason[i], self.command_ts[i] = level, why, now_ms
            out.append(LevelCommand(pole_id, float(level), ramp_ms, why))
        return out

    def _account(self, now: int, floors: np.ndarray, lit: np.ndarray) -> None:
        nseg = len(self.road.segments)
        seg = self.road.arrays.segment
        for s in range(nseg):
            m = seg == s
            self.seg_floor[s] = float(floors[m].max()) if m.any() else 0.0
        if self.last_tick_ms is None:
            return
        dt = min(now - self.last_tick_ms, 3 * self.interval_ms)
        if dt <= 0:
            return
        under = np.zeros(nseg)
        for s in range(nseg):
            m = (seg == s) & lit
            if m.any() and float(np.min(self.level[m] - floors[m])) < -1e-9:
                under[s] = dt
        self.energy.add_compliance(now, under)

    # --- queries -------------------------------------------------------------------------
    def level_of(self, pole_id: str) -> tuple[float, str]:
        i = self.index.get(pole_id)
        if i is None:
            raise UnknownPoleError(self.road.id, pole_id)
        lv = self.level[i]
        return (0.0 if np.isnan(lv) else float(lv)), self.reason[i]

    def floor_of(self, pole_id: str) -> float:
        """The level no operator override of this pole goes under unless forced, as of the last tick:
        its segment's traffic floor, or the schedule's level while that traffic is not trusted."""
        i = self.index.get(pole_id)
        if i is None:
            raise UnknownPoleError(self.road.id, pole_id)
        return float(self.floors[i])

    def open_faults(self) -> list[Fault]:
        return self.faults.open_faults()

    def segments(self) -> list[SegmentTraffic]:
        """Each segment's measured traffic, class and floor at the last tick."""
        return list(self.seg_state)

    def energy_report(self, night: str | None = None) -> EnergyReport:
        return self.energy.report(night)

    def fallback_config(self, version: int) -> Config:
        return self.schedules.fallback_config(version, self.config.report_interval_s, self.config.fallback_after_s)
