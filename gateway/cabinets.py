"""Distribution cabinets and pole ports at the edge (protocol 1.1): checked against the registry.

A cabinet report is refused whole only when it cannot be read (topic, JSON, types, ranges: the
protocol's rules). Against the registry, parts are refused and the rest kept, each refusal
counted in the rejected log with its reason:

* ``unknown_cabinet``: the cabinet is not in the road's registry (the whole report);
* ``unknown_feeder``: the cabinet reports a feeder it does not feed (that feeder's reading);
* ``energy_decreased``: a feeder's cumulative energy went down (that feeder's reading; the meter's
  last good value stays the reference, so one bad reading cannot hide a later theft);
* ``unknown_port``: a pole reports a port the registry does not give it (that port's reading).

A cabinet's ``ts`` is its own clock, judged against road time like a pole's but never evidence
of it (a road's time is its poles' consensus): a report out of tolerance is stored at road time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

from streetlight.clock import RoadClocks
from streetlight.errors import ProtocolError
from streetlight.protocol import (
    CabinetTelemetry,
    PortReading,
    Telemetry,
    parse_cabinet_telemetry,
    parse_status,
    parse_topic,
)
from streetlight.registry import Road
from telemetry import cabinet_lines, port_lines

from .inbound import Inbound
from .rejected import RejectedStore

CABINET_TELEMETRY = "cabinet_telemetry"  # Inbound kinds of cabinet messages (``Inbound.pole`` holds the cabinet)
CABINET_STATUS = "cabinet_status"


@dataclass(slots=True)
class CabinetTwin:
    road: str
    cabinet: str
    online: bool | None = None
    last_seen_ms: int | None = None
    last: CabinetTelemetry | None = None
    energy_wh: dict[str, float] = field(default_factory=dict)  # last accepted reading per feeder


class Cabinets:
    """Validation, storage lines and twins of cabinets; port checks of pole telemetry."""

    def __init__(self, roads: list[Road], rejected: RejectedStore, clock: RoadClocks) -> None:
        self.roads = {r.id: r for r in roads}
        self.rejected = rejected
        self.clock = clock
        self._lock = threading.Lock()
        self._twins = {r.id: {c.id: CabinetTwin(r.id, c.id) for c in r.cabinets} for r in roads}
        self._feeders = {(r.id, c.id): {f.id for f in r.feeders_of(c.id)} for r in roads for c in r.cabinets}
        self._energy: dict[tuple[str, str, str], float] = {}  # last accepted per feeder (ingest thread only)
        self._port_kinds = {(r.id, p.id): {q.id: q.kind for q in p.ports} for r in roads for p in r.poles}

    # -- pole ports ------------------------------------------------------------------------------
    def ports(self, topic: str, payload: bytes, inb: Inbound) -> tuple[Inbound, list[str]]:
        """Drop (and count) readings of ports the pole does not have; the ``port`` lines of the rest."""
        t = inb.message
        if not isinstance(t, Telemetry) or not t.ports:
            return inb, []
        kinds = self._port_kinds.get((inb.road, inb.pole), {})
        known: dict[str, PortReading] = {}
        for port_id, r in t.ports.items():
            if port_id in kinds:
                known[port_id] = r
            else:
                have = ", ".join(sorted(kinds)) or "no ported equipment"
                self.rejected.add(topic, payload, "unknown_port",
                                  f"port {port_id!r} is not on pole {inb.pole} ({have}); its reading was dropped, "
                                  "the rest of the report kept", inb.road, inb.pole)
        if len(known) != len(t.ports):
            inb = replace(inb, message=t.model_copy(update={"ports": known or None}))
        lines = port_lines(inb.road, inb.pole, {k: (kinds[k], r) for k, r in known.items()}, inb.ts_ms, t.seq)
        return inb, lines

    # -- cabinet topics --------------------------------------------------------------------------
    def take(self, topic: str, payload: bytes) -> tuple[Inbound, list[str]]:
        """:meth:`prepare` for a message as it came, on a topic still to be read."""
        t = parse_topic(topic)
        if t.cabinet is None:
            raise ProtocolError("bad_topic", f"topic {topic[:200]!r} is not a cabinet topic", "topic")
        return self.prepare(topic, payload, t.road, t.cabinet, t.kind)

    def prepare(self, topic: str, payload: bytes, road: str, cabinet: str, kind: str) -> tuple[Inbound, list[str]]:
        """Validate one cabinet message; raises ProtocolError when nothing of it can be kept."""
        r = self.roads.get(road)
        if r is None:
            raise ProtocolError("unknown_road", f"road {road!r} is not served here ({', '.join(self.roads)})", "topic")
        if cabinet not in r.cabinet_by_id:
            raise ProtocolError("unknown_cabinet", f"cabinet {cabinet!r} is not in road {road!r} "
                                f"({', '.join(r.cabinet_by_id)})", "topic")
        now = self.clock.now_ms(road)
        if kind == "status":
            status = parse_status(payload)
            at = now if now is not None else self.clock.now_or_wall(road)
            return Inbound(road, cabinet, CABINET_STATUS, at, status, road_ms=now), []
        c = parse_cabinet_telemetry(payload)
        feeds = self._feeders[(road, cabinet)]
        kept: dict[str, Any] = {}
        for fid, reading in c.feeders.items():
            if fid not in feeds:
                self.rejected.add(topic, payload, "unknown_feeder",
                                  f"cabinet {cabinet} does not feed {fid!r} (it feeds {', '.join(sorted(feeds))}); "
                                  "that reading was dropped", road, cabinet)
                continue
            last = self._energy.get((road, cabinet, fid))
            if last is not None and reading.energy_wh < last:
                self.rejected.add(topic, payload, "energy_decreased",
                                  f"feeder {fid} energy {reading.energy_wh} Wh is below the last reading {last} Wh "
                                  "(a cumulative meter never goes down); that reading was dropped", road, cabinet)
                continue
            kept[fid] = reading
            self._energy[(road, cabinet, fid)] = reading.energy_wh
        c = c.model_copy(update={"feeders": kept})
        ts, device_ts = c.ts, None
        tol = self.clock[road].policy.tolerance_ms
        if now is not None and abs(c.ts - now) > tol:
            ts, device_ts = now, c.ts
            c = c.model_copy(update={"ts": now})
        inb = Inbound(road, cabinet, CABINET_TELEMETRY, ts, c, device_ts_ms=device_ts, road_ms=now)
        return inb, cabinet_lines(road, cabinet, c) if kept else []

    def apply(self, inb: Inbound) -> None:
        """Update the cabinet's twin from a valid message (after storage)."""
        with self._lock:
            t = self._twins[inb.road][inb.pole]
            if inb.kind == CABINET_STATUS:
                t.online = inb.message == "online"
                return
            c = inb.message
            assert isinstance(c, CabinetTelemetry)
            t.online = True
            t.last_seen_ms = max(t.last_seen_ms or 0, inb.ts_ms)
            if t.last is None or c.ts >= t.last.ts:
                t.last = c
            for fid, reading in c.feeders.items():
                t.energy_wh[fid] = max(t.energy_wh.get(fid, 0.0), reading.energy_wh)

    def get(self, road: str, cabinet: str) -> CabinetTwin | None:
        with self._lock:
            t = self._twins.get(road, {}).get(cabinet)
            return replace(t, energy_wh=dict(t.energy_wh)) if t is not None else None
