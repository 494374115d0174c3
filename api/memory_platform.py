"""An in-memory road that behaves like the live platform behind :class:`api.platform.PlatformPort`.

Used by the API's tests (beside the live platform) and the API benchmark's baseline. A dim is one
command per pole, raised to the segment's floor unless forced (this road measures no traffic: a
lit segment's floor is the lighting table's safety floor), and answered after ``ack_delay_s`` on a
background thread (an offline pole's command expires after ``expire_s``); levels change and live
events flow. The rules are the controller's: the fault lifecycle (``controller.faults.lifecycle``)
and the schedule entries' compilation (``controller.schedule_entries``). Faults are injected with
:meth:`MemoryPlatform.inject_fault`; readings and energy are synthetic but deterministic, time
under the floor counted as violations.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import zlib
from dataclasses import replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from controller.errors import FaultStateError
from controller.faults import lifecycle
from controller.schedule import night_of
from controller.schedule_entries import entries_to_book
from controller.tables import lighting_table
from streetlight.clock import wall_ms
from streetlight.registry import Road, format_chainage

from .platform import (
    DEFAULT_OVERRIDE_MS,
    CabinetReport,
    Command,
    Conflict,
    Decision,
    Energy,
    FaultView,
    LiveEvent,
    NotFound,
    PoleEnergy,
    PoleStatus,
    QueueSubscription,
    RoadTime,
    Schedule,
    SegmentEnergy,
    Subscribers,
    TwinView,
    active_schedule_ids,
    command_event,
    explain,
    port_of,
    twin_event,
)
from .schedule_defaults import default_schedules

SIDE_WORDS = {"N": "north", "S": "south", "E": "east", "W": "west"}


class MemoryPlatform:
    def __init__(self, road: Road, ack_delay_s: float = 0.05, expire_s: float = 2.0) -> None:
        self.roads: dict[str, Road] = {road.id: road}
        self.ack_delay_s = ack_delay_s
        self.expire_s = expire_s
        self._lock = threading.RLock()
        now = wall_ms()
        self._twins: dict[str, dict[str, dict[str, Any]]] = {
            road.id: {p.id: {"pole": p.id, "online": True, "level": 100.0, "reason": "schedule",
                             "mode": "auto", "last_seen_ms": now, "power_w": p.rated_power_w}
                      for p in road.poles}
        }
        self._commands: dict[str, Command] = {}
        self.maintenance_windows: dict[tuple[str, str], tuple[int, int]] = {}
        lighting = lighting_table()
        self._floor, self._floor_class = lighting.safety_floor, lighting.classes[-1].name
        self._under_since: dict[str, int] = {}  # pole -> when it went under the floor (forced)
        self._under_floor_ms: dict[tuple[str, str], int] = {}  # (night, segment) -> ms spent under
        self._faults: dict[str, dict[str, Any]] = {}
        self._schedules: dict[str, Schedule] = {str(s.id): s for s in default_schedules(road)}
        self._emergency: set[str] = set()
        self.live = Subscribers()
        self._ids = itertools.count(1)
        self._fault_ids = itertools.count(1)
        self._due: list[tuple[float, int, str, str]] = []  # (monotonic due, tiebreak, cmd_id, pole)
        self._wake = threading.Condition(self._lock)
        self._stop = False
        self.stats_counters = {"messages_in_total": 0.0, "messages_rejected_total": 0.0,
                               "points_written_total": 0.0, "spool_depth": 0.0,
                               "command_latency_seconds": 0.0}
        self._worker = threading.Thread(target=self._run, name="memory-platform-acks", daemon=True)
        self._worker.start()

    # ----------------------------------------------------------------- lifecycle and events
    def close(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        self._worker.join(timeout=2)

    def subscribe(self) -> QueueSubscription:
        return self.live.subscribe()

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        self.live.emit(LiveEvent(kind=kind, data=dict(data), ts_ms=wall_ms()))

    def now_ms(self) -> int:
        return wall_ms()

    def road_time(self, road: str) -> RoadTime:
        self._road(road)
        return RoadTime(wall_ms(), "wall")

    def ready(self) -> dict[str, bool]:
        # nothing to reach, and this road's time is the wall clock's: known from the start
        return {"broker": True, "database": True, "road_time": True}

    def stats(self) -> dict[str, float]:
        with self._lock:
            return dict(self.stats_counters)

    # ----------------------------------------------------------------- twins
    def _road(self, road: str) -> Road:
        if road not in self.roads:
            raise NotFound("road", road, f"known roads: {', '.join(self.roads)}")
        return self.roads[road]

    def twin(self, road: str, pole: str) -> TwinView | None:
        with self._lock:
            t = self._twins.get(road, {}).get(pole)
            return TwinView(**t) if t else None

    def twins(self, road: str) -> list[TwinView]:
        self._road(road)
        with self._lock:
            return [TwinView(**t) for t in self._twins[road].values()]

    def set_online(self, road: str, pole: str, online: bool) -> None:
        with self._lock:
            t = self._twins[road][pole]
            t["online"] = online
            self._emit("twin", twin_event(road, TwinView(**t)))

    def _set_level(self, road: str, pole: str, level: float, reason: str) -> None:
        t = self._twins[road][pole]
        now = wall_ms()
        since = self._under_since.pop(pole, None)
        if since is not None:  # time spent under the floor, counted for the night it began in
            key = (night_of(since, self.roads[road].timezone).isoformat(), self.roads[road].pole(pole).segment)
            self._under_floor_ms[key] = self._under_floor_ms.get(key, 0) + now - since
        if level < self._floor:
            self._under_since[pole] = now
        rated = self.roads[road].pole(pole).rated_power_w
        t.update(level=float(level), reason=reason, last_seen_ms=wall_ms(),
                 power_w=round(rated * level / 100.0, 1), mode="manual" if reason != "schedule" else "auto")
        self.stats_counters["messages_in_total"] += 1
        self._emit("twin", twin_event(road, TwinView(**t)))

    # ----------------------------------------------------------------- commands
    def _new_command(self, road: str, type_: str, pole: str, actor: str, level: float | None = None,
                     ramp_ms: int | None = None, expires_ms: int | None = None, force: bool = False,
                     decision: Decision | None = None, **equipment: Any) -> Command:
        cmd = Command(cmd_id=f"c-{next(self._ids):06d}", type=type_, road=road, pole=pole, issued_ms=wall_ms(),
                      actor=actor, status=PoleStatus("pending"), level=level, ramp_ms=ramp_ms,
                      expires_ms=expires_ms, force=force, decision=decision, **equipment)
        with self._wake:
            self._commands[cmd.cmd_id] = cmd
            delay = self.ack_delay_s if self._twins[road][pole]["online"] else self.expire_s
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._ids), cmd.cmd_id, pole))
            self._wake.notify_all()
        return cmd

    def _check_poles(self, road: str, poles: list[str]) -> Road:
        r = self._road(road)
        for p in poles:
            if not r.has_pole(p):
                raise NotFound("pole", p, f"road {road} has {r.poles[0].id} … {r.poles[-1].id}")
        return r

    def dim(self, road: str, poles: list[str], level: float, ramp_ms: int, expires_ms: int | None,
            actor: str, force: bool = False) -> list[Command]:
        """One command per pole, as on the live platform: the level raised to the segment's floor unless
        forced. This road measures no traffic, so every lit segment's floor is the lighting table's
        safety floor, the level of its lightest class."""
        r = self._check_poles(road, poles)
        expires = expires_ms if expires_ms is not None else wall_ms() + DEFAULT_OVERRIDE_MS
        emergency = road in self._emergency
        out = []
        for p in poles:
            applied = 100.0 if emergency else level if force else max(level, self._floor)
            seg = r.pole(p).segment
            decision = explain(float(level), applied, segment=seg, floor=self._floor, force=force,
                               emergency=emergency, traffic_class=self._floor_class,
                               basis=f"lighting class {self._floor_class}, the road's safety floor")
            out.append(self._new_command(road, "dim", p, actor, level=applied, ramp_ms=ramp_ms, expires_ms=expires,
                                         force=force, decision=decision))
        return out

    def identify(self, road: str, pole: str, seconds: int, actor: str) -> Command:
        self._check_poles(road, [pole])
        return self._new_command(road, "identify", pole, actor)

    def switch_port(self, road: str, pole: str, port: str, on: bool, actor: str) -> Command:
        port_of(self._check_poles(road, [pole]), pole, port)
        return self._new_command(road, "port", pole, actor, port=port, on=on)

    def power_cycle(self, road: str, pole: str, port: str, off_s: int, actor: str) -> Command:
        port_of(self._check_poles(road, [pole]), pole, port)
        return self._new_command(road, "power_cycle", pole, actor, port=port, off_s=off_s)

    def maintenance(self, road: str, pole: str, minutes: int, actor: str) -> tuple[int, int]:
        """The window is kept (``maintenance_windows``); this road's doors never open on their own."""
        self._check_poles(road, [pole])
        now = wall_ms()
        with self._lock:
            self.maintenance_windows[(road, pole)] = (now, now + minutes * 60_000)
        return now, now + minutes * 60_000

    def cabinet(self, road: str, cabinet: str) -> CabinetReport:
        """No cabinet reports in memory: the registry's side only (``online`` unknown)."""
        r = self._road(road)
        if cabinet not in r.cabinet_by_id:
            raise NotFound("cabinet", cabinet, f"road {road} has {', '.join(r.cabinet_by_id)}")
        return CabinetReport()

    def command(self, cmd_id: str) -> Command | None:
        with self._lock:
            return self._commands.get(cmd_id)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stop and (not self._due or self._due[0][0] > time.monotonic()):
                    timeout = (self._due[0][0] - time.monotonic()) if self._due else None
                    self._wake.wait(timeout=timeout)
                if self._stop:
                    return
                _, _, cmd_id, pole = heapq.heappop(self._due)
                self._settle(cmd_id, pole)

    def _settle(self, cmd_id: str, pole: str) -> None:
        cmd = self._commands[cmd_id]
        road, twin = cmd.road, self._twins[cmd.road][pole]
        now = wall_ms()
        if not twin["online"]:
            status = PoleStatus("expired", error="no ack from the pole before the command expired")
        elif cmd.type == "dim" and cmd.level is not None:
            emergency = road in self._emergency
            level = 100.0 if emergency else cmd.level
            self._set_level(road, pole, level, "emergency" if emergency else "override")
            status = PoleStatus("acked", dim=level, ack_ms=now)
        else:
            status = PoleStatus("acked", dim=twin["level"], ack_ms=now)
        self._commands[cmd_id] = cmd = replace(cmd, status=status)
        self.stats_counters["command_latency_seconds"] = (now - cmd.issued_ms) / 1000.0
        self._emit("command", command_event(cmd))

    def emergency(self, road: str, on: bool, actor: str) -> None:
        r = self._road(road)
        with self._lock:
            if on:
                self._emergency.add(road)
            else:
                self._emergency.discard(road)
        if on:
            for p in r.pole_ids:
                self._new_command(road, "dim", p, actor, level=100.0, ramp_ms=0)

    def emergency_active(self, road: str) -> bool:
        self._road(road)
        return road in self._emergency

    # ----------------------------------------------------------------- faults
    def inject_fault(self, road: str, type: str = "lamp_failure", pole: str | None = None,
                     span: tuple[str, str] | None = None, severity: str = "major") -> FaultView:
        """Open a fault as the controller would, with its location from the registry."""
        r = self._road(road)
        where = r.pole(pole or (span[1] if span else r.poles[0].id))
        first = r.pole(span[0]) if span else where
        chain = (first.chainage_m + where.chainage_m) / 2
        place = f"{format_chainage(chain)}, {SIDE_WORDS.get(where.side, where.side)} side, segment {where.segment}"
        summary = (f"Supply lost between {span[0]} and {span[1]} ({place})" if span
                   else f"{type.replace('_', ' ').capitalize()} at {where.id} ({place})")
        now = wall_ms()
        fault = {"fault_id": f"F-{next(self._fault_ids):06d}", "type": type, "severity": severity,
                 "state": lifecycle.OPEN, "road": road, "pole": None if span else where.id,
                 "span": list(span) if span else None, "segment": where.segment, "side": where.side,
                 "chainage_m": chain, "lat": where.lat, "lon": where.lon, "feeder": where.feeder,
                 "first_seen_ts": now, "last_seen_ts": now, "summary": summary,
                 "evidence": {"source": "injected", "dim_reported": self._twins[road][where.id]["level"]},
                 "acknowledged_by": None, "acknowledged_ms": None, "resolved_by": None,
                 "resolved_ms": None, "notes": []}
        with self._lock:
            self._faults[fault["fault_id"]] = fault
            self._emit("alert", fault)
        return FaultView.from_dict(fault)

    def faults(self, road: str | None = None, state: str | None = None, type: str | None = None,
               segment: str | None = None, severity: str | None = None) -> list[FaultView]:
        want = {"road": road, "state": state, "type": type, "segment": segment, "severity": severity}
        with self._lock:
            return [FaultView.from_dict(f) for f in self._faults.values()
                    if all(v is None or f[k] == v for k, v in want.items())]

    def fault(self, fault_id: str) -> FaultView | None:
        with self._lock:
            f = self._faults.get(fault_id)
            return FaultView.from_dict(f) if f else None

    def _transition(self, fault_id: str, to: str, actor: str, note: str) -> FaultView:
        with self._lock:
            f = self._faults.get(fault_id)
            if f is None:
                raise NotFound("fault", fault_id, "list faults with GET /api/v1/faults")
            try:
                f["state"] = lifecycle.check(fault_id, f["state"], to)
            except FaultStateError as err:
                raise Conflict(str(err)) from None
            now = wall_ms()
            f[f"{to}_by"], f[f"{to}_ms"] = actor, now
            f["last_seen_ts"] = max(f["last_seen_ts"], now)
            f["notes"] = [*f["notes"], {"by": actor, "ts_ms": now, "state": to, "note": note}]
            self._emit("alert", f)
            return FaultView.from_dict(f)

    def ack_fault(self, fault_id: str, actor: str, note: str) -> FaultView:
        return self._transition(fault_id, lifecycle.ACKNOWLEDGED, actor, note)

    def resolve_fault(self, fault_id: str, actor: str, note: str) -> FaultView:
        return self._transition(fault_id, lifecycle.RESOLVED, actor, note)

    # ----------------------------------------------------------------- schedules
    def schedules(self, road: str) -> list[Schedule]:
        self._road(road)
        with self._lock:
            return [s for s in self._schedules.values() if s.road == road]

    def _check_entries(self, road: Road, schedules: list[Schedule]) -> None:
        """The live controller's rules for an edit, by compiling the entries the same way."""
        try:
            entries_to_book(road, [s.to_dict() for s in schedules], 3.0, 1)
        except KeyError as err:
            known = ", ".join(road.segment_by_id)
            raise NotFound("segment", str(err.args[0]), f"segments of {road.id}: {known}") from None
        except ValueError as err:
            raise Conflict(str(err)) from None

    def put_schedule(self, road: str, schedule: Schedule, actor: str) -> Schedule:
        r = self._road(road)
        with self._lock:
            stored = replace(schedule, id=schedule.id or f"sch-{next(self._ids):04d}", road=road)
            self._check_entries(r, [*(s for s in self.schedules(road) if s.id != stored.id), stored])
            self._schedules[str(stored.id)] = stored
            return stored

    def delete_schedule(self, road: str, schedule_id: str, actor: str) -> None:
        r = self._road(road)
        with self._lock:
            s = self._schedules.get(schedule_id)
            if s is None or s.road != road:
                raise NotFound("schedule", schedule_id, "list schedules with GET /api/v1/schedules")
            self._check_entries(r, [e for e in self.schedules(road) if e.id != schedule_id])
            del self._schedules[schedule_id]

    def active_schedules(self, road: str, now_ms: int) -> dict[str, str | None]:
        return active_schedule_ids(self._road(road), self.schedules(road), now_ms)

    # ----------------------------------------------------------------- telemetry and energy
    def telemetry(self, road: str, poles: list[str], start_ms: int, end_ms: int, every_s: int) -> pd.DataFrame:
        r = self._road(road)
        times = np.arange(start_ms - start_ms % (every_s * 1000), end_ms, every_s * 1000, dtype=np.int64)
        frames = []
        for pid in poles:
            p = r.pole(pid)
            rng = np.random.default_rng(zlib.crc32(pid.encode()))
            hour = (times // 3_600_000 + 8) % 24  # local hour on the reference road (UTC+8)
            night = (hour >= 18) | (hour < 6)
            dim = np.where(night, np.where((hour >= 23) | (hour < 5), 50.0, 100.0), 0.0)
            power = p.rated_power_w * dim / 100.0 * (1 + rng.normal(0, 0.01, len(times)))
            frames.append(pd.DataFrame({
                "time": times, "pole": pid, "dim": dim, "power_w": power.clip(0).round(1),
                "voltage_v": (230 + rng.normal(0, 1.5, len(times))).round(1),
                "vehicles": rng.poisson(np.where(night, 3, 12)),
            }))
        if not frames:
            return pd.DataFrame(columns=["time", "pole", "dim", "power_w", "voltage_v", "vehicles"])
        return pd.concat(frames, ignore_index=True)

    def latest(self, road: str) -> pd.DataFrame:
        rows = [{"time": t.last_seen_ms, "pole": t.pole, "dim": t.level, "power_w": t.power_w,
                 "voltage_v": 230.0} for t in self.twins(road)]
        return pd.DataFrame(rows)

    def energy(self, road: str, day: date) -> Energy:
        r = self._road(road)
        seed = day.toordinal()
        poles = []
        for p in r.poles:
            base = p.rated_power_w * 12.0 / 1000.0  # kWh at full power over a 12 h night
            used = base * (0.58 + (zlib.crc32(f"{p.id}{seed}".encode()) % 100) / 1000.0)
            poles.append(PoleEnergy(p.id, p.segment, used, base))
        night = day.isoformat()
        now = wall_ms()
        with self._lock:
            under = dict(self._under_floor_ms)
            for pole, since in self._under_since.items():  # still under: counted up to now
                key = (night_of(since, r.timezone).isoformat(), r.pole(pole).segment)
                under[key] = under.get(key, 0) + now - since
        segments = [SegmentEnergy(s.id, under.get((night, s.id), 0) / 60_000) for s in r.segments]
        return Energy(road, night, poles, segments, co2_kg_saved=0.0)
