"""The controller run live: the gateway's messages in, level commands and alerts out.

A thin adapter around :class:`controller.engine.Controller` (pure). It ticks on message time:
whenever a message's ``ts`` passes the next tick instant, and from a timer when the road is
quiet (so silence itself is noticed). Each road has one lock; the controller is never entered
from two threads at once.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from controller.engine import Controller, ControllerConfig, Decisions
from controller.faults import Fault
from controller.overrides import Override
from controller.schedule import ScheduleBook
from gateway.commands import CommandRecord
from gateway.inbound import Inbound
from gateway.service import GatewayService
from runtime.state import ControllerStore
from streetlight.protocol import Event, State, Telemetry, VehicleEvent
from streetlight.registry import Road

log = logging.getLogger(__name__)
QUIET_AFTER_S = 2.0  # wall seconds without a message before platform time moves on by itself
# platform time between two saves of the energy meters; a clean stop saves too, so only a crash
# loses what was metered since the last save
ENERGY_SAVE_EVERY_MS = 60_000


@dataclass
class RoadControl:
    road: Road
    ctl: Controller
    lock: threading.RLock = field(default_factory=threading.RLock)
    last_tick_ms: int | None = None
    last_cmd: dict[str, str] = field(default_factory=dict)  # pole -> newest cmd_id the controller sent
    vehicles: list[tuple[int, int, float, int]] = field(default_factory=list)  # pending (pole index, ts, km/h, dir)
    published: dict[str, tuple[str, str]] = field(default_factory=dict)  # fault_id -> (state, severity) last alerted
    seen_ms: int | None = None  # newest ts the controller itself has been given
    early_status: dict[str, bool] = field(default_factory=dict)  # statuses heard before any timed message
    seen_wall: float = 0.0  # monotonic time of that message
    energy_saved_ms: int | None = None  # platform time of the last save of the energy meter

    def observed(self, ts_ms: int) -> None:
        if self.seen_ms is None or ts_ms > self.seen_ms:
            self.seen_ms = ts_ms
            self.seen_wall = time.monotonic()

    def platform_now(self) -> int | None:
        """Message time as the controller has seen it; when the road falls quiet it moves on with
        the wall clock, so that silence itself is noticed."""
        if self.seen_ms is None:
            return None
        idle = time.monotonic() - self.seen_wall
        return self.seen_ms + int(idle * 1000) if idle > QUIET_AFTER_S else self.seen_ms

    def flush_vehicles(self) -> None:
        """Vehicle events go to the controller in batches: one numpy call for many detections."""
        if self.vehicles:
            idx, ts, speed, direction = (np.array(col) for col in zip(*self.vehicles, strict=True))
            self.ctl.on_vehicles(idx.astype(np.int64), ts.astype(np.int64), speed.astype(float), direction.astype(np.int64))
            self.vehicles.clear()


class ControlService:
    """Runs one controller per road inside ``streetlight serve``."""

    def __init__(self, gateway: GatewayService, roads: list[Road], store: ControllerStore, *,
                 report_interval_s: int = 10, tick_s: float | None = None) -> None:
        self.gw = gateway
        self.store = store
        self.report_interval_s = report_interval_s
        self.tick_ms = int((tick_s or report_interval_s / 2) * 1000)
        self.roads: dict[str, RoadControl] = {}
        for road in roads:
            book = store.schedule(road.id) or ScheduleBook.default()
            cfg = ControllerConfig(report_interval_s=report_interval_s, first_fault_seq=store.next_fault_seq())
            ctl = Controller(road, cfg, book)
            self.roads[road.id] = RoadControl(road, ctl)
            self._restore_energy(self.roads[road.id])  # before the gateway hands over any report
        self.fault_listeners: list[Callable[[Fault], None]] = []
        self.level_listeners: list[Callable[[str, str, float, str], None]] = []
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        gateway.add_listener(self._on_inbound)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        now = self.gw.clock.now_ms()
        for rc in self.roads.values():
            live = self.store.live_faults(rc.road.id)
            overrides = self.store.active_overrides(rc.road.id, now) if now is not None else []
            rc.ctl.restore(live, overrides)
            self.publish_fallback(rc.road.id)
        self._stop.clear()
        self._timer = threading.Thread(target=self._timer_loop, name="control-timer", daemon=True)
        self._timer.start()

    def stop(self) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.join(5)

    def _restore_energy(self, rc: RoadControl) -> None:
        try:
            state = self.store.energy(rc.road.id)
            if state is not None:
                rc.ctl.energy.restore(state)
        except Exception:  # a bad or unreadable state must not keep the road dark
            log.exception("could not restore the energy meter of %s; it starts from zero", rc.road.id)

    def save_energy(self, road: str | None = None) -> None:
        """Save the energy meters (of ``road``, or of every road) to the operational store."""
        for rc in [self.roads[road]] if road else list(self.roads.values()):
            with rc.lock:
                now = rc.last_tick_ms if rc.last_tick_ms is not None else self.now_ms(rc.road.id)
                try:
                    self.store.save_energy(rc.road.id, now, rc.ctl.energy.state())
                    rc.energy_saved_ms = now
                except Exception:
                    log.exception("could not save the energy meter of %s", rc.road.id)

    def publish_fallback(self, road: str) -> None:
        rc = self.roads[road]
        with rc.lock:
            version = (self.gw.config.versions.get(road, 0)) + 1
            cfg = rc.ctl.fallback_config(version)
        self.gw.publish_config(road, cfg)

    # -- observations (gateway ingest thread) --------------------------------------------------
    def _on_inbound(self, inb: Inbound) -> None:
        rc = self.roads.get(inb.road)
        if rc is None:
            return
        with rc.lock:
            if inb.kind != "status":
                if rc.last_tick_ms is not None and inb.ts_ms >= rc.last_tick_ms + self.tick_ms:
                    self._tick(rc, inb.ts_ms - inb.ts_ms % self.tick_ms)
                rc.observed(inb.ts_ms)
                if rc.early_status:
                    for pole, online in rc.early_status.items():
                        rc.ctl.on_status(pole, online, inb.ts_ms)
                    rc.early_status.clear()
            msg = inb.message
            if inb.kind == "event" and isinstance(msg, VehicleEvent):
                i = rc.ctl.index.get(inb.pole)
                if i is not None:
                    rc.vehicles.append((i, msg.ts, msg.speed_kmh, msg.direction))
                    rc.ctl.watches[inb.pole].seen(msg.ts)
                    if len(rc.vehicles) >= 2048:
                        rc.flush_vehicles()
                return
            if inb.kind == "telemetry" and isinstance(msg, Telemetry):
                rc.ctl.on_telemetry(inb.pole, msg)
            elif inb.kind == "event" and isinstance(msg, Event):
                rc.ctl.on_event(inb.pole, msg)
            elif inb.kind == "state" and isinstance(msg, State):
                rc.ctl.on_state(inb.pole, msg)
            elif inb.kind == "status" and msg in ("online", "offline"):
                # a status has no ts of its own: it happened at platform time, which is unknown
                # until the road's first timed message; statuses heard before wait for it
                if rc.seen_ms is None:
                    rc.early_status[inb.pole] = msg == "online"
                else:
                    rc.ctl.on_status(inb.pole, msg == "online", rc.seen_ms)
            if rc.last_tick_ms is None and inb.kind in ("telemetry", "event"):
                self._tick(rc, inb.ts_ms)

    def _timer_loop(self) -> None:
        while not self._stop.wait(0.5):
            for rc in self.roads.values():
                with rc.lock:
                    now = rc.platform_now()
                    if now is not None and rc.last_tick_ms is not None and now >= rc.last_tick_ms + self.tick_ms:
                        try:
                            self._tick(rc, now)
                        except Exception:
                            log.exception("controller tick failed on %s", rc.road.id)

    # -- decisions -----------------------------------------------------------------------------
    def tick_now(self, road: str) -> Decisions:
        rc = self.roads[road]
        with rc.lock:
            return self._tick(rc, self.now_ms(road))

    def now_ms(self, road: str | None = None) -> int:
        """Platform time of ``road`` (of the most advanced road when not given)."""
        times = [rc.platform_now() for rc in ([self.roads[road]] if road else self.roads.values())]
        known = [t for t in times if t is not None]
        if known:
            return max(known)
        from streetlight.clock import wall_ms  # nothing heard yet: the wall clock is all there is

        return wall_ms()

    def _tick(self, rc: RoadControl, now_ms: int) -> Decisions:
        now_ms = max(now_ms, rc.last_tick_ms or now_ms)
        rc.flush_vehicles()
        decisions = rc.ctl.tick(now_ms)
        rc.last_tick_ms = now_ms
        self._apply(rc, decisions)
        if rc.energy_saved_ms is None or now_ms - rc.energy_saved_ms >= ENERGY_SAVE_EVERY_MS:
            self.save_energy(rc.road.id)
        return decisions

    def _apply(self, rc: RoadControl, decisions: Decisions) -> None:
        road = rc.road.id
        for c in decisions.commands:
            try:
                rec = self.gw.commands.dim(road, c.pole, c.level, ramp_ms=c.ramp_ms, reason=c.reason, source="controller")
                rc.last_cmd[c.pole] = rec.cmd_id
            except Exception:
                log.exception("could not dispatch %s to %s", c, c.pole)
            for fn in self.level_listeners:
                fn(road, c.pole, c.level, c.reason)
        for f in decisions.faults:
            try:
                self.store.save_fault(f)
            except Exception:
                log.exception("could not store fault %s", f.fault_id)
            # alerts go out when a fault opens, changes state or severity, or resolves (the
            # protocol page); a fault merely seen again only moves last_seen in the store
            if rc.published.get(f.fault_id) == (f.state, f.severity):
                continue
            rc.published[f.fault_id] = (f.state, f.severity)
            try:
                self.gw.publish_alert(road, f.to_alert())
            except Exception:
                log.exception("could not publish alert %s", f.fault_id)
            for fn in self.fault_listeners:
                fn(f)

    # -- operator input ------------------------------------------------------------------------
    def override(self, road: str, poles: list[str], level: float, expires_ms: int | None, actor: str,
                 ramp_ms: int = 0) -> list[CommandRecord]:
        """An operator level for some poles: an override in the controller (raised to the segment's
        floor, so a dim never leaves the road under what its traffic needs) and a command per pole."""
        rc = self.roads[road]
        with rc.lock:
            now = max(self.now_ms(road), rc.last_tick_ms or 0)
            scope_targets = _scopes(rc.road, poles)
            for scope, target in scope_targets:
                o = Override(id=f"op-{uuid.uuid4().hex[:10]}", scope=scope, target=target, level=level, start_ms=now,
                             expires_ms=expires_ms, priority=10, actor=actor)
                rc.ctl.set_override(o)
                self.store.save_override(road, o)
            self._tick(rc, now)
            records = []
            for pole in poles:
                lv, why = rc.ctl.level_of(pole)
                rec = self.gw.commands.dim(road, pole, lv, ramp_ms=ramp_ms, reason=why, source=actor)
                records.append(rec)
            return records

    def emergency(self, road: str, on: bool, actor: str) -> None:
        rc = self.roads[road]
        with rc.lock:
            now = max(self.now_ms(road), rc.last_tick_ms or 0)
            rc.ctl.set_emergency(on, now, actor)
            self._tick(rc, now)

    def emergency_active(self, road: str) -> bool:
        return bool(self.roads[road].ctl.emergency[0])

    def acknowledge(self, fault_id: str, actor: str, note: str) -> Fault:
        f = self.store.fault(fault_id)
        rc = self.roads[f.road]
        with rc.lock:
            now = self.now_ms(f.road)
            try:
                rc.ctl.acknowledge(fault_id, actor, now)
            except Exception:  # no longer live in the controller (e.g. resolved meanwhile)
                log.debug("controller did not know fault %s", fault_id)
            stored = self.store.acknowledge(fault_id, actor, now, note)
            self.gw.publish_alert(f.road, stored.to_alert())
        return stored

    def resolve(self, fault_id: str, actor: str, note: str) -> Fault:
        f = self.store.fault(fault_id)
        rc = self.roads[f.road]
        with rc.lock:
            now = self.now_ms(f.road)
            try:
                rc.ctl.resolve(fault_id, actor, now)
            except Exception:
                log.debug("controller did not know fault %s", fault_id)
            stored = self.store.resolve(fault_id, actor, now, note)
            self.gw.publish_alert(f.road, stored.to_alert())
        return stored

    def set_schedules(self, road: str, book: ScheduleBook, actor: str) -> int:
        rc = self.roads[road]
        with rc.lock:
            version = self.store.save_schedule(road, book, actor, self.now_ms(road))
            rc.ctl.set_schedules(book)
        self.publish_fallback(road)
        return version


def _scopes(road: Road, poles: list[str]) -> list[tuple[str, str | None]]:
    """The fewest overrides that cover exactly ``poles``: the road, whole segments, single poles."""
    wanted = set(poles)
    if wanted == set(road.pole_ids):
        return [("road", None)]
    out: list[tuple[str, str | None]] = []
    for s in road.segments:
        seg = {p.id for p in road.poles if p.segment == s.id}
        if seg and seg <= wanted:
            out.append(("segment", s.id))
            wanted -= seg
    out += [("pole", p) for p in poles if p in wanted]
    return out
