"""A small MQTT 3.1.1 client for bulk QoS 1 publishing from one connection (the concentrator).

paho-mqtt writes one socket call per message, which caps a concentrator at about 13k msg/s on a
2-core machine; a concentrator of 10,000 poles sends that many in one report interval. This
client builds a step's PUBLISH packets in one buffer and writes it with one ``sendall``, keeps a
window of unacknowledged packets, and acknowledges what it receives (commands, configs,
heartbeats) from a reader thread that only queues them. It supports what a concentrator needs:
CONNECT (credentials, will), SUBSCRIBE, PUBLISH/PUBACK at QoS 0/1, PINGREQ, DISCONNECT. The
packets are encoded and cut by :mod:`streetlight.mqttcodec`; this module owns the socket.

A device that loses its supply sends nothing more, not even a TCP FIN: :meth:`RawMqtt.go_silent`
stops every write (PINGREQ too) and keeps the socket open, so the broker learns of the death only
when the keep-alive runs out (1.5 × keep-alive) or when the device connects again with its client
id (the broker then ends the old connection, publishing its will, just before the new one's
``online``).
:meth:`RawMqtt.kill` closes the socket instead, which the broker takes as the end at once.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable

from streetlight import mqttcodec as mc

from .errors import BrokerConnectError

WINDOW = 60_000  # packet ids in flight (of 65,535)


class RawMqtt:
    def __init__(self, host: str, port: int, client_id: str, *, username: str | None = None,
                 password: str | None = None, will: tuple[str, bytes] | None = None, tls: bool = False,
                 keepalive: int = 30, on_message: Callable[[str, bytes], None] | None = None,
                 shared: SharedReader | None = None) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.username, self.password, self.will, self.tls = username, password, will, tls
        self.keepalive = keepalive
        self.on_message = on_message
        self._send_lock = threading.Lock()
        self._cv = threading.Condition()
        self._inflight = 0
        self.sent = 0  # QoS 1 packets written so far
        self.acked = 0  # of which the broker has acknowledged
        self.mark = 0  # ``sent`` at the caller's last flush, for pipelined flushing
        self._next_id = 0
        self._closed = False
        self.silent = False  # dead without a word: no more writes, the socket left open
        self._suback = threading.Event()
        self._stop = threading.Event()
        self.error: str | None = None
        self.sock: socket.socket | None = None
        self._buf = b""  # the start of a packet not yet whole
        self.shared = shared

    # --- connection ----------------------------------------------------------------------
    def connect(self, timeout: float = 15.0) -> None:
        url = f"mqtt://{self.host}:{self.port}"
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
            # small packets leave at once: with Nagle's algorithm a PUBLISH written right after a
            # PUBACK waits for the broker's delayed TCP ack (about 40 ms on Linux)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        except OSError as err:
            raise BrokerConnectError(url, str(err)) from err
        sock.sendall(mc.connect(self.client_id, keepalive_s=self.keepalive, username=self.username,
                                password=self.password, will=self.will))
        connack = self._read_exact(sock, 4)
        if connack[0] >> 4 != mc.CONNACK or mc.connack(connack[2:])[1] != 0:
            sock.close()
            raise BrokerConnectError(url, f"CONNACK refused (code {connack[3]})")
        sock.settimeout(None)
        self.sock = sock
        if self.shared is not None:
            self.shared.add(self)
        else:
            threading.Thread(target=self._reader, name=f"mqtt-{self.client_id}", daemon=True).start()
        threading.Thread(target=self._pinger, name=f"mqtt-ping-{self.client_id}", daemon=True).start()

    def subscribe(self, topics: list[str], timeout: float = 15.0) -> None:
        self._suback.clear()
        self._send(mc.subscribe(self._packet_id(), [(t, 1) for t in topics]))
        if not self._suback.wait(timeout):
            raise BrokerConnectError(f"mqtt://{self.host}:{self.port}", "no SUBACK in time")

    def close(self) -> None:
        """Leave cleanly (DISCONNECT): the broker does not publish the will."""
        self._closed = True
        self._stop.set()
        if self.shared is not None:
            self.shared.remove(self)
        try:
            self._send(mc.DISCONNECT_311)
        except OSError:
            pass
        if self.sock is not None:
            self.sock.close()

    def kill(self) -> None:
        """Close the socket without a DISCONNECT: the broker publishes the will at once."""
        self._closed = True
        self._stop.set()
        if self.shared is not None:
            self.shared.remove(self)
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()

    def go_silent(self) -> None:
        """Stop every write and keep the socket open, as a device losing its supply.

        The broker publishes the will when the keep-alive runs out, or when the same client id
        connects again first (it ends the mute connection then). The reader keeps draining what the broker
        sends (and acknowledges
        nothing) until the broker closes the connection, then closes the socket.
        """
        self.silent = True
        self._closed = True
        self._stop.set()
        with self._cv:
            self._cv.notify_all()

    # --- publishing ----------------------------------------------------------------------
    def publish_many(self, messages: list[tuple[str, bytes, bool]]) -> None:
        """Send QoS 1 PUBLISH packets, in order, waiting whenever the window is full."""
        i = 0
        while i < len(messages):
            with self._cv:
                while self._inflight >= WINDOW and not self._closed and self.error is None:
                    self._cv.wait(1.0)
                room = WINDOW - self._inflight
                chunk = messages[i:i + min(room, 5000)]
                self._inflight += len(chunk)
                self.sent += len(chunk)
            data, self._next_id, _ = mc.publishes(chunk, self._next_id % 65535 + 1)
            self._next_id = (self._next_id - 2) % 65535 + 1  # the id last used
            self._send(data)
            i += len(chunk)

    def flush(self, timeout: float = 60.0, upto: int | None = None) -> bool:
        """Wait until every packet sent (or the first ``upto``) has been acknowledged.

        ``False`` on timeout or a broken connection.
        """
        deadline = time.monotonic() + timeout
        target = self.sent if upto is None else upto
        with self._cv:
            while self.acked < target and self.error is None and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 1.0))
        return self.error is None

    @property
    def connected(self) -> bool:
        return self.sock is not None and self.error is None and not self._closed

    # --- internals -----------------------------------------------------------------------
    def _packet_id(self) -> int:
        self._next_id = self._next_id % 65535 + 1
        return self._next_id

    def _send(self, data: bytes) -> None:
        assert self.sock is not None
        if self.silent:
            return  # a dead device writes nothing
        with self._send_lock:
            self.sock.sendall(data)

    @staticmethod
    def _read_exact(sock: socket.socket, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            part = sock.recv(n - len(buf))
            if not part:
                raise ConnectionError("broker closed the connection")
            buf += part
        return buf

    def _pinger(self) -> None:
        while not self._stop.wait(self.keepalive / 2) and self.error is None:
            try:
                self._send(mc.PINGREQ_PACKET)
            except OSError:
                return

    def _reader(self) -> None:
        while self._receive():
            pass
        if self.silent and self.sock is not None:
            self.sock.close()

    def _receive(self) -> bool:
        """Read what the socket holds and handle it; ``False`` once the connection has ended.

        Called by the connection's own reader thread, or by a :class:`SharedReader` when the
        socket is readable (the socket stays blocking for ``sendall``; ``recv`` then returns at once).
        """
        sock = self.sock
        assert sock is not None
        try:
            data = sock.recv(1 << 16)
            if not data:
                raise ConnectionError("broker closed the connection")
            # TLS may hold decrypted bytes the selector cannot see: take them now
            while isinstance(sock, ssl.SSLSocket) and sock.pending():
                data += sock.recv(sock.pending())
            if not self.silent:  # a dead device hears nothing; the broker ends it after the keep-alive
                buf = self._buf + data if self._buf else data
                packets, used = mc.scan(buf)
                self._buf = buf[used:]
                self._handle(packets)
            return True
        except (OSError, ConnectionError, mc.MalformedPacket) as err:
            if not self._closed:
                self.error = str(err)
        with self._cv:
            self._cv.notify_all()
        return False

    def _handle(self, packets: list[mc.Scanned]) -> None:
        acked = 0
        ids: list[int] = []
        for kind, flags, topic, mid, payload in packets:
            if kind == mc.PUBACK:
                acked += 1
            elif kind == mc.PUBLISH:
                if flags & 0x06:
                    ids.append(mid)
                if self.on_message is not None:
                    self.on_message(topic, payload)
            elif kind == mc.SUBACK:
                self._suback.set()
        if ids:
            self._send(mc.pubacks(ids))
        self._acked(acked)

    def _acked(self, count: int) -> None:
        if count:
            with self._cv:
                self._inflight -= count
                self.acked += count
                self._cv.notify_all()


class SharedReader:
    """One thread reading many connections (a road's poles, each on its own connection).

    A thread per connection costs little while idle, but when the broker hands a whole road's
    commands to 93 connections at once, 93 threads wake together and queue for the interpreter
    lock, so the last command reached the simulator 10–20 ms after the first; one thread waiting
    on all the sockets (``selectors``) reads them in turn as they become readable.
    """

    def __init__(self, name: str = "mqtt-reader") -> None:
        self._sel = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def add(self, conn: RawMqtt) -> None:
        assert conn.sock is not None
        self._sel.register(conn.sock, selectors.EVENT_READ, conn)

    def remove(self, conn: RawMqtt) -> None:
        if conn.sock is None:
            return
        try:
            self._sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass  # already gone: its connection ended and the reader let it go

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sel.close()

    def _run(self) -> None:
        # a registration made during a wait is seen at once with epoll; the timeout covers the rest
        while not self._stop.is_set():
            try:
                ready = self._sel.select(0.5)
            except (OSError, ValueError):  # a socket closed under the selector
                continue
            for key, _ in ready:
                conn: RawMqtt = key.data
                if not conn._receive():
                    self.remove(conn)  # before the close, or a new socket could get its number
                    if conn.silent and conn.sock is not None:
                        conn.sock.close()
