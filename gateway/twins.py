"""Pole twins: each pole's reported state, availability and config versions.

Reported state and last telemetry are ordered by the device ``ts``, never by arrival, so a late
redelivery never overwrites something newer. A pole is online after ``status online`` or any
message from it, and offline after ``status offline`` (its will) or after silence longer than
three report intervals of platform time (:meth:`TwinStore.sweep`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from streetlight.clock import StreamTime
from streetlight.protocol import Event, PortReading, State, Telemetry
from streetlight.registry import Road

from .inbound import Inbound

SILENT_INTERVALS = 3


@dataclass(slots=True)
class Twin:
    road: str
    pole: str
    online: bool | None = None  # None: never heard of since the gateway started
    offline_reason: str | None = None  # "status" (the pole's will) or "silence"
    offline_since_ms: int | None = None  # platform time it went offline
    last_seen_ms: int | None = None
    state: State | None = None
    last_telemetry: Telemetry | None = None
    config_version_applied: int | None = None
    config_version_desired: int | None = None
    ports: dict[str, PortReading] = field(default_factory=dict)  # each port as last reported (protocol 1.1)
    tripped: set[str] = field(default_factory=set)  # ports whose protection opened, until reported on again


class TwinStore:
    def __init__(self, roads: list[Road], report_interval_s: float = 10.0) -> None:
        self._lock = threading.Lock()
        self._twins = {r.id: {p.id: Twin(r.id, p.id) for p in r.poles} for r in roads}
        self.report_interval_s = {r.id: report_interval_s for r in roads}
        self._stream = {r.id: StreamTime() for r in roads}  # road time as far as the twins were told

    def get(self, road: str, pole: str) -> Twin | None:
        with self._lock:
            t = self._twins.get(road, {}).get(pole)
            return _copy(t) if t is not None else None

    def all(self, road: str) -> list[Twin]:
        with self._lock:
            return [_copy(t) for t in self._twins.get(road, {}).values()]

    def is_offline(self, road: str, pole: str) -> bool:
        t = self._twins.get(road, {}).get(pole)
        return t is not None and t.online is False

    def apply(self, inb: Inbound) -> bool:
        """Update from a valid message; True if the pole has just come (back) online."""
        with self._lock:
            self._stream[inb.road].given(inb.road_ms)
            t = self._twins[inb.road][inb.pole]
            was_online = t.online
            if inb.kind == "status":
                t.online = inb.message == "online"
                t.offline_reason = None if t.online else "status"
                t.offline_since_ms = None if t.online else inb.ts_ms
                # a status has no ts of its own: before road time is known it is stamped with the
                # wall clock, which may lie days from a simulated road's time and would pin
                # last_seen there; the pole's first reading will say when it was seen
                if t.online and inb.road_ms is not None:
                    t.last_seen_ms = max(t.last_seen_ms or 0, inb.ts_ms)
                return bool(t.online) and was_online is not True
            t.last_seen_ms = max(t.last_seen_ms or 0, inb.ts_ms)
            if inb.kind == "telemetry":
                if t.last_telemetry is None or inb.ts_ms >= t.last_telemetry.ts:
                    t.last_telemetry = inb.message
                    for port, reading in (inb.message.ports or {}).items():
                        t.ports[port] = reading
                        if reading.on:
                            t.tripped.discard(port)
            elif inb.kind == "event" and isinstance(inb.message, Event) and inb.message.type == "port_trip":
                t.tripped.add(str(getattr(inb.message, "port", "")))
            elif inb.kind == "state":
                if t.state is None or inb.ts_ms >= t.state.ts:
                    t.state = inb.message
                    t.config_version_applied = inb.message.config_version
            # a message newer than the moment it went offline proves it is back (a redelivery
            # from before does not)
            if t.online is not True and (t.offline_since_ms is None or inb.ts_ms > t.offline_since_ms):
                t.online, t.offline_reason, t.offline_since_ms = True, None, None
                return True
            return False

    def set_desired(self, road: str, version: int) -> None:
        with self._lock:
            for t in self._twins.get(road, {}).values():
                t.config_version_desired = version

    def sweep(self, now_of: Callable[[str], int | None]) -> list[tuple[str, str]]:
        """Mark poles silent for more than three report intervals of their road's time offline;
        returns them. ``now_of(road)`` is the road clock's time (``None`` while unknown: nothing is
        swept); silence is judged on road time as far as the twins have been told (the clock may
        have run ahead over messages still on their way here)."""
        gone: list[tuple[str, str]] = []
        with self._lock:
            for road, twins in self._twins.items():
                now_ms = self._stream[road].now(now_of(road))
                if now_ms is None:
                    continue
                limit = now_ms - int(SILENT_INTERVALS * self.report_interval_s[road] * 1000)
                for t in twins.values():
                    if t.online and t.last_seen_ms is not None and t.last_seen_ms < limit:
                        t.online, t.offline_reason, t.offline_since_ms = False, "silence", t.last_seen_ms
                        gone.append((road, t.pole))
        return gone


def _copy(t: Twin) -> Twin:
    return replace(t, ports=dict(t.ports), tripped=set(t.tripped))
