"""Line protocol for the platform's measurements, and the series design behind it.

Measurements (all in the database's default retention policy ``raw``):

* ``telemetry``: tags ``road, pole, segment, feeder, side``; every reading is a field (floats,
  plus ``seq``, ``vehicles`` and ``pedestrians`` as integers).
* ``event``: the same tags plus ``type``; fields ``seq`` and the type's extra fields.
* ``port`` (protocol 1.1): one point per port of a telemetry report; tags ``road, pole, port,
  kind``; fields ``on`` (boolean), ``power_w``, ``link`` (string, when reported). Series per road
  = ported equipment in the registry.
* ``cabinet_feeder`` (protocol 1.1): one point per feeder of a cabinet report; tags ``road,
  cabinet, feeder``; fields ``breaker`` (string), ``closed`` (boolean), ``current_a``,
  ``energy_wh``, ``voltage_v`` (the cabinet's busbar) and ``seq``.
* A reading from a pole whose clock is out of tolerance is stored at road time, with the pole's
  own ``ts`` kept in the integer field ``device_ts`` (see ``streetlight.clock``).

Series per road = poles (telemetry) + poles x event types: bounded by the registry, never by
the traffic, because readings, sequence numbers and free text are fields, not tags.

The point time is the device ``ts`` in nanoseconds plus ``seq mod 10^6`` as a sub-millisecond
tie-breaker: the same message always lands on the same (series, time), so a rewrite (QoS 1
redelivery, a spool replayed twice) overwrites itself instead of adding a row, while two
distinct messages of one pole within the same millisecond still both survive.

The text is exactly what influxdb-client's ``Point.to_line_protocol()`` writes for the same point
(tags and fields sorted by key, its escaping, whole floats without ``.0``, ``None`` and non-finite
values left out), and a property test holds the two together. It is written here rather than
through ``Point`` because ``streetlight bench ingest`` measures ``Point`` several times slower,
and the gateway builds a line for every message it stores; the tag set of a pole is escaped once
and reused. Escaping newlines, tabs and carriage returns in tags matters: an event ``type`` comes
from the device, and an unescaped newline would start a line of the device's choosing.
"""

from __future__ import annotations

import math

from streetlight.protocol import TELEMETRY_FIELDS, CabinetTelemetry, Event, PortReading, Telemetry
from streetlight.registry import Pole

INT_FIELDS = frozenset({"seq", "vehicles", "pedestrians", "direction", "device_ts"})
EVENT_EXTRA = ("speed_kmh", "direction", "code", "degrees", "reason")
_TELEMETRY_ORDER = tuple(sorted(("seq", "device_ts", *TELEMETRY_FIELDS)))
_EVENT_ORDER = tuple(sorted(("seq", "device_ts", *EVENT_EXTRA)))

# influxdb-client's tables (influxdb_client.client.write.point): keys and tag values, string fields
_ESCAPE_TAG = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_ESCAPE_STRING = str.maketrans({'"': r'\"', "\\": r"\\"})


def _tag(key: str, value: str) -> str:
    """``,key=value``, or nothing for an empty value (a tag cannot be empty)."""
    escaped = value.translate(_ESCAPE_TAG)
    if escaped.endswith("\\"):  # or it would escape the separator after it
        escaped += " "
    return f",{key}={escaped}" if escaped else ""


def _field(name: str, value: str | float | None) -> str | None:
    """``name=value`` in the value's line-protocol type, or None when there is nothing to write."""
    if value is None:
        return None
    if isinstance(value, str):
        return f'{name}="{value.translate(_ESCAPE_STRING)}"'
    if name in INT_FIELDS:
        return f"{name}={int(value)}i"
    v = float(value)
    if not math.isfinite(v):
        return None
    text = repr(v)
    return f"{name}={text[:-2] if text.endswith('.0') else text}"


def tag_set(road: str, pole: Pole | None, pole_id: str) -> str:
    """``,feeder=…,pole=…,road=…,segment=…,side=…`` (sorted by key, as InfluxDB prefers)."""
    if pole is None:
        return _tag("pole", pole_id) + _tag("road", road)
    return (_tag("feeder", pole.feeder) + _tag("pole", pole_id) + _tag("road", road) + _tag("segment", pole.segment)
            + _tag("side", pole.side))


def point_time_ns(ts_ms: int, seq: int) -> int:
    return ts_ms * 1_000_000 + seq % 1_000_000


def _line(measurement: str, tags: str, fields: list[str | None], time_ns: int) -> str:
    return f"{measurement}{tags} {','.join(f for f in fields if f is not None)} {time_ns}"


def telemetry_line(tags: str, t: Telemetry, device_ts: int | None = None) -> str:
    """One telemetry point; ``tags`` from :func:`tag_set`; ``device_ts``: the pole's own ``ts`` when
    the point is stored at road time (a skewed clock). Readings are numbers only, so this is
    :func:`_field` unrolled: it runs for every stored message."""
    parts = []
    for name in _TELEMETRY_ORDER:
        v = device_ts if name == "device_ts" else getattr(t, name)
        if v is None:
            continue
        if name in INT_FIELDS:
            parts.append(f"{name}={int(v)}i")
        elif math.isfinite(v):
            text = repr(float(v))
            parts.append(f"{name}={text[:-2] if text.endswith('.0') else text}")
    return f"telemetry{tags} {','.join(parts)} {point_time_ns(t.ts, t.seq)}"


def event_line(tags: str, e: Event, device_ts: int | None = None) -> str:
    """One event point: the pole's tags plus the event ``type``, which sorts after them."""
    fields = [_field(n, device_ts if n == "device_ts" else getattr(e, n, None)) for n in _EVENT_ORDER]
    return _line("event", tags + _tag("type", e.type), fields, point_time_ns(e.ts, e.seq))


def _bool(name: str, value: bool) -> str:
    return f"{name}={'true' if value else 'false'}"


def port_lines(road: str, pole_id: str, ports: dict[str, tuple[str, PortReading]], ts_ms: int, seq: int) -> list[str]:
    """One ``port`` point per port: ``ports`` maps port id to (equipment kind, reading)."""
    t = point_time_ns(ts_ms, seq)
    out = []
    for port_id in sorted(ports):
        kind, r = ports[port_id]
        tags = _tag("kind", kind) + _tag("pole", pole_id) + _tag("port", port_id) + _tag("road", road)
        out.append(_line("port", tags, [_field("link", r.link), _bool("on", r.on), _field("power_w", r.power_w)], t))
    return out


def cabinet_lines(road: str, cabinet: str, c: CabinetTelemetry, ts_ms: int | None = None) -> list[str]:
    """One ``cabinet_feeder`` point per feeder of a cabinet report (at ``ts_ms`` if given, else its ts)."""
    t = point_time_ns(c.ts if ts_ms is None else ts_ms, c.seq)
    out = []
    for feeder in sorted(c.feeders):
        f = c.feeders[feeder]
        tags = _tag("cabinet", cabinet) + _tag("feeder", feeder) + _tag("road", road)
        fields = [_field("breaker", f.breaker), _bool("closed", f.breaker == "closed"),
                  _field("current_a", f.current_a), _field("energy_wh", f.energy_wh), _field("seq", c.seq),
                  _field("voltage_v", c.voltage_v)]
        out.append(_line("cabinet_feeder", tags, fields, t))
    return out
