"""Command dispatch: publish ``cmd`` at QoS 1, wait for the pole's Ack (matched by ``cmd_id``,
the application's id, never the MQTT packet id), retry with backoff a bounded number of times.

Every command ends ``acked``, ``failed`` (the pole answered ``ok: false``) or ``expired`` (no
answer after the last attempt, or held too long). A command for a pole known to be offline is
held as its desired state (one per pole and type: a newer one supersedes it) and sent when the
pole comes back. A retry reuses the ``cmd_id``, so a pole that got the first copy acknowledges
again without executing twice; a second Ack for a finished command changes nothing.
Times in a record are wall-clock milliseconds: they measure how long each step took.
"""

from __future__ import annotations

import builtins
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from streetlight.protocol import Ack, Command, DimCommand, IdentifyCommand, PortCommand, PowerCycleCommand, pole_topic
from streetlight.registry import Road

from .errors import UnknownPoleError
from .twins import TwinStore

log = logging.getLogger(__name__)
Publish = Callable[[str, bytes, int, bool], None]  # topic, payload, qos, retain
PublishMany = Callable[[list[tuple[str, bytes]]], None]  # QoS 1 (topic, payload), handed over together


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class CommandRecord:
    cmd_id: str
    road: str
    pole: str
    type: str
    params: dict[str, Any]
    status: str = "pending"  # pending | acked | failed | expired
    created_ms: int = field(default_factory=wall_ms)
    sent_ms: int | None = None  # first send
    acked_ms: int | None = None
    attempts: int = 0
    error: str | None = None
    result_dim: float | None = None
    reason: str = "operator"
    source: str = "api"
    held: bool = False  # waiting for an offline pole
    last_sent_ms: int | None = None

    @property
    def done(self) -> bool:
        return self.status != "pending"


@dataclass(frozen=True, slots=True)
class DimOrder:
    """One pole's share of a dim that leaves with others (a road or a segment at once)."""

    pole: str
    level: float
    ramp_ms: int = 0
    reason: str = "operator"
    source: str = "api"


