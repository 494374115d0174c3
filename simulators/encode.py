"""Protocol payloads from the simulator's arrays, in a deterministic order.

Every pole message of a step is built here: events (time-ordered), telemetry, State, status.
``seq`` is assigned per pole in the order the messages are sent, as the protocol page requires.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson

from streetlight.protocol import pole_topic

from .engine import FIRMWARE, MODE_NAMES, RoadSim, StepOutput

U32 = 2**32
# optional telemetry fields and the equipment that measures them (None: every pole has it)
OPTIONAL = (("current_a", None), ("pf", None), ("energy_wh", None), ("lux", "light_sensor"),
            ("vehicles", "traffic_detector"), ("pedestrians", "pedestrian_detector"),
            ("leakage_ma", "leakage_monitor"), ("temp_c", None), ("rssi_dbm", None))


@dataclass(slots=True)
class Outgoing:
    ts: int
    pole: int
    kind: str  # topic kind: telemetry, event, state, status, ack
    topic: str
    payload: bytes

    @property
    def retain(self) -> bool:
        return self.kind in ("state", "status")


class Encoder:
    def __init__(self, sim: RoadSim, vehicle_events: bool = True, pedestrian_events: bool = True) -> None:
        road = sim.road
        self.sim = sim
        self.vehicle_events = vehicle_events
        self.pedestrian_events = pedestrian_events
        self.topics = {k: [pole_topic(road.id, p.id, k) for p in road.poles]  # type: ignore[arg-type]
                       for k in ("telemetry", "event", "state", "status", "ack")}
        self.fields = [tuple(f for f, need in OPTIONAL if need is None or p.has(need)) for p in road.poles]

    def step(self, out: StepOutput) -> list[Outgoing]:
        """Events of the step, then telemetry at ``out.t_ms``; advances each pole's ``seq``."""
        sim = self.sim
        tr = out.traffic
        parts_pole, parts_ts, parts_src = [], [], []
        if self.vehicle_events and len(tr.vehicle_pole):
            parts_pole.append(tr.vehicle_pole)
            parts_ts.append(tr.vehicle_ts)
            parts_src.append(np.ones(len(tr.vehicle_pole), np.int64))
        if self.pedestrian_events and len(tr.pedestrian_pole):
            parts_pole.append(tr.pedestrian_pole)
            parts_ts.append(tr.pedestrian_ts)
            parts_src.append(np.full(len(tr.pedestrian_pole), 2, np.int64))
        if out.events:
            parts_pole.append(np.array([e.pole for e in out.events], np.int64))
            parts_ts.append(np.array([e.ts for e in out.events], np.int64))
            parts_src.append(np.zeros(len(out.events), np.int64))
        msgs: list[Outgoing] = []
        seq = sim.seq
        if parts_pole:
            pole = np.concatenate(parts_pole)
            ts = np.concatenate(parts_ts)
            src = np.concatenate(parts_src)
            row = np.concatenate([np.arange(len(p)) for p in parts_pole])
            order = np.lexsort((row, src, pole, ts))
            pole, ts, src, row = pole[order], ts[order], src[order], row[order]
            counts = np.bincount(pole, minlength=sim.n)
            by_pole = np.argsort(pole, kind="stable")
            rank = np.empty(len(pole), np.int64)
            starts = np.cumsum(counts) - counts
            rank[by_pole] = np.arange(len(pole)) - starts[pole[by_pole]]
            ev_seq = ((seq[pole] + rank) % U32).tolist()
            stamp = (ts + sim.clock_offset_ms[pole]).tolist()  # what each device's own clock says
            speed = tr.vehicle_speed_kmh.tolist()
            direction = tr.vehicle_direction.tolist()
            topics = self.topics["event"]
            for p, t, d, s, r, q in zip(pole.tolist(), ts.tolist(), stamp, src.tolist(), row.tolist(), ev_seq,
                                        strict=True):
                if s == 1:
                    body = {"ts": d, "seq": q, "type": "vehicle", "speed_kmh": speed[r], "direction": direction[r]}
                elif s == 2:
                    body = {"ts": d, "seq": q, "type": "pedestrian"}
                else:
                    e = out.events[r]
                    body = {"ts": d, "seq": q, "type": e.type, **e.extra}
                msgs.append(Outgoing(t, p, "event", topics[p], orjson.dumps(body)))
            seq += counts
        msgs.extend(self._telemetry(out))
        return msgs

    def _telemetry(self, out: StepOutput) -> list[Outgoing]:
        sim = self.sim
        idx = np.flatnonzero(out.report)
        if not len(idx):
            return []
        cols = {k: v[idx].tolist() for k, v in out.columns.items()}
        seqs = (sim.seq[idx] % U32).tolist()
        sim.seq[idx] += 1
        t = out.t_ms
        topics = self.topics["telemetry"]
        msgs = []
        dim, pw, vv = cols["dim"], cols["power_w"], cols["voltage_v"]
        stamp = (t + sim.clock_offset_ms[idx]).tolist()  # what each device's own clock says
        for j, i in enumerate(idx.tolist()):
            body = {"ts": stamp[j], "seq": seqs[j], "dim": dim[j], "power_w": pw[j], "voltage_v": vv[j]}
            for f in self.fields[i]:
                body[f] = cols[f][j]
            ports = sim.equipment.readings(i, bool(sim.night[i]), bool(sim.powered[i]))
            if ports:
                body["ports"] = ports
            msgs.append(Outgoing(t, i, "telemetry", topics[i], orjson.dumps(body)))
        return msgs

    def state(self, i: int, t_ms: int) -> Outgoing:
        sim = self.sim
        body = {"ts": t_ms + int(sim.clock_offset_ms[i]), "mode": MODE_NAMES[int(sim.mode[i])],
                "dim": round(float(sim.ramp_to[i]), 1),
                "config_version": int(sim.configs[sim.cfg[i]].version), "fw": FIRMWARE}
        return Outgoing(t_ms, i, "state", self.topics["state"][i], orjson.dumps(body))

    def status(self, i: int, t_ms: int, online: bool) -> Outgoing:
        return Outgoing(t_ms, i, "status", self.topics["status"][i], b"online" if online else b"offline")

    def ack(self, i: int, t_ms: int, payload: bytes) -> Outgoing:
        return Outgoing(t_ms, i, "ack", self.topics["ack"][i], payload)
