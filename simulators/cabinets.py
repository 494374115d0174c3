"""The distribution cabinets of a simulated road (protocol 1.1): breakers, currents, meters.

Each cabinet meters every feeder it feeds. What a feeder's meter counts over a report interval:

* the lamps of its poles (their own meters' energy, the same integral the poles report);
* the ports of its multi-function poles (their draw over the interval, as the poles report it);
* the loss in the feeder cable (``cable_loss_w``);
* an illegal tap's load, if one is connected (``tap_w``): a load on the feeder no pole reports.

Cable loss model. A feeder is a single-phase loop of length L with its load spread evenly along
it, so the loss is ``I² R / 3`` (R the loop resistance) and the voltage at the far end drops by
``I R / 2``. The road's voltage model (``electrical``) sets that drop at the feeder's full load
(its lamps at 100 % plus the equipment) to ``FEEDER_END_DROP_V``; the loop resistance follows,
``R = 2 · FEEDER_END_DROP_V / I_full``, and the loss at a fraction ``x`` of full load is
``x² · (2/3) · FEEDER_END_DROP_V / V`` of full load: about 2.7 % of what the feeder carries at
full load, 1.8 % at two thirds. The platform's allowance (``controller.faults.cabinets``) covers
that loss plus both meters' accuracy class.

Faults: ``breaker_trip`` opens the feeder's breaker (the cabinet reports ``open``, current 0, its
meter stops); ``illegal_tap`` connects a load to a feeder; ``cabinet_silent`` stops a cabinet's
reports (a dead modem) while its feeders keep their supply.
"""

from __future__ import annotations

import numpy as np
import orjson

from streetlight.protocol import cabinet_topic

from . import electrical as el
from .engine import RoadSim

FEEDER_PF = 0.95  # LED drivers at load with their PFC, cameras and small cells: close to 1
U32 = 2**32


class CabinetSim:
    """Every cabinet of ``sim``'s road; ``report(t)`` gives each reporting cabinet's payload."""

    def __init__(self, sim: RoadSim, seed: int) -> None:
        road = self.road = sim.road
        self.sim = sim
        rng = np.random.default_rng([seed, 13])
        self.ids = [c.id for c in road.cabinets]
        nf = len(road.feeders)
        self.feeder_ids = [f.id for f in road.feeders]
        self.cab_of = np.array([self.ids.index(f.cabinet) for f in road.feeders], np.int64)
        self.energy_wh = rng.uniform(50_000, 900_000, nf).round(1)  # what each meter read at the start
        self.breaker_open = np.zeros(nf, bool)
        self.tap_w = np.zeros(nf)
        self.silent = np.zeros(len(self.ids), bool)
        self.seq = np.zeros(len(self.ids), np.int64)
        full_w = np.bincount(sim.feeder, sim.rated, nf) * (1 + el.OTHER_LOAD)
        self.full_a = np.maximum(full_w / (el.CABINET_V * FEEDER_PF), 1e-3)
        self.loop_ohm = 2 * el.FEEDER_END_DROP_V / self.full_a
        self._lamp_wh = self._lamp_energy()
        self.t_ms = sim.t_ms

    def _lamp_energy(self) -> np.ndarray:
        return np.bincount(self.sim.feeder, self.sim.energy, len(self.feeder_ids))

    def _ports_w(self) -> np.ndarray:
        sim = self.sim
        out = np.zeros(len(self.feeder_ids))
        for i in sim.equipment.by_pole:
            out[sim.feeder[i]] += sim.equipment.power_w(i, bool(sim.night[i]), bool(sim.powered[i]))
        return out

    def cable_loss_w(self, current_a: np.ndarray) -> np.ndarray:
        """The loss in each feeder's cable at ``current_a`` (evenly spread load: I² R / 3)."""
        return current_a**2 * self.loop_ohm / 3.0

    def step(self, t_ms: int) -> list[tuple[int, str, bytes]]:
        """Advance the meters to ``t_ms``; ``(cabinet index, topic, payload)`` of each report."""
        sim = self.sim
        dt_s = (t_ms - self.t_ms) / 1000.0
        self.t_ms = t_ms
        lamp_wh = self._lamp_energy()
        lamp_w = (lamp_wh - self._lamp_wh) * 3600.0 / dt_s if dt_s > 0 else np.zeros_like(lamp_wh)
        self._lamp_wh = lamp_wh
        closed = ~self.breaker_open
        v = sim.source_v + el.diurnal_v(sim._hour(t_ms))
        load_w = np.where(closed, np.maximum(lamp_w, 0.0) + self._ports_w() + self.tap_w, 0.0)
        current = load_w / (v * FEEDER_PF)
        metered_w = load_w + self.cable_loss_w(current)
        self.energy_wh = self.energy_wh + metered_w * max(dt_s, 0.0) / 3600.0
        out = []
        for k, cab in enumerate(self.ids):
            if self.silent[k]:
                continue
            feeders = {self.feeder_ids[f]: {"breaker": "open" if self.breaker_open[f] else "closed",
                                            "current_a": round(float(current[f]), 2),
                                            "energy_wh": round(float(self.energy_wh[f]), 1)}
                       for f in np.flatnonzero(self.cab_of == k).tolist()}
            body = {"ts": t_ms, "seq": int(self.seq[k] % U32), "voltage_v": round(float(v[self.cab_of == k].mean()), 1),
                    "feeders": feeders}
            self.seq[k] += 1
            out.append((k, cabinet_topic(self.road.id, cab, "telemetry"), orjson.dumps(body)))
        return out

    def status_topic(self, k: int) -> str:
        return cabinet_topic(self.road.id, self.ids[k], "status")
