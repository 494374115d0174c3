"""A receive-only MQTT 5 client for the ingest subscription, built for throughput.

paho-mqtt reads each packet with several small ``recv`` calls and builds a message object
per packet, which costs about 50 µs a message here and made it the ceiling of the whole
pipeline. This connection reads the socket in large chunks, cuts the chunk into PUBLISH packets
in one loop and hands them over as one list; PUBACKs for a whole batch leave in one ``send``.
It implements only what the gateway's subscription needs (MQTT 5.0: CONNECT with a persistent
session and Receive Maximum, SUBSCRIBE with No Local, PUBLISH QoS 0/1 in, PUBACK out, PING,
DISCONNECT); publishing stays with paho. It reconnects on its own with backoff.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable

from .inbound import Raw

log = logging.getLogger(__name__)
CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 1, 2, 3, 4, 8, 9, 12, 13, 14


class WireError(ConnectionError):
    """The broker refused us or broke the protocol."""


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + _varint(len(body)) + body


def _read_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """(value, next position) or (-1, pos) if the buffer ends inside it."""
    value, mult = 0, 1
    for i in range(4):
        if pos + i >= len(buf):
            return -1, pos
        b = buf[pos + i]
        value += (b & 0x7F) * mult
        if not b & 0x80:
            return value, pos + i + 1
        mult *= 128
    raise WireError("malformed remaining length")


class IngestConnection:
    def __init__(self, host: str, port: int, client_id: str, filters: list[str],
                 deliver: Callable[[list[Raw]], None], *, username: str | None = None, password: str | None = None,
                 tls: ssl.SSLContext | None = None, session_expiry_s: int = 7 * 24 * 3600,
                 receive_maximum: int = 20_000, keepalive_s: int = 30,
                 on_state: Callable[[bool], None] | None = None) -> None:
        self.host, self.port, self.client_id, self.filters = host, port, client_id, filters
        self._deliver = deliver
        self.username, self.password, self.tls = username, password, tls
        self.session_expiry_s, self.receive_maximum, self.keepalive_s = session_expiry_s, receive_maximum, keepalive_s
        self._on_state = on_state
        self.generation = 0
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._last_send = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="mqtt-ingest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            try:
                self._send(_packet(DISCONNECT, 0, b"\x00"))  # normal disconnection: the session stays
            except OSError:
                pass
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            try:
                self._connect()
                delay = 0.1
                self._read_loop()
            except (OSError, WireError) as err:
                if not self._stop.is_set():
                    log.warning("ingest connection to %s:%d lost (%s); reconnecting", self.host, self.port, err)
            finally:
                self._close()
            self._stop.wait(delay)
            delay = min(delay * 2, 2.0)

    def _close(self) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        self.subscribed.clear()
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
        if was and self._on_state:
            self._on_state(False)

    # -- protocol --------------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            raise OSError("not connected")
        with self._send_lock:
            sock.sendall(data)
            self._last_send = time.monotonic()

    def _connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock = self.tls.wrap_socket(raw, server_hostname=self.host) if self.tls else raw
        flags = 0x00  # clean start off: resume the persistent session
        if self.username is not None:
            flags |= 0x80
            if self.password is not None:
                flags |= 0x40
        props = b"\x11" + struct.pack("!I", self.session_expiry_s) + b"\x21" + struct.pack("!H", self.receive_maximum)
        body = _str("MQTT") + bytes([5, flags]) + struct.pack("!H", self.keepalive_s) + _varint(len(props)) + props
        body += _str(self.client_id)  # no will: a gateway has no status topic of its own
        if self.username is not None:
            body += _str(self.username)
            if self.password is not None:
                body += _str(self.password)
        self._sock = sock
        self._send(_packet(CONNECT, 0, body))
        self._buf = b""
        kind, data = self._read_one()
        if kind != CONNACK or len(data) < 2:
            raise WireError(f"expected CONNACK, got packet type {kind}")
        if data[1] != 0:
            raise WireError(f"broker refused the connection (reason code 0x{data[1]:02x})")
        self.generation += 1
        subs = b"".join(_str(f) + b"\x05" for f in self.filters)  # QoS 1, No Local
        self._send(_packet(SUBSCRIBE, 0x02, struct.pack("!H", 1) + b"\x00" + subs))
        sock.settimeout(1.0)
        self.connected.set()
        if self._on_state:
            self._on_state(True)
        log.info("ingest connected to %s:%d (session present: %s)", self.host, self.port, bool(data[0] & 1))

    def _read_one(self) -> tuple[int, bytes]:
        """Read a single packet, blocking (only used for CONNACK)."""
        assert self._sock is not None
        while True:
            if len(self._buf) >= 2:
                length, pos = _read_varint(self._buf, 1)
                if length >= 0 and len(self._buf) >= pos + length:
                    kind = self._buf[0] >> 4
                    data, self._buf = self._buf[pos:pos + length], self._buf[pos + length:]
                    return kind, data
            chunk = self._sock.recv(65536)
            if not chunk:
                raise WireError("broker closed the connection")
            self._buf += chunk

    def _read_loop(self) -> None:
        assert self._sock is not None
        sock, gen, buf = self._sock, self.generation, self._buf
        half_keepalive = self.keepalive_s / 2
        last_recv = time.monotonic()
        while not self._stop.is_set():
            out: list[Raw] = []
            pos, n = 0, len(buf)
            while pos + 1 < n:
                head = buf[pos]
                length, start = _read_varint(buf, pos + 1)
                if length < 0 or start + length > n:
                    break
                end = start + length
                kind = head >> 4
                if kind == PUBLISH:
                    qos = (head >> 1) & 3
                    tlen = (buf[start] << 8) | buf[start + 1]
                    p = start + 2 + tlen
                    topic = buf[start + 2:p].decode("utf-8", "replace")
                    mid = 0
                    if qos:
                        mid = (buf[p] << 8) | buf[p + 1]
                        p += 2
                    plen, p = _read_varint(buf, p)  # properties: skipped
                    out.append(Raw(topic, buf[p + plen:end], mid, qos, gen))
                elif kind == SUBACK:
                    plen, q = _read_varint(buf, start + 2)
                    codes = buf[q + plen:end]
                    if any(c >= 0x80 for c in codes):
                        log.error("broker refused a subscription: reason codes %s", list(codes))
                    self.subscribed.set()
                elif kind == DISCONNECT:
                    reason = buf[start] if length else 0
                    raise WireError(f"broker disconnected us (reason code 0x{reason:02x})")
                pos = end
            buf = buf[pos:]
            if out:
                self._deliver(out)
            now = time.monotonic()
            if now - self._last_send > half_keepalive:
                self._send(_packet(PINGREQ, 0, b""))
            if now - last_recv > 1.5 * self.keepalive_s:  # not even a PINGRESP: the link is dead
                raise WireError(f"nothing from the broker for {now - last_recv:.0f} s")
            try:
                chunk = sock.recv(1 << 20)
            except TimeoutError:
                continue
            if not chunk:
                raise WireError("broker closed the connection")
            last_recv = time.monotonic()
            buf = buf + chunk if buf else chunk

    def ack(self, raws: list[Raw]) -> None:
        """PUBACK every QoS 1 message of the current connection, in one write."""
        gen = self.generation
        data = b"".join(b"\x40\x02" + r.mid.to_bytes(2, "big") for r in raws if r.qos == 1 and r.generation == gen)
        if data and self.connected.is_set():
            try:
                self._send(data)
            except OSError as err:  # the broker will send them again on the next connection
                log.warning("PUBACKs not sent: %s", err)
