"""A receive-only MQTT 5 client for the ingest subscription, built for throughput.

paho-mqtt reads each packet with several small ``recv`` calls and builds a message object
per packet, which costs about 50 µs a message here and made it the ceiling of the whole
pipeline. This connection reads the socket in large chunks, cuts the chunk into PUBLISH packets
in one loop and hands them over as one list; PUBACKs for a whole batch leave in one ``send``.
It implements only what the gateway's subscription needs (MQTT 5.0: CONNECT with a persistent
session and Receive Maximum, SUBSCRIBE with No Local, PUBLISH QoS 0/1 in, PUBACK out, PING,
DISCONNECT) and one kind of publishing: a batch of commands at QoS 1 in one write, straight from
the caller's thread (:meth:`IngestConnection.publish_many`); every other publish stays with paho.
It reconnects on its own with backoff. The packets
themselves are encoded and cut by :mod:`streetlight.mqttcodec`; this module owns the socket.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable

from streetlight import mqttcodec as mc

from .inbound import Raw

log = logging.getLogger(__name__)
OUT_WINDOW = 1000  # our QoS 1 PUBLISHes not yet acknowledged by the broker; beyond it the caller uses paho


class WireError(ConnectionError):
    """The broker refused us or broke the protocol."""


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
        self._out_lock = threading.Lock()
        self._out_id = 0  # packet ids of our own PUBLISHes (the broker's to us are another space)
        self._out_inflight = 0
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
                self._send(mc.DISCONNECT_5)  # normal disconnection: the session stays
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
            except (OSError, WireError, mc.MalformedPacket) as err:
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
        props = b"\x11" + struct.pack("!I", self.session_expiry_s) + b"\x21" + struct.pack("!H", self.receive_maximum)
        # clean start off: resume the persistent session; no will: a gateway has no status topic
        self._sock = sock
        self._send(mc.connect(self.client_id, version=mc.MQTT_5, keepalive_s=self.keepalive_s, clean=False,
                              username=self.username, password=self.password, properties=props))
        self._buf = b""
        kind, data = self._read_one()
        if kind != mc.CONNACK:
            raise WireError(f"expected CONNACK, got packet type {kind}")
        present, code = mc.connack(data)
        if code != 0:
            raise WireError(f"broker refused the connection (reason code 0x{code:02x})")
        self.generation += 1
        with self._out_lock:
            self._out_inflight = 0  # what the old connection had in flight is the callers' to retry
        # QoS 1 with No Local (0x04)
        self._send(mc.subscribe(1, [(f, 0x05) for f in self.filters], version=mc.MQTT_5))
        sock.settimeout(1.0)
        self.connected.set()
        if self._on_state:
            self._on_state(True)
        log.info("ingest connected to %s:%d (session present: %s)", self.host, self.port, present)

    def _read_one(self) -> tuple[int, bytes]:
        """Read a single packet, blocking (only used for CONNACK)."""
        assert self._sock is not None
        while True:
            if len(self._buf) >= 2:
                length, pos = mc.read_varint(self._buf, 1)
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
            packets, used = mc.scan(buf, version=mc.MQTT_5)
            buf = buf[used:]
            out = [Raw(topic, payload, mid, (flags >> 1) & 3, gen)
                   for kind, flags, topic, mid, payload in packets if kind == mc.PUBLISH]
            if out:
                self._deliver(out)
            if len(out) != len(packets):
                self._control([p for p in packets if p[0] != mc.PUBLISH])
            now = time.monotonic()
            if now - self._last_send > half_keepalive:
                self._send(mc.PINGREQ_PACKET)
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

    def _control(self, packets: list[mc.Scanned]) -> None:
        for kind, _flags, _topic, _mid, body in packets:
            if kind == mc.SUBACK:
                codes = mc.suback_codes(body, version=mc.MQTT_5)
                if any(c >= 0x80 for c in codes):
                    log.error("broker refused a subscription: reason codes %s", list(codes))
                self.subscribed.set()
            elif kind == mc.PUBACK:
                with self._out_lock:
                    self._out_inflight = max(0, self._out_inflight - 1)
            elif kind == mc.DISCONNECT:
                reason = body[0] if body else 0
                raise WireError(f"broker disconnected us (reason code 0x{reason:02x})")

    def publish_many(self, messages: list[tuple[str, bytes]]) -> bool:
        """QoS 1 PUBLISHes (a road's commands) in one write from the caller's thread: no hand-over
        to a network thread, no lock per message. False, with nothing sent, when the connection is
        down or the window is full: the caller sends them another way. The broker's PUBACKs are
        counted, not awaited: the caller waits for the application's own answer (an Ack)."""
        with self._out_lock:
            if not self.connected.is_set() or self._out_inflight + len(messages) > OUT_WINDOW:
                return False
            packets = []
            for topic, payload in messages:
                self._out_id = self._out_id % 65535 + 1
                packets.append(mc.publish(topic, payload, self._out_id, qos=1, version=mc.MQTT_5))
            self._out_inflight += len(messages)
        try:
            self._send(b"".join(packets))
        except OSError as err:
            log.warning("publishing %d message(s) on the ingest connection failed: %s", len(messages), err)
            return False
        return True

    def ack(self, raws: list[Raw]) -> None:
        """PUBACK every QoS 1 message of the current connection, in one write."""
        gen = self.generation
        data = mc.pubacks(r.mid for r in raws if r.qos == 1 and r.generation == gen)
        if data and self.connected.is_set():
            try:
                self._send(data)
            except OSError as err:  # the broker will send them again on the next connection
                log.warning("PUBACKs not sent: %s", err)
