"""The equipment on a simulated road's multi-function poles (protocol 1.1): switched, metered ports.

Each port of the registry feeds its equipment around the clock while the pole has supply. Loads
follow the time of day (a camera's infrared lights at night, a small cell's traffic by day, a
display brighter at night); each unit draws its own share of its rating. Faults:

* ``trip``: the port's over-current protection opens (``port_trip`` event); the port stays off
  until switched on by a ``port`` command;
* ``hang``: the equipment hangs (link down while powered, ``equipment_offline``); switching its
  port off and on (``power_cycle``) brings it back (``equipment_online``).

Commands: ``port`` switches a port, ``power_cycle`` switches it off for ``off_s`` and on again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from streetlight.registry import Road

from .engine import PoleEvent

# share of rated power drawn (day, night): infrared illuminators, traffic, brightness
LOAD = {"camera": (0.72, 0.95), "small_cell": (0.85, 0.6), "traffic_signal": (0.8, 0.8), "sign": (0.4, 0.75),
        "display": (0.55, 0.9), "weather_station": (0.8, 0.8), "emergency_call": (0.9, 0.9)}
TRIP_CURRENT_A = 4.0  # what a port's protection reports when it opens on a short


@dataclass(slots=True)
class SimPort:
    pole: int
    id: str
    kind: str
    rated_w: float
    share: float  # this unit's own draw relative to its kind's nominal
    on: bool = True
    hung: bool = False
    back_on_ms: int = -1  # a power cycle switches the port on again here


class PortSim:
    def __init__(self, road: Road, seed: int) -> None:
        rng = np.random.default_rng([seed, 12])
        self.ports: dict[tuple[int, str], SimPort] = {}
        self.by_pole: dict[int, list[SimPort]] = {}
        for p in road.poles:
            for q in p.ports:
                sp = SimPort(p.index, q.id, q.kind, q.rated_power_w, float(rng.uniform(0.93, 1.05)))
                self.ports[(p.index, q.id)] = sp
                self.by_pole.setdefault(p.index, []).append(sp)
        self.rng = rng

    def get(self, pole: int, port: str) -> SimPort | None:
        return self.ports.get((pole, port))

    # -- faults ----------------------------------------------------------------------------------
    def trip(self, pole: int, port: str, t_ms: int, events: list[PoleEvent]) -> None:
        sp = self.ports[(pole, port)]
        sp.on, sp.back_on_ms = False, -1
        events.append(PoleEvent(pole, t_ms, "port_trip", {"port": port, "current_a": TRIP_CURRENT_A}))

    def hang(self, pole: int, port: str, on: bool, t_ms: int, events: list[PoleEvent]) -> None:
        sp = self.ports[(pole, port)]
        if sp.hung == on:
            return
        sp.hung = on
        if sp.on:
            events.append(PoleEvent(pole, t_ms, "equipment_offline" if on else "equipment_online", {"port": port}))

    # -- commands --------------------------------------------------------------------------------
    def switch(self, pole: int, port: str, on: bool, t_ms: int, events: list[PoleEvent]) -> None:
        sp = self.ports[(pole, port)]
        sp.back_on_ms = -1
        if on and not sp.on:
            sp.on = True
            if sp.hung:  # a hung unit boots afresh when its supply returns
                sp.hung = False
            events.append(PoleEvent(pole, t_ms, "equipment_online", {"port": port}))
        elif not on:
            sp.on = False

    def power_cycle(self, pole: int, port: str, off_s: int, t_ms: int) -> None:
        sp = self.ports[(pole, port)]
        sp.on, sp.back_on_ms = False, t_ms + off_s * 1000

    def due(self, t_ms: int, events: list[PoleEvent]) -> None:
        """Ports whose power cycle ends by ``t_ms`` come back on."""
        for sp in self.ports.values():
            if 0 <= sp.back_on_ms <= t_ms:
                self.switch(sp.pole, sp.id, True, sp.back_on_ms, events)

    # -- telemetry -------------------------------------------------------------------------------
    def readings(self, pole: int, night: bool, powered: bool) -> dict[str, Any] | None:
        ports = self.by_pole.get(pole)
        if not ports:
            return None
        out: dict[str, Any] = {}
        for sp in ports:
            live = sp.on and powered
            w = sp.rated_w * LOAD.get(sp.kind, (0.8, 0.8))[1 if night else 0] * sp.share
            w *= 1 + float(self.rng.normal(0, 0.01))
            out[sp.id] = {"on": live, "power_w": round(w, 1) if live else 0.0,
                          "link": "up" if live and not sp.hung else "down"}
        return out

    def power_w(self, pole: int, night: bool, powered: bool) -> float:
        """What the pole's ports draw now (its share of the feeder's load)."""
        if not powered:
            return 0.0
        return sum(sp.rated_w * LOAD.get(sp.kind, (0.8, 0.8))[1 if night else 0] * sp.share
                   for sp in self.by_pole.get(pole, ()) if sp.on)
