"""``Lwm2mAdapter``: LwM2M lamp controllers on the same pipeline as the MQTT poles.

    adapter = Lwm2mAdapter(gw, settings, roads); adapter.start(); …; adapter.stop()

Observed values become the protocol's own messages on the protocol's own topics (telemetry,
events, status, acks) handed to :meth:`gateway.service.GatewayService.submit`, so they are
validated, counted, deduplicated, put on road time, stored, and reach the twins, the controller
and the alerts exactly as MQTT messages do. Commands the gateway dispatches to these poles
(:meth:`~gateway.service.GatewayService.route_downlink`) become Writes; a dim is acked when the
Write succeeded and the observed dimming level confirms it.

The CoAP server runs on an asyncio loop in a thread of its own; nothing blocks the gateway's.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.inbound import Raw
from gateway.service import GatewayService
from streetlight.errors import ProtocolError
from streetlight.protocol import DimCommand, parse_payload, parse_topic, pole_topic
from streetlight.protocol.topics import Kind
from streetlight.registry import Road
from streetlight.settings import Settings

from .codec import FORMATS, Value
from .objects import DIM_TARGETS, FLAGS, OBSERVED, ON_OFF, READINGS, TIMESTAMPS, Path, kind_of, path_str
from .registrations import Registration, Registrations
from .server import Lwm2mServer, Timing

log = logging.getLogger(__name__)
COALESCE_S = 0.05  # notifications of one reading arrive together: one telemetry per pole per burst
START_TIMEOUT_S = 10.0
_FIELDS: dict[str, list[tuple[int, Path, float]]] = {}
for _path, _r in READINGS.items():
    _FIELDS.setdefault(_r.field, []).append((_r.rank, _path, _r.scale))
for _choices in _FIELDS.values():
    _choices.sort()


@dataclass(slots=True)
class _Pending:
    cmd_id: str
    confirm: Path
    level: int
    written: bool = False


@dataclass(slots=True)
class _Pole:
    values: dict[Path, Value] = field(default_factory=dict)
    seq: int = 0
    flags: dict[Path, bool] = field(default_factory=dict)
    dirty: bool = False
    stamp: int | None = None  # the device's own time of this burst (5518), ms
    pending: _Pending | None = None  # the newest dim waiting for its confirmation


class Lwm2mAdapter:
    def __init__(self, gw: GatewayService, settings: Settings, roads: list[Road]) -> None:
        self.gw = gw
        self.settings = settings
        self.registrations = Registrations(roads, settings.lwm2m_lifetime_s)
        self.counts: Counter[str] = Counter()  # refused or dropped input, by reason
        self.notifications = 0
        self.handed_on: Counter[str] = Counter()  # messages handed to the gateway, by kind
        self.registered_total = 0
        fmt = FORMATS[settings.lwm2m_write_format]
        self.server = Lwm2mServer(self.registrations, self, OBSERVED, Timing(
            settings.lwm2m_pmin_s, settings.lwm2m_pmax_s, settings.lwm2m_request_timeout_s,
            settings.lwm2m_queue_awake_s, fmt))
        self._poles: dict[tuple[str, str], _Pole] = {}
        self.last_reading_ms: dict[tuple[str, str], int] = {}  # ts of each pole's newest telemetry handed on
        self._served = [(r.id, p.id) for r in roads for p in r.poles if p.lwm2m_endpoint]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="lwm2m-server", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), loop).result(START_TIMEOUT_S)
        self.gw.route_downlink(self._served, self._command)
        log.info("LwM2M server on coap://%s:%d for %d poles", self.settings.lwm2m_host, self.settings.lwm2m_port,
                 len(self._served))

    async def _start(self) -> None:
        await self.server.start(self.settings.lwm2m_host, self.settings.lwm2m_port)

    def stop(self) -> None:
        if self._loop is None:
            return
        loop = self._loop

        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), loop).result(START_TIMEOUT_S)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(5)
            loop.close()
            self._loop = None

    def __enter__(self) -> Lwm2mAdapter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> dict[str, int]:
        return {"registered": len(self.registrations), "registrations": self.registered_total,
                "notifications": self.notifications, **{f"refused_{k}": v for k, v in self.counts.items()}}

    # -- to the pipeline ---------------------------------------------------------------------------
    def _submit(self, road: str, pole: str, kind: Kind, payload: bytes) -> None:
        self.handed_on[kind] += 1
        # LwM2M numbers nothing: the seq is made here, so the gateway does not judge it for duplicates
        # or restarts (a pole whose other equipment still speaks MQTT keeps that seq to itself);
        # a CON notification resent by the device is dropped by CoAP's own message-id deduplication
        self.gw.submit([Raw(pole_topic(road, pole, kind), payload, 0, 0, -1, sequenced=False)])

    def _now(self, road: str) -> int:
        return self.gw.clock.now_or_wall(road)

    # -- Handler (called on the server's loop) -----------------------------------------------------
    def count(self, reason: str, detail: str, reg: Registration | None = None, payload: bytes = b"") -> None:
        self.counts[reason] += 1
        road, pole = (reg.road, reg.pole) if reg is not None else (None, None)
        self.gw.rejected.add(f"lwm2m:{reason}", bytes(payload[:1024]), reason, detail, road, pole)
        log.debug("LwM2M %s: %s", reason, detail)

    def on_registered(self, reg: Registration) -> None:
        self.registered_total += 1
        old = self._poles.get((reg.road, reg.pole))
        self._poles[(reg.road, reg.pole)] = _Pole(seq=old.seq if old else 0)  # a new registration reports afresh
        self._submit(reg.road, reg.pole, "status", b"online")

    def on_updated(self, reg: Registration) -> None:
        """The device spoke (a queue-mode device woke): it is there; commands held for it go out."""
        self._submit(reg.road, reg.pole, "status", b"online")

    def on_deregistered(self, reg: Registration, why: str) -> None:
        self._submit(reg.road, reg.pole, "status", b"offline")

    def on_values(self, reg: Registration, values: dict[Path, Value]) -> None:
        self.notifications += 1
        st = self._poles.setdefault((reg.road, reg.pole), _Pole())
        for path in TIMESTAMPS:  # a timestamp dates everything notified with it, wherever it stands
            if path in values:
                st.stamp = int(values[path]) * 1000
        for path, value in values.items():
            if kind_of(path) is None or path[1] != 0:
                self.count("unknown_resource", f"{path_str(path)} is not read here", reg, str(value).encode())
                continue
            st.values[path] = value
            if path in READINGS or path == ON_OFF:
                if not st.dirty:
                    st.dirty = True
                    asyncio.get_running_loop().call_later(COALESCE_S, self._flush, reg)
            flag = FLAGS.get(path)
            if flag is not None:
                was = st.flags.get(path, False)
                st.flags[path] = bool(value)
                ts = self._ts(st, reg.road) if value and not was else None
                if ts is not None:
                    event = {"ts": ts, "seq": self._seq(st, reg.road), "type": flag.event, "code": flag.code}
                    self._submit(reg.road, reg.pole, "event", orjson.dumps(event))
            self._confirm(reg, st, path, value)

    def _ts(self, st: _Pole, road: str) -> int | None:
        """When a reading was taken: the device's own timestamp (5518) when it sent one, else road
        time. Before road time is known (a replay or simulated road, STREETLIGHT_ROAD_CLOCK other
        than ``wall``, before two thirds of its poles reported) such a reading cannot be placed in
        time: it is counted and dropped rather than stamped with the wall clock, which would pull
        road time its way."""
        if st.stamp is not None:
            return st.stamp
        now = self.gw.clock.now_ms(road)
        if now is None:
            self.counts["no_road_time"] += 1
        return now

    def _seq(self, st: _Pole, road: str) -> int:
        """The protocol's per-pole sequence, which LwM2M does not have. The gateway does not judge it
        (``Raw.sequenced`` is False); it only tells apart two readings of one millisecond in storage
        (the point time carries ``seq``). Tenths of a second of road time, kept increasing, so that it
        does not repeat across registrations or restarts of this server."""
        st.seq = max(st.seq + 1, (self._now(road) // 100) & 0xFFFF_FFFF)
        return st.seq

    def _flush(self, reg: Registration) -> None:
        st = self._poles.get((reg.road, reg.pole))
        if st is None or not st.dirty:
            return
        st.dirty = False
        msg: dict[str, Any] = {}
        for name, choices in _FIELDS.items():
            for _rank, path, scale in choices:
                if path in st.values:
                    value = st.values[path]
                    msg[name] = abs(float(value)) if name == "pf" else float(value) * scale
                    break
        if st.values.get(ON_OFF) is False:
            msg["dim"] = 0.0
        missing = [f for f in ("dim", "power_w", "voltage_v") if f not in msg]
        if missing:
            self.counts["incomplete_reading"] += 1  # not yet observed: normal for a moment after registering
            return
        ts = self._ts(st, reg.road)
        st.stamp = None
        if ts is None:
            return
        msg = {"ts": ts, "seq": self._seq(st, reg.road), **msg}
        self.last_reading_ms[(reg.road, reg.pole)] = ts
        self._submit(reg.road, reg.pole, "telemetry", orjson.dumps(msg))

    # -- commands ----------------------------------------------------------------------------------
    def _command(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        """From the gateway's dispatcher (its thread, its lock held): hand over, never wait."""
        t = parse_topic(topic)
        try:
            cmd = parse_payload("cmd", payload)
        except ProtocolError as err:
            self.counts["bad_command"] += 1
            log.error("command for %s not understood: %s", topic, err)
            return
        loop = self._loop
        if loop is not None and t.pole is not None:
            pole = t.pole
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._run_command(t.road, pole, cmd)))

    def _ack(self, road: str, pole: str, cmd_id: str, ok: bool, error: str | None) -> None:
        st = self._poles.get((road, pole))
        dim = float(st.values.get(DIM_TARGETS[0][1], st.values.get(DIM_TARGETS[1][1], 0))) if st else 0.0
        ack = {"cmd_id": cmd_id, "ts": self._now(road), "ok": ok, "dim": min(max(dim, 0.0), 100.0), "error": error}
        self._submit(road, pole, "ack", orjson.dumps(ack))

    async def _run_command(self, road: str, pole: str, cmd: Any) -> None:
        reg = self.registrations.of_pole(road, pole)
        if reg is None:
            self.counts["command_unregistered"] += 1  # the dispatcher retries, and holds it once the twin is offline
            return
        if not isinstance(cmd, DimCommand):
            self._ack(road, pole, cmd.cmd_id, False, f"{cmd.type!r} has no LwM2M resource on a lamp controller")
            return
        target = next(((w, c) for w, c in DIM_TARGETS if reg.has(w[0], w[1])), None)
        if target is None:
            self._ack(road, pole, cmd.cmd_id, False, "the device offers neither /3416/0 nor /3311/0 to dim")
            return
        level = math.ceil(cmd.level - 1e-9)  # the resource is a whole percent: never under a floor
        st = self._poles.setdefault((road, pole), _Pole())
        pending = st.pending if st.pending is not None and st.pending.cmd_id == cmd.cmd_id else None
        if pending is None:
            pending = st.pending = _Pending(cmd.cmd_id, target[1], level)  # a newer dim replaces an older one
        error = await self.server.write(reg, target[0], level)
        if st.pending is not pending:
            return  # replaced while the write was under way
        if error:
            st.pending = None
            self._ack(road, pole, cmd.cmd_id, False, error)
            return
        pending.written = True
        seen = st.values.get(pending.confirm)
        if seen is not None:
            self._confirm(reg, st, pending.confirm, seen)

    def _confirm(self, reg: Registration, st: _Pole, path: Path, value: Value) -> None:
        p = st.pending
        if p is None or not p.written or path != p.confirm:
            return
        if isinstance(value, int | float) and abs(float(value) - p.level) < 0.5:
            st.pending = None
            self._ack(reg.road, reg.pole, p.cmd_id, True, None)
