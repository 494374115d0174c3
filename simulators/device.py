"""What a pole does with what the platform sends: commands, configs, heartbeats; and its link.

Configs and heartbeats are queued by the transport and handled at step boundaries of simulated
time, in a fixed order. Commands are executed when they arrive, after a delay drawn from the
road's :class:`LinkModel` (the radio or power-line link between the broker and the pole).
Every command gets exactly one Ack; a repeated ``cmd_id`` gets the same Ack again and is not
executed twice. Bad payloads are counted and logged, never fatal.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, OrderedDict
from dataclasses import dataclass

import numpy as np
import orjson

from streetlight.errors import ProtocolError
from streetlight.protocol import (
    Ack,
    Command,
    DimCommand,
    IdentifyCommand,
    PortCommand,
    PowerCycleCommand,
    loads_object,
    parse_command,
    parse_config,
    parse_heartbeat,
    parse_topic,
)

from .engine import FALLBACK, RoadSim

log = logging.getLogger(__name__)
ACK_MEMORY = 1024  # cmd_ids remembered per pole


@dataclass(frozen=True, slots=True)
class LinkModel:
    """A link's one-way command delay: lognormal with this median and 95th percentile (ms).

    ``median_ms == p95_ms`` is a fixed delay (0: the pole acts at once, for benchmarks).
    """

    name: str
    median_ms: float
    p95_ms: float

    @property
    def sigma(self) -> float:
        return math.log(self.p95_ms / self.median_ms) / 1.6449 if self.median_ms > 0 else 0.0

    def draw(self, rng: np.random.Generator) -> int:
        """One delay in ms (always draws, so a fixed delay uses the stream like a random one)."""
        z = float(rng.standard_normal())
        if self.median_ms <= 0:
            return 0
        return int(round(self.median_ms * math.exp(self.sigma * z)))


# Field figures, sources in docs/simulators.md ("Device latency").
LINKS = {
    "4g": LinkModel("4g", 80.0, 300.0),
    "nbiot": LinkModel("nbiot", 850.0, 5_000.0),
    "plc": LinkModel("plc", 2_500.0, 8_000.0),
}


def fixed_link(ms: float) -> LinkModel:
    if ms < 0:
        raise ValueError(f"a device latency cannot be negative ({ms} ms)")
    return LinkModel(f"fixed {ms:g} ms", float(ms), float(ms))


def link_model(name: str) -> LinkModel:
    try:
        return LINKS[name]
    except KeyError:
        raise ValueError(f"unknown link {name!r}; known: {', '.join(LINKS)}") from None


@dataclass(slots=True)
class Inbound:
    arrival: int  # order of arrival at this simulator
    pole: int | None  # the pole whose own connection received it (None: concentrator)
    topic: str
    payload: bytes


class DeviceLogic:
    def __init__(self, sim: RoadSim) -> None:
        self.sim = sim
        self.index = {p.id: p.index for p in sim.road.poles}
        self.acks: dict[int, OrderedDict[str, bytes]] = {}
        self.counts: Counter[str] = Counter()

    def handle(self, items: list[Inbound], t_ms: int) -> list[tuple[int, bytes]]:
        """Apply inbound messages at ``t_ms``; returns the acks to send as (pole, payload)."""
        acks: list[tuple[int, bytes]] = []
        for item in sorted(items, key=lambda m: (m.pole if m.pole is not None else -1, m.arrival)):
            try:
                acks.extend(self._one(item, t_ms))
            except ProtocolError as err:
                self.counts[f"invalid_{err.reason}"] += 1
                log.warning("ignored invalid message on %s: %s", item.topic, err)
        return acks

    def _one(self, item: Inbound, t_ms: int) -> list[tuple[int, bytes]]:
        sim = self.sim
        topic = parse_topic(item.topic)
        if topic.road != sim.road.id:
            raise ProtocolError("unknown_road", f"road {topic.road!r} is not simulated here")
        if topic.kind == "heartbeat":
            hb = parse_heartbeat(item.payload)
            self.counts["heartbeat"] += 1
            if item.pole is None:
                sim.last_hb[sim.comm_ok] = sim.last_hb[sim.comm_ok].clip(min=hb.ts)
            elif sim.comm_ok[item.pole]:
                sim.last_hb[item.pole] = max(int(sim.last_hb[item.pole]), hb.ts)
            return []
        i = self.index.get(topic.pole or "")
        if i is None:
            raise ProtocolError("unknown_pole", f"pole {topic.pole!r} is not on this road")
        if not (sim.powered[i] and sim.comm_ok[i]):
            self.counts["lost_dead_pole"] += 1  # a dead pole hears nothing
            return []
        if topic.kind == "config":
            cfg = parse_config(item.payload)
            if sim.apply_config(i, cfg):
                self.counts["config_applied"] += 1
            return []
        if topic.kind == "cmd":
            return [(i, self._command(i, item.payload, t_ms))]
        return []

    def _command(self, i: int, raw: bytes, t_ms: int) -> bytes:
        sim = self.sim
        # a valid command is parsed once; an invalid one is read again only for its cmd_id
        cmd: Command | ProtocolError
        cmd_id: object
        try:
            cmd = parse_command(raw)
            cmd_id = cmd.cmd_id
        except ProtocolError as err:
            cmd, cmd_id = err, loads_object(raw).get("cmd_id")
        if not isinstance(cmd_id, str) or not 1 <= len(cmd_id) <= 64:
            raise ProtocolError("missing_field", "command without a usable cmd_id cannot be acknowledged", "cmd_id")
        memory = self.acks.setdefault(i, OrderedDict())
        if cmd_id in memory:
            self.counts["cmd_repeat"] += 1
            return memory[cmd_id]
        level = float(sim.ramp_to[i])
        if isinstance(cmd, ProtocolError):
            ack = Ack(cmd_id=cmd_id, ts=t_ms, ok=False, dim=round(level, 1), error=f"{cmd.reason}: {cmd.detail}")
            self.counts["cmd_rejected"] += 1
        else:
            ack = self._execute(i, cmd, level, t_ms)
        payload = orjson.dumps(ack.to_dict())
        memory[cmd_id] = payload
        while len(memory) > ACK_MEMORY:
            memory.popitem(last=False)
        return payload

    def _execute(self, i: int, cmd: Command, level: float, t_ms: int) -> Ack:
        sim = self.sim
        if sim.mode[i] == FALLBACK and isinstance(cmd, DimCommand):
            # the local schedule rules until the heartbeat returns; say so rather than pretend
            self.counts["cmd_refused_fallback"] += 1
            return Ack(cmd_id=cmd.cmd_id, ts=t_ms, ok=False, dim=round(level, 1),
                       error="fallback: no platform heartbeat within fallback.after_s; local schedule in force")
        if isinstance(cmd, DimCommand):
            sim.set_level(i, float(cmd.level), cmd.ramp_ms, t_ms)
            sim.commanded[i] = True
            level = float(cmd.level)
        elif isinstance(cmd, IdentifyCommand):
            sim.identify_until[i] = t_ms + cmd.seconds * 1000
        elif isinstance(cmd, PortCommand | PowerCycleCommand):
            if sim.equipment.get(i, cmd.port) is None:
                self.counts["cmd_rejected"] += 1
                return Ack(cmd_id=cmd.cmd_id, ts=t_ms, ok=False, dim=round(level, 1),
                           error=f"unknown_port: this pole has no port {cmd.port!r}")
            if isinstance(cmd, PortCommand):
                sim.equipment.switch(i, cmd.port, cmd.on, t_ms, sim.pending_events)
            else:
                sim.equipment.power_cycle(i, cmd.port, cmd.off_s, t_ms)
        self.counts["cmd_executed"] += 1
        return Ack(cmd_id=cmd.cmd_id, ts=t_ms, ok=True, dim=round(level, 1), error=None)