class CommandDispatcher:
    def __init__(self, roads: list[Road], twins: TwinStore, publish: Publish, *, now_issued: Callable[[str], int],
                 ack_timeout_s: float = 2.0, max_attempts: int = 4, hold_ttl_s: float = 3600.0,
                 keep: int = 20_000, on_latency: Callable[[float], None] | None = None,
                 publish_many: PublishMany | None = None) -> None:
        self.roads = {r.id: r for r in roads}
        self.twins = twins
        self._publish = publish
        self._publish_many = publish_many or self._one_by_one
        # command ids: unique across restarts (a random prefix drawn once) and cheap to make (a
        # counter): a uuid4 per command costs a system call, and a road dim makes 93 of them
        self._id_prefix = f"c-{os.urandom(6).hex()}-"
        self._id_count = itertools.count(1)  # its next() is atomic: records are made outside the lock
        self._now_issued = now_issued
        self.ack_timeout_s = ack_timeout_s
        self.max_attempts = max_attempts
        self.hold_ttl_s = hold_ttl_s
        self.keep = keep
        self._on_latency = on_latency
        self._lock = threading.RLock()
        self._records: dict[str, CommandRecord] = {}
        self._open: dict[str, CommandRecord] = {}
        self._listeners: list[Callable[[CommandRecord], None]] = []

    # -- issuing ---------------------------------------------------------------------------------
    def dim(self, road: str, pole: str, level: float, ramp_ms: int = 0, reason: str = "operator",
            source: str = "api") -> CommandRecord:
        return self.dim_many(road, [DimOrder(pole, level, ramp_ms, reason, source)])[0]

    def dim_many(self, road: str, orders: Iterable[DimOrder]) -> list[CommandRecord]:
        """Dims for several poles of ``road``, checked first (one bad order issues none), then
        registered under one lock and published together: a road dim leaves at once."""
        orders = list(orders)
        r = self.roads.get(road)
        for o in orders:
            if r is None or not r.has_pole(o.pole):
                raise UnknownPoleError(road, o.pole if r is not None else None)
            if not 0 <= o.level <= 100:
                raise ValueError(f"dim level must be 0 … 100, got {o.level}")
            if o.ramp_ms < 0:
                raise ValueError(f"ramp_ms must be ≥ 0, got {o.ramp_ms}")
        return self._issue_many(road, [(o.pole, "dim", {"level": o.level, "ramp_ms": o.ramp_ms}, o.reason, o.source)
                                       for o in orders])

    def identify(self, road: str, pole: str, seconds: int, reason: str = "operator",
                 source: str = "api") -> CommandRecord:
        if not 1 <= seconds <= 600:
            raise ValueError(f"identify seconds must be 1 … 600, got {seconds}")
        return self._issue(road, pole, "identify", {"seconds": seconds}, reason, source)

    def port(self, road: str, pole: str, port: str, on: bool, reason: str = "operator",
             source: str = "api") -> CommandRecord:
        """Switch one port of a multi-function pole (protocol 1.1)."""
        return self._issue(road, pole, "port", {"port": port, "on": on}, reason, source)

    def power_cycle(self, road: str, pole: str, port: str, off_s: int, reason: str = "operator",
                    source: str = "api") -> CommandRecord:
        """Switch a port off and on again after ``off_s`` (a hung camera's cure)."""
        if not 1 <= off_s <= 600:
            raise ValueError(f"power_cycle off_s must be 1 … 600, got {off_s}")
        return self._issue(road, pole, "power_cycle", {"port": port, "off_s": off_s}, reason, source)

    def get(self, cmd_id: str) -> CommandRecord | None:
        with self._lock:
            r = self._records.get(cmd_id)
            return replace(r) if r is not None else None

    def list(self, road: str | None = None, limit: int = 100) -> list[CommandRecord]:
        with self._lock:
            out = [replace(r) for r in self._records.values() if road is None or r.road == road]
        return out[-limit:]

    def add_listener(self, fn: Callable[[CommandRecord], None]) -> None:
        """``fn(record)`` when a command ends (acked, failed, expired)."""
        self._listeners.append(fn)

    def _issue(self, road: str, pole: str, kind: str, params: dict[str, Any], reason: str, source: str) -> CommandRecord:
        r = self.roads.get(road)
        if r is None or not r.has_pole(pole):
            raise UnknownPoleError(road, pole if r is not None else None)
        return self._issue_many(road, [(pole, kind, params, reason, source)])[0]

    def _issue_many(self, road: str,
                    items: builtins.list[tuple[str, str, dict[str, Any], str, str]]) -> builtins.list[CommandRecord]:
        recs = [CommandRecord(f"{self._id_prefix}{next(self._id_count):x}", road, pole, kind, params, reason=reason, source=source)
                for pole, kind, params, reason, source in items]
        with self._lock:
            out: builtins.list[CommandRecord] = []
            for rec in recs:
                self._records[rec.cmd_id] = rec
                self._open[rec.cmd_id] = rec
                if self.twins.is_offline(road, rec.pole):
                    for other in list(self._open.values()):
                        if other is not rec and other.held and (other.road, other.pole, other.type) == (
                                road, rec.pole, rec.type):
                            self._finish(other, "expired", "superseded by a newer command while the pole was offline")
                    rec.held = True
                else:
                    out.append(rec)
            self._send_many(out)
            self._trim()
            return [replace(rec) for rec in recs]

    def _payload(self, rec: CommandRecord, issued_ts: int) -> bytes:
        model: Command
        if rec.type == "dim":
            model = DimCommand(cmd_id=rec.cmd_id, issued_ts=issued_ts, level=float(rec.params["level"]),
                               ramp_ms=int(rec.params["ramp_ms"]))
        elif rec.type == "port":
            model = PortCommand(cmd_id=rec.cmd_id, issued_ts=self._now_issued(rec.road), port=rec.params["port"],
                                on=bool(rec.params["on"]))
        elif rec.type == "power_cycle":
            model = PowerCycleCommand(cmd_id=rec.cmd_id, issued_ts=self._now_issued(rec.road), port=rec.params["port"],
                                      off_s=int(rec.params["off_s"]))
        else:
            model = IdentifyCommand(cmd_id=rec.cmd_id, issued_ts=issued_ts, seconds=int(rec.params["seconds"]))
        return model.to_bytes()

    def _one_by_one(self, msgs: builtins.list[tuple[str, bytes]]) -> None:
        for topic, payload in msgs:
            self._publish(topic, payload, 1, False)

    def _send(self, rec: CommandRecord) -> None:
        self._send_many([rec])

    def _send_many(self, recs: builtins.list[CommandRecord]) -> None:
        if not recs:
            return
        now = wall_ms()
        issued: dict[str, int] = {}  # road time, asked once per road for the batch
        msgs = []
        for rec in recs:
            rec.held = False
            rec.attempts += 1
            rec.sent_ms = rec.sent_ms or now
            rec.last_sent_ms = now
            if rec.road not in issued:
                issued[rec.road] = self._now_issued(rec.road)
            msgs.append((pole_topic(rec.road, rec.pole, "cmd"), self._payload(rec, issued[rec.road])))
        try:
            self._publish_many(msgs)
        except Exception as err:  # the retry timer tries again; never lose the record
            log.warning("publishing %d command(s) (%s …) failed: %s", len(recs), recs[0].cmd_id, err)

    # -- answers and time ------------------------------------------------------------------------
    def on_ack(self, road: str, pole: str, ack: Ack) -> CommandRecord | None:
        with self._lock:
            rec = self._records.get(ack.cmd_id)
            if rec is None or rec.done or (rec.road, rec.pole) != (road, pole):
                return None  # unknown, finished already (duplicate ack), or another pole's id
            rec.acked_ms = wall_ms()
            rec.result_dim = ack.dim
            if ack.ok:
                self._finish(rec, "acked", None)
            else:
                self._finish(rec, "failed", ack.error or "the pole refused the command")
            if self._on_latency and rec.last_sent_ms is not None:
                self._on_latency((rec.acked_ms - rec.last_sent_ms) / 1000.0)
            return replace(rec)

    def on_online(self, road: str, pole: str) -> None:
        """Send what was held for a pole that has come back."""
        with self._lock:
            for rec in list(self._open.values()):
                if rec.held and rec.road == road and rec.pole == pole:
                    self._send(rec)

    def tick(self, now_ms: int | None = None) -> None:
        """Retry unanswered commands with backoff, expire the hopeless (called by a timer)."""
        now = now_ms if now_ms is not None else wall_ms()
        with self._lock:
            for rec in list(self._open.values()):
                if rec.held:
                    if now - rec.created_ms > self.hold_ttl_s * 1000:
                        self._finish(rec, "expired", "the pole did not come back online in time")
                    continue
                wait = self.ack_timeout_s * 1000 * 2 ** (rec.attempts - 1)
                if rec.last_sent_ms is not None and now - rec.last_sent_ms >= wait:
                    if rec.attempts >= self.max_attempts:
                        self._finish(rec, "expired", f"no ack after {rec.attempts} attempts")
                    elif self.twins.is_offline(rec.road, rec.pole):
                        rec.held = True  # it went away: hold until it is back
                    else:
                        self._send(rec)

    def _finish(self, rec: CommandRecord, status: str, error: str | None) -> None:
        rec.status, rec.error, rec.held = status, error, False
        self._open.pop(rec.cmd_id, None)
        for fn in self._listeners:
            try:
                fn(replace(rec))
            except Exception:
                log.exception("command listener failed")

    def _trim(self) -> None:
        """Forget the oldest finished commands; a tenth of ``keep`` at a time, so that issuing a
        command does not walk the whole book each time once it is full."""
        if len(self._records) > self.keep:
            for cmd_id in list(self._records)[: len(self._records) - self.keep + self.keep // 10]:
                if cmd_id not in self._open:
                    del self._records[cmd_id]
