"""The gateway's own message types: what the ingest connection hands over, and what listeners receive."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple


class Raw(NamedTuple):
    """A PUBLISH as received: cut from the socket on the ingest connection's reading thread
    (:mod:`gateway.wire`); everything else happens later, on the pipeline's thread. (A named tuple,
    not a frozen dataclass: one is built for every message received, and a tuple is built in a
    third of the time.)"""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # connection number: a packet id is only valid on the connection it came on
    # the device numbers its messages as the MQTT contract asks (``seq`` per boot), so ``seq`` is
    # judged for duplicates and restarts; another edge whose devices number nothing (LwM2M: the
    # ``seq`` is the adapter's own) hands over False and is never judged by rules it did not promise
    sequenced: bool = True


@dataclass(frozen=True, slots=True)
class Inbound:
    """A valid, deduplicated message: ``message`` is the parsed protocol model (Telemetry, Event,
    State, Ack) or the string ``online``/``offline`` for a status."""

    road: str
    pole: str
    kind: str
    ts_ms: int  # road time of the reading: the device's ts, or road time when its clock is out of tolerance
    message: Any  # with ``ts`` already replaced by ``ts_ms`` when the clock was out of tolerance
    clock_offset_ms: int | None = None  # device ts minus road time, when road time is known
    clock_skewed: bool = False  # the pole's clock is out of tolerance (see streetlight.clock)
    device_ts_ms: int | None = None  # the device's own ts, kept when ``ts_ms`` was corrected
    road_ms: int | None = None  # road time as it stood right after this message (None while unknown)
