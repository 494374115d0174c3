"""Line protocol for the platform's measurements, and the series design behind it.

Measurements (all in the database's default retention policy ``raw``):

* ``telemetry``: tags ``road, pole, segment, feeder, side``; every reading is a field (floats,
  plus ``seq``, ``vehicles`` and ``pedestrians`` as integers).
* ``event``: the same tags plus ``type``; fields ``seq`` and the type's extra fields.
* A reading from a pole whose clock is out of tolerance is stored at road time, with the pole's
  own ``ts`` kept in the integer field ``device_ts`` (see ``streetlight.clock``).

Series per road = poles (telemetry) + poles x event types: bounded by the registry, never by
the traffic, because readings, sequence numbers and free text are fields, not tags.

The point time is the device ``ts`` in nanoseconds plus ``seq mod 10^6`` as a sub-millisecond
tie-breaker: the same message always lands on the same (series, time), so a rewrite (QoS 1
redelivery, a spool replayed twice) overwrites itself instead of adding a row, while two
distinct messages of one pole within the same millisecond still both survive.
"""

from __future__ import annotations

from streetlight.protocol import TELEMETRY_FIELDS, Event, Telemetry
from streetlight.registry import Pole

INT_FIELDS = frozenset({"vehicles", "pedestrians", "direction"})
EVENT_EXTRA = ("speed_kmh", "direction", "code", "degrees", "reason")


def _tag(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _str_field(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def tag_set(road: str, pole: Pole | None, pole_id: str) -> str:
    """``,road=…,pole=…,segment=…,feeder=…,side=…`` (tags sorted by key, as InfluxDB prefers)."""
    if pole is None:
        return f",pole={_tag(pole_id)},road={_tag(road)}"
    return (f",feeder={_tag(pole.feeder)},pole={_tag(pole_id)},road={_tag(road)}"
            f",segment={_tag(pole.segment)},side={_tag(pole.side)}")


def point_time_ns(ts_ms: int, seq: int) -> int:
    return ts_ms * 1_000_000 + seq % 1_000_000


def telemetry_line(tags: str, t: Telemetry, device_ts: int | None = None) -> str:
    """``device_ts``: the pole's own ``ts`` when the point is stored at road time (a skewed clock)."""
    parts = [f"seq={t.seq}i"]
    if device_ts is not None:
        parts.append(f"device_ts={device_ts}i")
    for name in TELEMETRY_FIELDS:
        v = getattr(t, name)
        if v is None:
            continue
        parts.append(f"{name}={v}i" if name in INT_FIELDS else f"{name}={float(v)!r}")
    return f"telemetry{tags} {','.join(parts)} {point_time_ns(t.ts, t.seq)}"


def event_line(tags: str, e: Event, device_ts: int | None = None) -> str:
    parts = [f"seq={e.seq}i"]
    if device_ts is not None:
        parts.append(f"device_ts={device_ts}i")
    for name in EVENT_EXTRA:
        v = getattr(e, name, None)
        if v is None:
            continue
        if isinstance(v, str):
            parts.append(f"{name}={_str_field(v)}")
        elif name in INT_FIELDS:
            parts.append(f"{name}={int(v)}i")
        else:
            parts.append(f"{name}={float(v)!r}")
    return f"event{tags},type={_tag(e.type)} {','.join(parts)} {point_time_ns(e.ts, e.seq)}"
