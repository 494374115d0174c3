"""A synthetic road for the controller's tests: poles that obey the controller and report.

Each ``step`` every pole that is not silenced reports telemetry at its own phase within the
interval (as real poles do), then the controller ticks. Faults are injected by changing what
a pole reports (power, voltage, leakage, counts) or by silencing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from controller.engine import Controller, ControllerConfig, Decisions
from controller.faults import Fault
from streetlight.clock import parse_local
from streetlight.protocol import Telemetry
from streetlight.registry import Road, load_road

Patch = Callable[[str, dict], dict]


@dataclass
class RoadStream:
    road: Road = field(default_factory=lambda: load_road("nanhuan-1"))
    start: str = "2026-11-23 19:00"
    interval_s: int = 10
    vehicles_per_report: float = 3.0  # per pole per report (about 1,080 vehicles/h)
    pedestrians_per_report: float = 0.005
    seed: int = 7
    config: ControllerConfig | None = None

    def __post_init__(self) -> None:
        self.ctl = Controller(self.road, self.config or ControllerConfig(report_interval_s=self.interval_s))
        self.now = parse_local(self.start)
        self.rng = np.random.default_rng(self.seed)
        self.seq = {p.id: 0 for p in self.road.poles}
        self.phase = {p.id: int(self.rng.integers(0, self.interval_s * 1000)) for p in self.road.poles}
        self.silenced: set[str] = set()
        self.patches: list[Patch] = []
        self.events: list[Fault] = []  # every fault change seen, in order
        self.decisions: list[Decisions] = []

    def report(self, pid: str, ts: int) -> dict:
        p = self.road.pole(pid)
        dim, _ = self.ctl.level_of(pid)
        d = {"ts": ts, "seq": self.seq[pid], "dim": dim, "power_w": round(3.0 + p.rated_power_w * dim / 100, 1),
             "voltage_v": float(round(220 + self.rng.normal(0, 2), 1)), "leakage_ma": 2.0,
             "vehicles": int(self.rng.poisson(self.vehicles_per_report)),
             "pedestrians": int(self.rng.poisson(self.pedestrians_per_report)) if p.has("pedestrian_detector") else None}
        for patch in self.patches:
            d = patch(pid, d)
        return {k: v for k, v in d.items() if v is not None}

    def step(self) -> Decisions:
        base = self.now
        for p in self.road.poles:
            if p.id in self.silenced:
                continue
            msg = self.report(p.id, base + self.phase[p.id])
            if msg:
                self.seq[p.id] += 1
                self.ctl.on_telemetry(p.id, Telemetry.model_validate(msg))
        self.now = base + self.interval_s * 1000
        d = self.ctl.tick(self.now)
        self.events.extend(d.faults)
        self.decisions.append(d)
        return d

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()

    def run_minutes(self, minutes: float) -> None:
        self.run(int(minutes * 60 / self.interval_s))

    def opened(self, ftype: str | None = None) -> list[Fault]:
        seen: dict[str, Fault] = {}
        for f in self.events:
            if ftype is None or f.type == ftype:
                seen.setdefault(f.fault_id, f)
        return list(seen.values())

    def types_opened(self) -> list[str]:
        return sorted({f.type for f in self.events})
