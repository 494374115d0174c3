"""Faults injected into a simulated road, and their effect on the device arrays.

Each fault starts at ``at_ms`` and, if ``until_ms`` is given, clears then. Effects stack (two
cuts on one feeder, then one repaired, still leaves the poles behind the other cut dark).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .engine import PoleEvent, RoadSim

# fault type -> (what it names: pole / span / feeder / cabinet, the alert the platform should raise)
FAULT_TYPES: dict[str, tuple[str, str]] = {
    "lamp_failure": ("pole", "lamp_failure"),
    "lamp_cycling": ("pole", "cycling"),
    "driver_degradation": ("pole", "driver_fault"),
    "cable_cut": ("span", "cable_fault"),
    "breaker_trip": ("feeder", "feeder_outage"),
    "comm_loss": ("pole", "comm_loss"),
    "leakage": ("pole", "leakage"),
    "relay_stuck": ("pole", "day_burning"),
    "voltage_sag": ("feeder", "voltage_out_of_band"),
    "detector_stuck": ("pole", "detector_stuck"),
    "reboot": ("pole", ""),
    "clock_offset": ("pole", "clock_skew"),
    # version 1.1: multi-function poles (``port`` names the equipment's port)
    "port_trip": ("pole", "equipment_fault"),
    "equipment_hung": ("pole", "equipment_fault"),
    "pole_struck": ("pole", "pole_tilt"),
    "door_open": ("pole", "door_open"),
    # version 1.1: distribution cabinets (a load no pole reports; a cabinet's dead modem)
    "illegal_tap": ("feeder", "energy_imbalance"),
    "cabinet_silent": ("cabinet", "comm_loss"),
}
DEFAULT_PARAMS: dict[str, dict[str, float]] = {
    "driver_degradation": {"drift": 1.35},
    "leakage": {"ma": 45.0},
    "voltage_sag": {"volts": 40.0},
    # a driver's thermal protection cutting the light for 10 s once a minute
    "lamp_cycling": {"period_s": 60.0, "off_s": 10.0},
    "pole_struck": {"degrees": 12.0},
    "illegal_tap": {"watts": 900.0},  # a shop's heaters and lights on the feeder
}


@dataclass(frozen=True)
class Fault:
    type: str
    at_ms: int
    poles: tuple[int, ...] = ()  # affected pole indices (for a cut: every pole downstream)
    feeder: int | None = None
    until_ms: int | None = None
    params: dict[str, float] = field(default_factory=dict)
    label: str = ""  # the pole, span or feeder as written in the scenario
    reboot_event: bool = True  # False: the devices restart (cable_cut repaired, reboot) without announcing it
    port: str = ""  # the equipment's port, for port_trip and equipment_hung
    cabinet: str = ""  # the cabinet, for cabinet_silent

    def param(self, name: str) -> float:
        return float(self.params.get(name, DEFAULT_PARAMS.get(self.type, {}).get(name, 0.0)))


class FaultState:
    """Counts of active faults per pole, so that overlapping faults clear correctly."""

    def __init__(self, sim: RoadSim) -> None:
        self.sim = sim
        self.cuts = np.zeros(sim.n, np.int32)
        self.comm = np.zeros(sim.n, np.int32)

    def apply(self, fault: Fault, t_ms: int, on: bool) -> None:
        sim = self.sim
        idx = np.array(fault.poles, dtype=np.int64)
        sign = 1 if on else -1
        kind = fault.type
        if kind == "lamp_failure":
            sim.lamp_ok[idx] = not on
            if on:
                for i in idx.tolist():
                    sim.pending_events.append(PoleEvent(i, t_ms, "lamp_fault", {"code": "LED_OPEN_CIRCUIT"}))
        elif kind == "lamp_cycling":
            sim.cycle_start[idx] = t_ms
            sim.cycle_period_ms[idx] = int(fault.param("period_s") * 1000) if on else 0
            sim.cycle_off_ms[idx] = int(fault.param("off_s") * 1000) if on else 0
            sim.cycle(t_ms)
        elif kind == "driver_degradation":
            sim.drift.move(idx, fault.param("drift") if on else 1.0, t_ms, int(fault.param("ramp_s") * 1000) if on else 0)
        elif kind in ("cable_cut", "breaker_trip"):  # a trip in the cabinet: the whole feeder
            if kind == "breaker_trip" and fault.feeder is not None:
                sim.cabinets.breaker_open[fault.feeder] = on  # the cabinet reports the breaker open
            was = sim.powered.copy()
            self.cuts[idx] += sign
            sim.powered = self.cuts == 0
            back = np.flatnonzero(sim.powered & ~was)
            if len(back):
                sim.reboot(back, t_ms, "power_restored", announce=fault.reboot_event)
        elif kind == "comm_loss":
            self.comm[idx] += sign
            sim.comm_ok = self.comm == 0
        elif kind == "leakage":
            sim.leak_extra.move(idx, fault.param("ma") if on else 0.0, t_ms, int(fault.param("ramp_s") * 1000) if on else 0)
        elif kind == "relay_stuck":
            sim.relay_stuck[idx] = on
        elif kind == "voltage_sag":
            assert fault.feeder is not None
            sim.source_v[fault.feeder] += -fault.param("volts") * sign
        elif kind == "detector_stuck":
            sim.detector_stuck[idx] = on
        elif kind == "clock_offset":
            sim.clock_offset_ms[idx] += int(fault.param("ms")) * sign
        elif kind == "reboot" and on:
            sim.reboot(idx, t_ms, "watchdog", announce=fault.reboot_event)
        elif kind == "port_trip" and on:
            for i in idx.tolist():
                sim.equipment.trip(i, fault.port, t_ms, sim.pending_events)
        elif kind == "equipment_hung":
            for i in idx.tolist():
                sim.equipment.hang(i, fault.port, on, t_ms, sim.pending_events)
        elif kind == "pole_struck" and on:
            for i in idx.tolist():
                sim.pending_events.append(PoleEvent(i, t_ms, "tilt", {"degrees": fault.param("degrees")}))
        elif kind == "door_open" and on:
            for i in idx.tolist():
                sim.pending_events.append(PoleEvent(i, t_ms, "door_open", {}))
        elif kind == "illegal_tap":
            assert fault.feeder is not None
            sim.cabinets.tap_w[fault.feeder] += fault.param("watts") * sign
        elif kind == "cabinet_silent":
            sim.cabinets.silent[sim.cabinets.ids.index(fault.cabinet)] = on


@dataclass
class FaultSchedule:
    """The scenario's faults in time order; ``due(t)`` applies every start or clear up to ``t``."""

    state: FaultState
    faults: list[Fault]
    _todo: list[tuple[int, int, bool, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for k, f in enumerate(self.faults):
            self._todo.append((f.at_ms, k, True, 0))
            if f.until_ms is not None:
                self._todo.append((f.until_ms, k, False, 1))
        self._todo.sort(key=lambda x: (x[0], x[3], x[1]))

    def add(self, fault: Fault) -> None:
        """A fault beside the scenario's (started by hand on a running road)."""
        k = len(self.faults)
        self.faults.append(fault)
        self._todo.append((fault.at_ms, k, True, 0))
        if fault.until_ms is not None:
            self._todo.append((fault.until_ms, k, False, 1))
        self._todo.sort(key=lambda x: (x[0], x[3], x[1]))

    def due(self, t_ms: int) -> list[tuple[Fault, bool]]:
        done = []
        while self._todo and self._todo[0][0] <= t_ms:
            at, k, on, _ = self._todo.pop(0)
            self.state.apply(self.faults[k], at, on)
            done.append((self.faults[k], on))
        return done
