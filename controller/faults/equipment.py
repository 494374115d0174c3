"""Faults of a multi-function pole's other equipment (protocol 1.1): ports, tilt, service door.

* ``equipment_fault`` (one per pole and port): the port tripped (a ``port_trip`` event, until the
  port reports on again), the equipment's link is down while its port is on (``equipment_offline``
  or telemetry ``link: down``, until ``up``), or the port draws far from the equipment's rated
  power for ``power_reports`` reports in a row while on (cleared by as many normal ones).
* ``pole_tilt``: a ``tilt`` event of at least ``tilt_min_deg`` (a pole struck by a vehicle); it
  stays until a later report of the pole standing (``tilt`` under the threshold) or a crew
  resolves it.
* ``door_open``: a ``door_open`` event outside a maintenance window; it stays ``door_hold_s`` after
  the last one (the protocol has no door-closed event). A window (``set_maintenance``: a crew at
  the pole from now until a time) covers the doors opened within it, not one opened before it.

Readings of ports the registry does not give the pole are refused before they get here (the
gateway counts them); anything still unknown is counted in ``rejected`` and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streetlight.protocol import Event, Telemetry
from streetlight.registry import Pole, Port, Road

from .model import Finding, pole_location, where

KIND_NAMES = {"camera": "camera", "small_cell": "small cell", "traffic_signal": "traffic signal", "sign": "sign",
              "display": "display", "weather_station": "weather station", "emergency_call": "emergency call point"}


@dataclass(frozen=True, slots=True)
class EquipmentLimits:
    power_low_fraction: float = 0.3  # on, but drawing under 30 % of rated: dead or disconnected load
    power_high_fraction: float = 1.6  # or over 160 %: a failing supply or a short on its way to a trip
    power_reports: int = 3
    tilt_min_deg: float = 5.0
    door_hold_s: float = 900.0


@dataclass(slots=True)
class PortWatch:
    port: Port
    on: bool | None = None
    power_w: float | None = None
    link: str | None = None
    tripped_ts: int = -1  # set by port_trip, cleared when the port reports on again
    trip_current_a: float = 0.0
    down_ts: int = -1  # link down while on, since
    off_power_bad: int = 0
    off_power_good: int = 0
    off_power_ts: int = -1
    off_power_active: bool = False


@dataclass(slots=True)
class PoleEquipment:
    pole: Pole
    ports: dict[str, PortWatch]
    tilt_deg: float = 0.0
    tilt_ts: int = -1
    door_ts: int = -1
    maintenance_from_ms: int = -1
    maintenance_until_ms: int = -1


@dataclass
class EquipmentRules:
    road: Road
    limits: EquipmentLimits = field(default_factory=EquipmentLimits)
    rejected: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.poles = {p.id: PoleEquipment(p, {q.id: PortWatch(q) for q in p.ports}) for p in self.road.poles}

    def _port(self, pole_id: str, port_id: str) -> PortWatch | None:
        pe = self.poles.get(pole_id)
        w = pe.ports.get(port_id) if pe is not None else None
        if w is None:
            self.rejected["unknown_port"] = self.rejected.get("unknown_port", 0) + 1
        return w

    def set_maintenance(self, pole_id: str, until_ms: int, from_ms: int = -1) -> None:
        """A crew is at the pole from ``from_ms`` until ``until_ms``: its door may open then."""
        pe = self.poles.get(pole_id)
        if pe is None:
            self.rejected["unknown_pole"] = self.rejected.get("unknown_pole", 0) + 1
            return
        pe.maintenance_from_ms, pe.maintenance_until_ms = from_ms, until_ms

    def in_maintenance(self, pole_id: str, ts: int) -> bool:
        pe = self.poles.get(pole_id)
        return pe is not None and pe.maintenance_from_ms <= ts <= pe.maintenance_until_ms

    def on_telemetry(self, pole_id: str, t: Telemetry) -> None:
        if not t.ports:
            return
        lim = self.limits
        for port_id, r in t.ports.items():
            w = self._port(pole_id, port_id)
            if w is None:
                continue
            w.on, w.power_w = r.on, r.power_w
            if r.on:
                w.tripped_ts = -1
            if r.link is not None:
                w.link = r.link
                if r.link == "down" and r.on and w.down_ts < 0:
                    w.down_ts = t.ts
                elif r.link != "down" or not r.on:
                    w.down_ts = -1
            rated = w.port.rated_power_w
            bad = r.on and not (lim.power_low_fraction * rated <= r.power_w <= lim.power_high_fraction * rated)
            if bad:
                w.off_power_good = 0
                if w.off_power_bad == 0:
                    w.off_power_ts = t.ts
                w.off_power_bad += 1
                w.off_power_active |= w.off_power_bad >= lim.power_reports
            elif r.on:
                w.off_power_bad = 0
                w.off_power_good += 1
                if w.off_power_good >= lim.power_reports:
                    w.off_power_active = False

    def on_event(self, pole_id: str, e: Event) -> None:
        pe = self.poles.get(pole_id)
        if pe is None:
            return
        port_id = getattr(e, "port", None)
        if e.type == "tilt":
            deg = float(getattr(e, "degrees", 0.0))
            if deg >= self.limits.tilt_min_deg:
                if pe.tilt_ts < 0:
                    pe.tilt_ts = e.ts
                pe.tilt_deg = max(pe.tilt_deg, deg)
            else:
                pe.tilt_ts, pe.tilt_deg = -1, 0.0
        elif e.type == "door_open":
            pe.door_ts = e.ts
        elif e.type == "port_trip" and port_id is not None:
            w = self._port(pole_id, port_id)
            if w is not None:
                w.tripped_ts, w.trip_current_a, w.on = e.ts, float(getattr(e, "current_a", 0.0)), False
        elif e.type == "equipment_offline" and port_id is not None:
            w = self._port(pole_id, port_id)
            if w is not None:
                w.link = "down"
                if w.down_ts < 0:
                    w.down_ts = e.ts
        elif e.type == "equipment_online" and port_id is not None:
            w = self._port(pole_id, port_id)
            if w is not None:
                w.link, w.down_ts = "up", -1

    def findings(self, now_ms: int) -> list[Finding]:
        out: list[Finding] = []
        for pe in self.poles.values():
            p = pe.pole
            for w in pe.ports.values():
                fd = self._port_finding(p, w)
                if fd is not None:
                    out.append(fd)
            if pe.tilt_ts >= 0:
                out.append(Finding("pole_tilt", pole_location(p),
                                   f"Pole {p.id} ({where(p)}) leans {pe.tilt_deg:.0f}° (struck?): make the site safe, "
                                   "isolate its supply and inspect the foundation",
                                   {"degrees": pe.tilt_deg, "source": "tilt event"}, pe.tilt_ts))
            hold_ms = int(self.limits.door_hold_s * 1000)
            if pe.door_ts >= 0 and now_ms - pe.door_ts <= hold_ms and not self.in_maintenance(p.id, pe.door_ts):
                out.append(Finding("door_open", pole_location(p),
                                   f"Service door of {p.id} ({where(p)}) opened outside a maintenance window: "
                                   "check for tampering or cable theft",
                                   {"source": "door_open event", "hold_s": self.limits.door_hold_s}, pe.door_ts))
        return out

    def _port_finding(self, p: Pole, w: PortWatch) -> Finding | None:
        q = w.port
        kind = KIND_NAMES.get(q.kind, q.kind)
        name = f"{kind[0].upper()}{kind[1:]} on port {q.id} of {p.id} ({where(p)})"
        ev: dict[str, Any] = {"equipment": q.id, "kind": q.kind, "rated_power_w": q.rated_power_w}
        if w.tripped_ts >= 0:
            return _equipment(p, q, f"{name} tripped its port at {w.trip_current_a:.1f} A: "
                              "find the short before switching it on again",
                              {**ev, "cause": "port_trip", "current_a": w.trip_current_a}, w.tripped_ts)
        if w.down_ts >= 0 and w.on is not False:
            return _equipment(p, q, f"{name} is powered but its link is down (hung): power-cycle its "
                              "port, and replace it if it does not come back",
                              {**ev, "cause": "link_down", "power_w": w.power_w}, w.down_ts)
        if w.off_power_active:
            return _equipment(p, q, f"{name} draws {w.power_w or 0:.0f} W against {q.rated_power_w:.0f} W "
                              "rated: check the unit and its supply",
                              {**ev, "cause": "power", "power_w": w.power_w}, w.off_power_ts)
        return None

    def ports_of(self, pole_id: str) -> list[dict[str, Any]]:
        """What the rules know of a pole's ports, for operators (state as last reported)."""
        pe = self.poles.get(pole_id)
        if pe is None:
            return []
        return [{"port": w.port.id, "kind": w.port.kind, "rated_power_w": w.port.rated_power_w, "on": w.on,
                 "power_w": w.power_w, "link": w.link, "tripped": w.tripped_ts >= 0,
                 "faulty": self._port_finding(pe.pole, w) is not None} for w in pe.ports.values()]


def _equipment(p: Pole, q: Port, summary: str, evidence: dict[str, Any], first_ts: int) -> Finding:
    return Finding("equipment_fault", {**pole_location(p), "equipment": q.id}, summary, evidence, first_ts)
