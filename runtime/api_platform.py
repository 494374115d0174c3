"""The API's port in a process of its own: :class:`SplitPlatform`.

Reads are served here, without asking another process: the road's twins and time from the
API's own read model fed by the broker (:mod:`runtime.read_model`), faults and schedules from the
state database (:class:`runtime.state.ControllerStore`, shared with the controller process),
readings from InfluxDB. What the controller owns (dims, identify, emergencies, schedules, fault
transitions, energy, the command records) goes over the control channel
(:mod:`runtime.control_channel`) to the controller process that holds the road
(:class:`runtime.control_client.ControlRouter`), which answers with the port's own types. A snapshot of
the controller's levels and reasons, restarts and readiness is refreshed in the background and
after every change made here; command and alert events come from the channel's event feed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from api.platform import (
    CabinetReport,
    Command,
    Energy,
    FaultView,
    LiveEvent,
    NotFound,
    PoleStatus,
    QueueSubscription,
    RoadTime,
    Schedule,
    Subscribers,
    TwinView,
    Unavailable,
    active_schedule_ids,
    twin_event,
)
from gateway.inbound import Inbound
from streetlight.clock import wall_ms
from streetlight.registry import Road
from streetlight.settings import Settings
from telemetry import InfluxQL, TelemetryQueries

from . import port_codec
from .control_client import ControlClient, ControlRouter
from .read_model import ReadModel
from .schedules import load_schedules
from .state import ControllerStore
from .views import ReadingsUnavailable, fault_list, latest_frame, readings_frame, stored_fault_view, twin_view

log = logging.getLogger(__name__)
SNAPSHOT_EVERY_S = 0.5
SNAPSHOT_STALE_S = 5.0  # older than this, the controller process is taken as away (readiness)
# the pole list is built again at most this often while readings stream in (a road at ×60 changes
# hundreds of times a second); a new snapshot (after an operator's change) rebuilds it at once
TWINS_FRESH_S = 0.05
# a fault list is read again after this long at most; any alert from the controller (a fault
# opened, moved or resolved, by anyone) or a transition made here drops it at once
FAULTS_FRESH_S = 1.0
COMMANDS_KEPT = 20_000  # commands this process issued, and finished statuses from the feed
# a command this process issued that the feed has not yet said is finished is answered as pending
# without asking the core for this long after its issue (a client following a road dim asks for 93
# commands every few ms); after that the core is asked, so a lost event cannot leave one pending
PENDING_TRUSTED_S = 2.0


class SplitPlatform:
    def __init__(self, settings: Settings, roads: list[Road], *, report_interval_s: int = 10,
                 client_id: str | None = None) -> None:
        self.settings = settings
        self.roads: dict[str, Road] = {r.id: r for r in roads}
        data = Path(settings.data_dir)
        data.mkdir(parents=True, exist_ok=True)
        self.read = ReadModel(settings, roads, client_id=client_id, report_interval_s=report_interval_s)
        self.store = ControllerStore(settings.state_location("controller.sqlite3"))  # the controllers' rows
        secret = settings.influx_password.get_secret_value() if settings.influx_password else None
        token = settings.influx_token.get_secret_value() if settings.influx_token else None
        self.influx = InfluxQL(settings.influx_url, settings.influx_db, username=settings.influx_username,
                               password=secret, token=token)
        self.readings = TelemetryQueries(self.influx)
        self.control = ControlRouter(data, self._road_of_fault)
        self.live = Subscribers()
        self._snap: dict[str, Any] = {}
        self._snap_at = 0.0
        self._snap_seq = 0
        self._twins_cache: dict[str, tuple[int, int, float, list[TwinView]]] = {}
        # a finished command does not change again: one this process issued, once the feed has
        # said how it ended, is answered here (a dashboard following a road dim asks for 93 of them)
        self._issued: OrderedDict[str, Command] = OrderedDict()
        self._finished: OrderedDict[str, PoleStatus] = OrderedDict()
        self._cmd_lock = threading.Lock()
        self._faults_gen = 0
        self._faults_cache: dict[tuple[str | None, ...], tuple[int, float, list[FaultView]]] = {}
        self._snap_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.events_missed = 0  # events the feed no longer held when asked (this process fell behind)
        self.read.listeners.append(self._on_inbound)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.read.start()
        self._stop.clear()
        self._threads = [threading.Thread(target=self._snapshots, name="api-snapshot", daemon=True),
                         threading.Thread(target=self._feeds, name="api-control-feeds", daemon=True)]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        self.read.stop()
        for t in self._threads:
            t.join(12)
        self.control.close()
        self.store.close()
        self.influx.close()

    def __enter__(self) -> SplitPlatform:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- from the controller process -----------------------------------------------------------
    def _refresh(self) -> None:
        self._take_snapshot(self.control.snapshot())

    def _take_snapshot(self, snap: dict[str, Any]) -> None:
        with self._snap_lock:
            self._snap, self._snap_at = snap, time.monotonic()
            self._snap_seq += 1
        for road, version in (snap.get("desired") or {}).items():
            if version is not None:
                self.read.twins.set_desired(road, version)

    def _snapshots(self) -> None:
        while not self._stop.is_set():
            try:
                self._refresh()
            except Unavailable as err:
                log.debug("no snapshot from the controller: %s", err)
            self._stop.wait(SNAPSHOT_EVERY_S)

    def _change(self, method: str, **args: Any) -> Any:
        """A controller-owned change; what reads show next is the controller's state after it."""
        result, snap = self.control.change(method, **args)
        if snap is not None:
            self._take_snapshot(snap)
        return result

    def _feeds(self) -> None:
        """One event feed per controller process, followed from its own thread, started as the
        process appears in the channel folder; it ends when the process is gone from there."""
        following: dict[Path, threading.Thread] = {}
        while not self._stop.is_set():
            for f, client in self.control.clients().items():
                t = following.get(f)
                if t is None or not t.is_alive():
                    following[f] = threading.Thread(target=self._events, args=(f, client), daemon=True,
                                                    name=f"api-control-events-{f.stem}")
                    following[f].start()
            self._stop.wait(1.0)
        for t in following.values():
            t.join(12)

    def _events(self, f: Path, client: ControlClient) -> None:
        epoch: str | None = None
        after = 0
        while not self._stop.is_set() and f in self.control.clients():
            try:
                body = client.events(after, 2.0)
            except Unavailable:
                self._stop.wait(0.5)
                continue
            if body["epoch"] != epoch:
                first = epoch is None
                epoch, after = body["epoch"], 0 if not first else body["last"]
                if first:
                    continue  # what happened before this process started is in the stores, not news
                continue  # a restarted controller: ask its feed from its beginning
            events = body["events"]
            if events and body["last"] - after > len(events):
                self.events_missed += body["last"] - after - len(events)
            after = body["last"]
            for e in events:
                event = port_codec.event(e)
                if event.kind == "command" and event.data.get("status") != "pending":
                    d = event.data
                    self._keep(self._finished, str(d["cmd_id"]),
                               PoleStatus(d["status"], d.get("dim"), d.get("error"), d.get("ack_ms")))
                elif event.kind == "alert":
                    self._faults_gen += 1
                self.live.emit(event)

    def _road_of_fault(self, fault_id: str) -> str:
        from controller.errors import UnknownFaultError

        try:
            return self.store.fault(fault_id).road
        except UnknownFaultError:
            raise NotFound("fault", fault_id, "list faults with GET /api/v1/faults") from None

    def _keep(self, kept: OrderedDict[str, Any], key: str, value: Any) -> None:
        with self._cmd_lock:
            kept[key] = value
            while len(kept) > COMMANDS_KEPT:
                kept.popitem(last=False)

    def _snapshot(self) -> dict[str, Any]:
        with self._snap_lock:
            return self._snap

    # -- live events ---------------------------------------------------------------------------
    def subscribe(self) -> QueueSubscription:
        return self.live.subscribe()

    def _on_inbound(self, inb: Inbound) -> None:
        # state and status changes are what a map shows; per-report telemetry would flood browsers
        if inb.kind in ("state", "status") and self.live.active:
            twin = self.twin(inb.road, inb.pole)
            if twin is not None:
                self.live.emit(LiveEvent("twin", twin_event(inb.road, twin), self.now_ms()))

    # -- the road, live ------------------------------------------------------------------------
    def _road(self, road: str) -> Road:
        r = self.roads.get(road)
        if r is None:
            raise NotFound("road", road, f"roads served: {', '.join(self.roads)}")
        return r

    def twin(self, road: str, pole: str) -> TwinView | None:
        r = self._road(road)
        if not r.has_pole(pole):
            return None
        snap = self._snapshot()
        _, reason = (snap.get("levels", {}).get(road, {}).get(pole) or (None, None))
        return twin_view(pole, self.read.twins.get(road, pole), reason,
                         int(snap.get("restarts", {}).get(road, {}).get(pole, 0)))

    def twins(self, road: str) -> list[TwinView]:
        r = self._road(road)
        version, seq, now = self.read.applied, self._snap_seq, time.monotonic()
        hit = self._twins_cache.get(road)
        if hit is not None and hit[1] == seq and (hit[0] == version or now - hit[2] < TWINS_FRESH_S):
            return list(hit[3])
        snap = self._snapshot()
        levels = snap.get("levels", {}).get(road, {})
        restarts = snap.get("restarts", {}).get(road, {})
        out = []
        for t in self.read.twins.all(road):
            _, reason = levels.get(t.pole) or (None, None)
            out.append(twin_view(t.pole, t, reason, int(restarts.get(t.pole, 0))))
        order = {p: i for i, p in enumerate(r.pole_ids)}
        out.sort(key=lambda v: order[v.pole])
        self._twins_cache[road] = (version, seq, now, out)
        return list(out)

    # -- control (the controller's) ------------------------------------------------------------
    def dim(self, road: str, poles: list[str], level: float, ramp_ms: int, expires_ms: int | None,
            actor: str, force: bool = False) -> list[Command]:
        out = [port_codec.command(c) for c in self._change(
            "dim", road=road, poles=poles, level=level, ramp_ms=ramp_ms, expires_ms=expires_ms, actor=actor,
            force=force)]
        for c in out:
            self._keep(self._issued, c.cmd_id, c)
        return out

    def identify(self, road: str, pole: str, seconds: int, actor: str) -> Command:
        c = port_codec.command(self.control.call("identify", road=road, pole=pole, seconds=seconds, actor=actor))
        self._keep(self._issued, c.cmd_id, c)
        return c

    def switch_port(self, road: str, pole: str, port: str, on: bool, actor: str) -> Command:
        c = port_codec.command(self.control.call("switch_port", road=road, pole=pole, port=port, on=on, actor=actor))
        self._keep(self._issued, c.cmd_id, c)
        return c

    def power_cycle(self, road: str, pole: str, port: str, off_s: int, actor: str) -> Command:
        c = port_codec.command(self.control.call("power_cycle", road=road, pole=pole, port=port, off_s=off_s,
                                                 actor=actor))
        self._keep(self._issued, c.cmd_id, c)
        return c

    def maintenance(self, road: str, pole: str, minutes: int, actor: str) -> tuple[int, int]:
        start, end = self.control.call("maintenance", road=road, pole=pole, minutes=minutes, actor=actor)
        return int(start), int(end)

    def cabinet(self, road: str, cabinet: str) -> CabinetReport:
        # the cabinets' state is the core gateway's (the read model follows the poles only)
        return port_codec.cabinet(self.control.call("cabinet", road=road, cabinet=cabinet))

    def command(self, cmd_id: str) -> Command | None:
        with self._cmd_lock:
            issued, finished = self._issued.get(cmd_id), self._finished.get(cmd_id)
        if issued is not None and finished is not None:
            return replace(issued, status=finished)
        if (issued is not None and issued.status.status == "pending" and not self.events_missed
                and time.time() * 1000 - issued.issued_ms < PENDING_TRUSTED_S * 1000):
            return issued
        c = self.control.find("command", cmd_id=cmd_id)  # only the process that issued it knows it
        return port_codec.command(c) if c is not None else None

    def emergency(self, road: str, on: bool, actor: str) -> None:
        self._change("emergency", road=road, on=on, actor=actor)

    def emergency_active(self, road: str) -> bool:
        self._road(road)
        return bool(self._snapshot().get("emergency", {}).get(road, False))

    # -- schedules: read from the state database, changed by the controller --------------------
    def schedules(self, road: str) -> list[Schedule]:
        return load_schedules(self.store, self._road(road))

    def put_schedule(self, road: str, schedule: Schedule, actor: str) -> Schedule:
        return port_codec.schedule(self._change("put_schedule", road=road, schedule=port_codec.encode(schedule),
                                                actor=actor))

    def delete_schedule(self, road: str, schedule_id: str, actor: str) -> None:
        self._change("delete_schedule", road=road, schedule_id=schedule_id, actor=actor)

    def active_schedules(self, road: str, now_ms: int) -> dict[str, str | None]:
        return active_schedule_ids(self._road(road), self.schedules(road), now_ms)

    # -- faults: read from the state database, moved by the controller -------------------------
    def faults(self, road: str | None = None, state: str | None = None, type: str | None = None,
               segment: str | None = None, severity: str | None = None) -> list[FaultView]:
        roads = [road] if road else list(self.roads)
        for rid in roads:
            self._road(rid)
        key, gen, now = (road, state, type, segment, severity), self._faults_gen, time.monotonic()
        hit = self._faults_cache.get(key)
        if hit is None or hit[0] != gen or now - hit[1] >= FAULTS_FRESH_S:
            hit = (gen, now, fault_list(self.store, roads, state, type, segment, severity))
            if len(self._faults_cache) >= 256:  # filters come from callers: keep the cache bounded
                self._faults_cache.clear()
            self._faults_cache[key] = hit
        return list(hit[2])

    def fault(self, fault_id: str) -> FaultView | None:
        from controller.errors import UnknownFaultError

        try:
            return stored_fault_view(self.store, self.store.fault(fault_id))
        except UnknownFaultError:
            return None

    def ack_fault(self, fault_id: str, actor: str, note: str) -> FaultView:
        out = port_codec.fault(self.control.call("ack_fault", fault_id=fault_id, actor=actor, note=note))
        self._faults_gen += 1
        return out

    def resolve_fault(self, fault_id: str, actor: str, note: str) -> FaultView:
        out = port_codec.fault(self.control.call("resolve_fault", fault_id=fault_id, actor=actor, note=note))
        self._faults_gen += 1
        return out

    # -- telemetry and energy ------------------------------------------------------------------
    def telemetry(self, road: str, poles: list[str], start_ms: int, end_ms: int, every_s: int) -> pd.DataFrame:
        r = self._road(road)
        try:
            return readings_frame(self.readings, r, poles, start_ms, end_ms, every_s)
        except KeyError as err:
            raise NotFound("pole", str(err.args[0])) from None
        except ReadingsUnavailable as err:
            raise Unavailable(str(err)) from None

    def latest(self, road: str) -> pd.DataFrame:
        self._road(road)
        return latest_frame(self.read.twins.all(road))

    def energy(self, road: str, day: date) -> Energy:
        return port_codec.energy(self.control.call("energy", road=road, day=day.isoformat()))

    # -- health and own metrics ----------------------------------------------------------------
    def ready(self) -> dict[str, bool]:
        try:
            db = bool(self.influx.ping())
        except Exception:
            db = False
        with self._snap_lock:
            fresh = bool(self._snap) and time.monotonic() - self._snap_at < SNAPSHOT_STALE_S
            controller_road_time = bool(self._snap.get("ready", {}).get("road_time"))
        road_time = all(self.read.clock.now_ms(r) is not None for r in self.roads)
        # an operator's dim is timed by the controller: its process answering and knowing the road's
        # time is part of this check
        return {"broker": self.read.connected, "database": db,
                "road_time": road_time and fresh and controller_road_time}

    def stats(self) -> dict[str, float]:
        return {k: float(v) for k, v in (self._snapshot().get("stats") or {}).items()}

    def now_ms(self) -> int:
        known = [t for r in self.roads if (t := self.read.clock.now_ms(r)) is not None]
        return max(known) if known else wall_ms()

    def road_time(self, road: str) -> RoadTime:
        self._road(road)
        now = self.read.clock.now_ms(road)
        return RoadTime(now if now is not None else wall_ms(), self.read.clock[road].mode or "unknown")
