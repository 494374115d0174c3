"""The gateway's own message types: what the ingest connection hands over, and what listeners receive."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Raw:
    """A PUBLISH as received: cut from the socket on the ingest connection's reading thread
    (:mod:`gateway.wire`); everything else happens later, on the pipeline's thread."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # connection number: a packet id is only valid on the connection it came on


@dataclass(frozen=True, slots=True)
class Inbound:
    """A valid, deduplicated message: ``message`` is the parsed protocol model (Telemetry, Event,
    State, Ack) or the string ``online``/``offline`` for a status."""

    road: str
    pole: str
    kind: str
    ts_ms: int
    message: Any
