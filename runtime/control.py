"""The controller run live: the gateway's messages in, level commands and alerts out.

A thin adapter around :class:`controller.engine.Controller` (pure). It ticks on message time:
whenever a message's ``ts`` passes the next tick instant, and from a timer when the road is
quiet (so silence itself is noticed). Each road has one lock; the controller is never entered
from two threads at once.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from controller.energy import EnergyReport
from controller.engine import Controller, ControllerConfig, Decisions, LevelCommand
from controller.errors import FaultStateError, UnknownFaultError
from controller.faults import Fault, lifecycle
from controller.overrides import Override
from controller.schedule import ScheduleBook
from controller.traffic import SegmentTraffic
from gateway.cabinets import CABINET_STATUS, CABINET_TELEMETRY
from gateway.commands import CommandRecord, DimOrder
from gateway.inbound import Inbound
from gateway.service import GatewayService
from runtime.leases import RoadLeases
from runtime.schedules import entries_to_book, load_book
from runtime.state import ControllerStore
from streetlight.clock import RoadClocks, StreamTime, wall_ms
from streetlight.protocol import CabinetTelemetry, Event, State, Telemetry, VehicleEvent
from streetlight.registry import Road

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Operator:
    """Who set the poles a tick is about to command, and how they asked for it."""

    actor: str
    ramp_ms: int
    poles: frozenset[str]
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
    early_status: dict[str, bool] = field(default_factory=dict)  # statuses heard before road time was known
    stream: StreamTime = field(default_factory=StreamTime)  # road time as far as this controller was told
    energy_saved_ms: int | None = None  # road time of the last save of the energy meter

    def now(self, clock: RoadClocks) -> int | None:
        """Road time for this controller (see :class:`streetlight.clock.StreamTime`)."""
        return self.stream.now(clock.now_ms(self.road.id))

    def flush_vehicles(self) -> None:
        """Vehicle events go to the controller in batches: one numpy call for many detections."""
        if self.vehicles:
            idx, ts, speed, direction = (np.array(col) for col in zip(*self.vehicles, strict=True))
            self.ctl.on_vehicles(idx.astype(np.int64), ts.astype(np.int64), speed.astype(float), direction.astype(np.int64))
            self.vehicles.clear()


class RoadTimeUnknown(RuntimeError):
    """An action needs the road's time, and too few of its poles have reported yet to know it."""


class NotHolder(RuntimeError):
    """An action on a road whose lease another controller process holds (``runtime.leases``)."""

    def __init__(self, road: str, holder: str | None) -> None:
        self.road, self.holder = road, holder
        super().__init__(f"road {road} is decided by the controller {holder or 'that holds its lease'}, not this "
                         "one; try again in a moment (the API finds the holder)")


class Observations(Protocol):
    """Where the controller hears its roads: the gateway itself, or a read of their topics of its own."""

    clock: RoadClocks

    def add_listener(self, fn: Callable[[Inbound], None]) -> None: ...


