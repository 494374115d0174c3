"""MQTT packets as bytes: encoding and cutting a received stream into packets, with no sockets.

The platform's fast paths speak MQTT over raw sockets because paho-mqtt costs tens of µs a
message: the gateway's ingest subscription (MQTT 5, receive side), the simulators' bulk
publisher (MQTT 3.1.1) and the benchmarks' load generator. They share this one codec; each
keeps only its socket handling. Only the packets those clients use are here: CONNECT/CONNACK,
PUBLISH, PUBACK, SUBSCRIBE/SUBACK, PINGREQ/PINGRESP, DISCONNECT.

:func:`scan` is the hot loop of every reader: it cuts all complete packets out of a buffer in one
pass and returns them as plain tuples, so a reader pays one call per chunk, not per packet.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from .errors import StreetlightError

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 1, 2, 3, 4, 8, 9, 12, 13, 14
MQTT_311, MQTT_5 = 4, 5
PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_311 = b"\xe0\x00"
DISCONNECT_5 = b"\xe0\x01\x00"  # reason 0x00, normal disconnection: the will is not published
_H = struct.Struct("!H")


class MalformedPacket(StreetlightError):
    """The byte stream is not MQTT (a remaining length longer than four bytes)."""


def varint(n: int) -> bytes:
    """MQTT's variable byte integer (the remaining length, property lengths)."""
    if n < 128:
        return bytes((n,))
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def read_varint(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """(value, next position), or (-1, pos) if the buffer ends inside the number."""
    value, mult = 0, 1
    for i in range(4):
        if pos + i >= len(buf):
            return -1, pos
        b = buf[pos + i]
        value += (b & 0x7F) * mult
        if not b & 0x80:
            return value, pos + i + 1
        mult *= 128
    raise MalformedPacket("remaining length longer than four bytes")


def string(s: str | bytes) -> bytes:
    """A length-prefixed UTF-8 string (or binary data)."""
    b = s.encode() if isinstance(s, str) else s
    return _H.pack(len(b)) + b


def packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes((kind << 4 | flags,)) + varint(len(body)) + body


def connect(client_id: str, *, version: int = MQTT_311, keepalive_s: int = 30, clean: bool = True,
            username: str | None = None, password: str | None = None,
            will: tuple[str, bytes] | None = None, will_retain: bool = True, will_qos: int = 1,
            properties: bytes = b"") -> bytes:
    """A CONNECT packet; ``properties`` (MQTT 5 only) are already encoded, without their length."""
    flags = 0x02 if clean else 0x00
    payload = string(client_id)
    if will is not None:
        flags |= 0x04 | will_qos << 3 | (0x20 if will_retain else 0)
        if version == MQTT_5:
            payload += b"\x00"  # no will properties
        payload += string(will[0]) + string(will[1])
    if username is not None:
        flags |= 0x80
        payload += string(username)
        if password is not None:
            flags |= 0x40
            payload += string(password)
    var = string("MQTT") + bytes((version, flags)) + _H.pack(keepalive_s)
    if version == MQTT_5:
        var += varint(len(properties)) + properties
    return packet(CONNECT, 0, var + payload)


def connack(body: bytes) -> tuple[bool, int]:
    """(session present, return/reason code) of a CONNACK's body (3.1.1 and 5)."""
    if len(body) < 2:
        raise MalformedPacket(f"CONNACK of {len(body)} bytes")
    return bool(body[0] & 1), body[1]


def publish(topic: str | bytes, payload: bytes, packet_id: int = 0, *, qos: int = 1, retain: bool = False,
            version: int = MQTT_311) -> bytes:
    """One PUBLISH packet (``packet_id`` is used at QoS 1 and 2)."""
    t = topic.encode() if isinstance(topic, str) else topic
    head = _H.pack(len(t)) + t + (_H.pack(packet_id) if qos else b"") + (b"\x00" if version == MQTT_5 else b"")
    return bytes((0x30 | qos << 1 | retain,)) + varint(len(head) + len(payload)) + head + payload


def publishes(messages: Iterable[tuple[str, bytes, bool]], next_id: int) -> tuple[bytes, int, int]:
    """MQTT 3.1.1 QoS 1 PUBLISH packets for ``(topic, payload, retain)`` in one buffer.

    Packet ids run on from ``next_id`` (1 … 65535, wrapping); returns (bytes, the id to use next,
    how many packets).
    """
    buf = bytearray()
    pack = _H.pack
    n = 0
    for topic, payload, retain in messages:
        t = topic.encode()
        buf += b"\x33" if retain else b"\x32"
        buf += varint(len(t) + 4 + len(payload))
        buf += pack(len(t))
        buf += t
        buf += pack(next_id)
        buf += payload
        next_id = next_id % 65535 + 1
        n += 1
    return bytes(buf), next_id, n


def puback(packet_id: int) -> bytes:
    return b"\x40\x02" + _H.pack(packet_id)


def pubacks(packet_ids: Iterable[int]) -> bytes:
    """PUBACKs for many packets, to leave in one write."""
    return b"".join(b"\x40\x02" + i.to_bytes(2, "big") for i in packet_ids)


def subscribe(packet_id: int, filters: Iterable[tuple[str, int]], *, version: int = MQTT_311) -> bytes:
    """SUBSCRIBE with an options byte per filter (QoS in bits 0–1; MQTT 5 adds No Local = 0x04)."""
    body = _H.pack(packet_id) + (b"\x00" if version == MQTT_5 else b"")
    body += b"".join(string(f) + bytes((opts,)) for f, opts in filters)
    return packet(SUBSCRIBE, 0x02, body)


def suback_codes(body: bytes, *, version: int = MQTT_311) -> bytes:
    """The per-filter return/reason codes of a SUBACK's body (≥ 0x80 is a refusal)."""
    pos = 2
    if version == MQTT_5:
        plen, pos = read_varint(body, pos)
        pos += plen
    return bytes(body[pos:])


# A scanned packet: (kind, flags, topic, packet id, payload). For PUBLISH the topic, the packet id
# (0 at QoS 0) and the application payload; for PUBACK/SUBACK the packet id and the rest of the
# body; for every other kind topic is "" and payload the whole body.
Scanned = tuple[int, int, str, int, bytes]


def scan(buf: bytes | bytearray, *, version: int = MQTT_311) -> tuple[list[Scanned], int]:
    """Every complete packet in ``buf`` and how many bytes they used (the rest is a partial packet)."""
    if not isinstance(buf, bytes):
        buf = bytes(buf)  # slices of bytes are the payloads handed on, without a second copy
    out: list[Scanned] = []
    append = out.append
    v5 = version == MQTT_5
    pos, n = 0, len(buf)
    while pos + 1 < n:
        head = buf[pos]
        b = buf[pos + 1]
        if b < 0x80:  # a packet shorter than 128 bytes
            length, start = b, pos + 2
        elif pos + 2 < n and buf[pos + 2] < 0x80:  # the common case, a telemetry: shorter than 16 KiB
            length, start = (b & 0x7F) | (buf[pos + 2] << 7), pos + 3
        else:
            length, start = read_varint(buf, pos + 1)
            if length < 0:
                break
        end = start + length
        if end > n:
            break
        kind = head >> 4
        if kind == PUBLISH:
            qos = (head >> 1) & 3
            p = start + 2 + ((buf[start] << 8) | buf[start + 1])
            topic = buf[start + 2:p].decode("utf-8", "replace")
            mid = 0
            if qos:
                mid = (buf[p] << 8) | buf[p + 1]
                p += 2
            if v5:
                plen = buf[p]
                if plen < 0x80:
                    p += 1 + plen
                else:
                    plen, p = read_varint(buf, p)  # properties: skipped
                    p += plen
            append((PUBLISH, head & 0x0F, topic, mid, buf[p:end]))
        elif kind == PUBACK or kind == SUBACK:
            append((kind, head & 0x0F, "", (buf[start] << 8) | buf[start + 1], buf[start:end]))
        else:
            append((kind, head & 0x0F, "", 0, buf[start:end]))
        pos = end
    return out, pos