class ControlService:
    """Runs one controller per road inside ``streetlight serve``.

    ``observations``: where the controller hears its roads (the gateway when not given).
    ``leases``: when given, the controller decides only for the roads whose lease this process
    holds; for the others it hears and ticks (its state stays warm) but sends, stores and alerts
    nothing, and it takes a road over (:meth:`take_over`) when its lease comes to this process."""

    def __init__(self, gateway: GatewayService, roads: list[Road], store: ControllerStore, *,
                 report_interval_s: int = 10, tick_s: float | None = None, observations: Observations | None = None,
                 leases: RoadLeases | None = None) -> None:
        self.gw = gateway
        source: Observations = observations if observations is not None else gateway
        self.clock = source.clock
        self.leases = leases
        self.store = store
        self.report_interval_s = report_interval_s
        self.tick_ms = int((tick_s or report_interval_s / 2) * 1000)
        self.roads: dict[str, RoadControl] = {}
        for road in roads:
            book = load_book(store, road)
            cfg = ControllerConfig(report_interval_s=report_interval_s, first_fault_seq=store.next_fault_seq())
            ctl = Controller(road, cfg, book)
            self.roads[road.id] = RoadControl(road, ctl)
            self._restore_energy(self.roads[road.id])  # before the gateway hands over any report
        self.fault_listeners: list[Callable[[Fault], None]] = []
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        source.add_listener(self._on_inbound)
        if leases is not None:
            leases.on_taken.append(self.take_over)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        now = self.clock.now_ms()
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
        """Save the energy meters (of ``road``, or of every road this process holds) to the operational store."""
        for rc in [self.roads[road]] if road else list(self.roads.values()):
            if not self.holds(rc.road.id):
                continue  # the holder's meter is the one stored
            with rc.lock:
                now = rc.last_tick_ms if rc.last_tick_ms is not None else self.now_ms(rc.road.id)
                try:
                    self.store.save_energy(rc.road.id, now, rc.ctl.energy.state())
                    rc.energy_saved_ms = now
                except Exception:
                    log.exception("could not save the energy meter of %s", rc.road.id)

    def publish_fallback(self, road: str) -> None:
        if not self.holds(road):
            return
        rc = self.roads[road]
        with rc.lock:
            version = (self.gw.config.versions.get(road, 0)) + 1
            cfg = rc.ctl.fallback_config(version)
        self.gw.publish_config(road, cfg)

    # -- leases ---------------------------------------------------------------------------------
    def holds(self, road: str) -> bool:
        """Whether this process decides for ``road`` (always, without leases)."""
        return self.leases is None or self.leases.holds(road)

    def _holding(self, rc: RoadControl) -> None:
        if not self.holds(rc.road.id):
            lease = self.leases.lease(rc.road.id) if self.leases is not None else None
            raise NotHolder(rc.road.id, lease.holder if lease is not None else None)

    def take_over(self, road: str) -> None:
        """This process has come to hold ``road``: the controller, warm from what it heard, takes up
        what the last holder stored (live faults under their ids, overrides, the schedules in
        force) in place of its own unsent view, and publishes the road's fallback config."""
        rc = self.roads[road]
        with rc.lock:
            now = rc.now(self.clock)
            rc.ctl.faults.live.clear()  # what it raised while standing by was never stored nor alerted
            live = self.store.live_faults(road)
            rc.ctl.restore(live, self.store.active_overrides(road, now) if now is not None else [])
            rc.published = {f.fault_id: (f.state, f.severity) for f in live}
            rc.ctl.set_schedules(load_book(self.store, rc.road))
        self.publish_fallback(road)

    # -- observations (gateway ingest thread) --------------------------------------------------
    def _on_inbound(self, inb: Inbound) -> None:
        rc = self.roads.get(inb.road)
        if rc is None:
            return
        with rc.lock:
            # the controller ticks on road time (the poles' consensus) as it stood at this message
            # in the stream, never on one message's ts: a pole whose clock runs ahead must not make
            # the others look silent, and the same stream gives the same ticks at any speed
            now = inb.road_ms
            rc.stream.given(now)
            if now is not None and rc.last_tick_ms is not None and now >= rc.last_tick_ms + self.tick_ms:
                self._tick(rc, now - now % self.tick_ms)
            if now is not None and rc.early_status:
                for pole, online in rc.early_status.items():
                    rc.ctl.on_status(pole, online, now)
                rc.early_status.clear()
            msg = inb.message
            if inb.kind != "status" and inb.clock_offset_ms is not None:
                rc.ctl.on_clock(inb.pole, inb.clock_skewed, inb.clock_offset_ms, inb.ts_ms)
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
            elif inb.kind == CABINET_TELEMETRY and isinstance(msg, CabinetTelemetry):
                rc.ctl.on_cabinet(inb.pole, msg)  # ``pole`` holds the cabinet id
            elif inb.kind == CABINET_STATUS and msg in ("online", "offline") and now is not None:
                rc.ctl.on_cabinet_status(inb.pole, msg == "online", now)
            elif inb.kind == "status" and msg in ("online", "offline"):
                # a status has no ts of its own: it happened at road time, which is unknown until
                # enough of the road has been heard; statuses heard before wait for it
                if now is None:
                    rc.early_status[inb.pole] = msg == "online"
                else:
                    rc.ctl.on_status(inb.pole, msg == "online", now)
            if rc.last_tick_ms is None and now is not None:
                self._tick(rc, now)

    def _timer_loop(self) -> None:
        while not self._stop.wait(0.5):
            for rc in self.roads.values():
                with rc.lock:
                    now = rc.now(self.clock)
                    if now is not None and rc.last_tick_ms is not None and now >= rc.last_tick_ms + self.tick_ms:
                        try:
                            self._tick(rc, now)
                        except Exception:
                            log.exception("controller tick failed on %s", rc.road.id)

    # -- decisions -----------------------------------------------------------------------------
    def now_ms(self, road: str | None = None) -> int:
        """Road time of ``road`` as the controller knows it (of the most advanced road when not
        given); the wall clock while nothing has been heard yet."""
        times = [rc.now(self.clock) for rc in ([self.roads[road]] if road else self.roads.values())]
        known = [t for t in times if t is not None]
        return max(known) if known else wall_ms()

    def _acting_now(self, rc: RoadControl) -> int:
        """Road time for an operator's action, which the controller takes at once (a tick)."""
        self._holding(rc)
        now = rc.now(self.clock)
        if now is None:
            raise RoadTimeUnknown(f"road {rc.road.id} has not reported enough to know its time yet "
                                  "(two thirds of its poles once); try again in a moment")
        return max(now, rc.last_tick_ms or now)

    def _tick(self, rc: RoadControl, now_ms: int, by: _Operator | None = None) -> dict[str, CommandRecord]:
        """One controller tick, its decisions carried out; the commands that left, by pole."""
        now_ms = max(now_ms, rc.last_tick_ms or now_ms)
        rc.flush_vehicles()
        decisions = rc.ctl.tick(now_ms)
        rc.last_tick_ms = now_ms
        sent = self._apply(rc, decisions, by)
        if rc.energy_saved_ms is None or now_ms - rc.energy_saved_ms >= ENERGY_SAVE_EVERY_MS:
            self.save_energy(rc.road.id)
        return sent

    def _dispatch(self, rc: RoadControl, cmds: list[LevelCommand], source: dict[str, str]) -> dict[str, CommandRecord]:
        """Issue level commands together (they leave in one hand-over); by pole. ``source`` names
        who set a pole, the controller for the rest."""
        try:
            recs = self.gw.commands.dim_many(rc.road.id, [DimOrder(c.pole, c.level, c.ramp_ms, c.reason,
                                                                   source.get(c.pole, "controller")) for c in cmds])
        except Exception:
            log.exception("could not dispatch %d command(s) on %s", len(cmds), rc.road.id)
            return {}
        for rec in recs:
            rc.last_cmd[rec.pole] = rec.cmd_id
        return {rec.pole: rec for rec in recs}

    def _apply(self, rc: RoadControl, decisions: Decisions, by: _Operator | None = None) -> dict[str, CommandRecord]:
        """Send the tick's commands and store and alert its faults. A command for a pole an
        operator just set leaves once, as the operator's (their ramp, their name)."""
        road = rc.road.id
        if not self.holds(road):
            return {}  # standing by: the holder sends, stores and alerts what this tick decided
        cmds = [replace(c, ramp_ms=by.ramp_ms) if by is not None and c.pole in by.poles else c
                for c in decisions.commands]
        sent = self._dispatch(rc, cmds, dict.fromkeys(by.poles, by.actor) if by is not None else {}) if cmds else {}
        for f in decisions.faults:
            try:
                self.store.save_fault(f)
            except FaultStateError as err:  # the lifecycle refuses it: nothing to tell anyone
                log.error("controller reported a move the lifecycle forbids: %s", err)
                continue
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
        return sent

    # -- operator input ------------------------------------------------------------------------
    def override(self, road: str, poles: list[str], level: float, expires_ms: int | None, actor: str,
                 ramp_ms: int = 0, force: bool = False) -> list[CommandRecord]:
        """An operator level for some poles: an override in the controller (raised to the segment's
        floor, so a dim never leaves the road under what its traffic needs, unless ``force``d) and
        a command per pole."""
        rc = self.roads[road]
        with rc.lock:
            now = self._acting_now(rc)
            made = [Override(id=f"op-{uuid.uuid4().hex[:10]}", scope=scope, target=target, level=level, start_ms=now,
                             expires_ms=expires_ms, priority=10, actor=actor, force=force)
                    for scope, target in _scopes(rc.road, poles)]
            for o in made:
                rc.ctl.set_override(o)
            if rc.last_tick_ms is None:  # no tick yet, so no floors: this one decides the whole road
                sent = self._tick(rc, now, _Operator(actor, ramp_ms, frozenset(poles)))
                missing = [p for p in poles if p not in sent]
                # a pole already at its new level has nothing from the tick; the operator asked,
                # so it is told once all the same
                if missing:
                    again = [LevelCommand(p, lv, ramp_ms, why) for p in missing for lv, why in [rc.ctl.level_of(p)]]
                    sent.update(self._dispatch(rc, again, dict.fromkeys(missing, actor)))
            else:
                # the operator's poles only, at once: a whole-road tick (traffic, faults, energy)
                # would make them wait for decisions they do not need; the next tick takes the road
                sent = self._dispatch(rc, rc.ctl.operator_levels(now, poles, ramp_ms), dict.fromkeys(poles, actor))
            # stored after the commands have left: a commit (an fsync, tens of ms on a busy disk) is
            # not on the path of the light. A crash in between loses the override, not the light:
            # after a restart the road follows its schedule and traffic, never under its floors
            for o in made:
                try:
                    self.store.save_override(road, o)
                except Exception:
                    log.exception("override %s on %s is in force but could not be stored; a restart would "
                                  "drop it (check the state database under data_dir)", o.id, road)
            return [sent[p] for p in poles if p in sent]

    def emergency(self, road: str, on: bool, actor: str) -> None:
        rc = self.roads[road]
        with rc.lock:
            now = self._acting_now(rc)
            rc.ctl.set_emergency(on, now, actor)
            self._tick(rc, now)

    def maintenance(self, road: str, pole: str, minutes: float) -> tuple[int, int]:
        """A crew is at ``pole`` from now (road time) for ``minutes``: its door may open (protocol 1.1)."""
        rc = self.roads[road]
        with rc.lock:
            now = self._acting_now(rc)
            until = now + int(minutes * 60_000)
            rc.ctl.equipment.set_maintenance(pole, until, from_ms=now)
            return now, until

    def emergency_active(self, road: str) -> bool:
        rc = self.roads[road]
        with rc.lock:
            return bool(rc.ctl.emergency[0])

    # -- queries (under the road's lock: a tick may be changing what they read) ---------------
    def level_of(self, road: str, pole: str) -> tuple[float, str]:
        """The level the controller last commanded for ``pole`` and the rule that set it."""
        rc = self.roads[road]
        with rc.lock:
            return rc.ctl.level_of(pole)

    def floor_of(self, road: str, pole: str) -> tuple[float, SegmentTraffic | None]:
        """The pole's floor as the last tick set it, and its segment's traffic as that tick judged it."""
        rc = self.roads[road]
        with rc.lock:
            segment = rc.road.pole(pole).segment
            return rc.ctl.floor_of(pole), next((s for s in rc.ctl.segments() if s.segment == segment), None)

    def lighting_class_name(self, road: str, index: int) -> str:
        return self.roads[road].ctl.lighting.classes[index].name

    def energy_report(self, road: str, night: str | None = None) -> EnergyReport:
        rc = self.roads[road]
        with rc.lock:
            return rc.ctl.energy_report(night)

    def schedule_book(self, road: str) -> ScheduleBook:
        """The schedules in force on ``road`` (a book is replaced whole, never changed in place)."""
        rc = self.roads[road]
        with rc.lock:
            return rc.ctl.schedules

    def acknowledge(self, fault_id: str, actor: str, note: str) -> Fault:
        return self._fault_transition(fault_id, lifecycle.ACKNOWLEDGED, actor, note)

    def resolve(self, fault_id: str, actor: str, note: str) -> Fault:
        return self._fault_transition(fault_id, lifecycle.RESOLVED, actor, note)

    def _fault_transition(self, fault_id: str, to: str, actor: str, note: str) -> Fault:
        """A person moves a fault: the store decides (it raises UnknownFaultError or
        FaultStateError), then the controller's book follows and one alert goes out."""
        road = self.store.fault(fault_id).road
        rc = self.roads[road]
        self._holding(rc)
        with rc.lock:
            now = self.now_ms(road)
            stored = (self.store.acknowledge if to == lifecycle.ACKNOWLEDGED else self.store.resolve)(
                fault_id, actor, now, note)
            try:
                (rc.ctl.acknowledge if to == lifecycle.ACKNOWLEDGED else rc.ctl.resolve)(fault_id, actor, now)
            except UnknownFaultError:  # not live in the controller, which has nothing to follow
                log.debug("controller does not hold fault %s", fault_id)
            except FaultStateError as err:
                log.warning("controller and store disagree on fault %s: %s", fault_id, err)
            # the controller reports the change again on its next tick; this is its one alert
            rc.published[fault_id] = (stored.state, stored.severity)
            try:
                self.gw.publish_alert(road, stored.to_alert())
            except Exception:
                log.exception("could not publish alert %s", fault_id)
        return stored

    def set_schedules(self, road: str, entries: list[dict[str, Any]], actor: str) -> int:
        """Compile the road's schedule entries, store them as a new version and run them; raises
        ``KeyError`` (unknown segment) or ``ValueError`` (no road-wide default) before storing."""
        rc = self.roads[road]
        self._holding(rc)
        with rc.lock:
            current = rc.ctl.schedules
            book = entries_to_book(rc.road, entries, current.depression_deg, current.version + 1)
            book.version = self.store.save_schedule(road, entries, book.depression_deg, actor, self.now_ms(road),
                                                    book.version)
            rc.ctl.set_schedules(book)
        self.publish_fallback(road)
        return book.version


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
