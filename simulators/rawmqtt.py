"""A small MQTT 3.1.1 client for bulk QoS 1 publishing from one connection (the concentrator).

paho-mqtt writes one socket call per message, which caps a concentrator at about 13k msg/s on a
2-core machine; a concentrator of 10,000 poles sends that many in one report interval. This
client builds a step's PUBLISH packets in one buffer and writes it with one ``sendall``, keeps a
window of unacknowledged packets, and acknowledges what it receives (commands, configs,
heartbeats) from a reader thread that only queues them. It supports what a concentrator needs:
CONNECT (credentials, will), SUBSCRIBE, PUBLISH/PUBACK at QoS 0/1, PINGREQ, DISCONNECT.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable

from .errors import BrokerConnectError

WINDOW = 60_000  # packet ids in flight (of 65,535)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _str(s: bytes) -> bytes:
    return struct.pack("!H", len(s)) + s


class RawMqtt:
    def __init__(self, host: str, port: int, client_id: str, *, username: str | None = None,
                 password: str | None = None, will: tuple[str, bytes] | None = None, tls: bool = False,
                 keepalive: int = 30, on_message: Callable[[str, bytes], None] | None = None) -> None:
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
        self._suback = threading.Event()
        self._stop = threading.Event()
        self.error: str | None = None
        self.sock: socket.socket | None = None

    # --- connection ----------------------------------------------------------------------
    def connect(self, timeout: float = 15.0) -> None:
        url = f"mqtt://{self.host}:{self.port}"
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
            if self.tls:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        except OSError as err:
            raise BrokerConnectError(url, str(err)) from err
        flags = 0x02  # clean session
        payload = _str(self.client_id.encode())
        if self.will:
            flags |= 0x04 | 0x08 | 0x20  # will, will QoS 1, will retain
            payload += _str(self.will[0].encode()) + _str(self.will[1])
        if self.username is not None:
            flags |= 0x80
            payload += _str(self.username.encode())
            if self.password is not None:
                flags |= 0x40
                payload += _str(self.password.encode())
        var = _str(b"MQTT") + bytes([4, flags]) + struct.pack("!H", self.keepalive)
        body = var + payload
        sock.sendall(b"\x10" + _varint(len(body)) + body)
        connack = self._read_exact(sock, 4)
        if connack[0] != 0x20 or connack[3] != 0:
            sock.close()
            raise BrokerConnectError(url, f"CONNACK refused (code {connack[3]})")
        sock.settimeout(None)
        self.sock = sock
        threading.Thread(target=self._reader, name=f"mqtt-{self.client_id}", daemon=True).start()
        threading.Thread(target=self._pinger, name=f"mqtt-ping-{self.client_id}", daemon=True).start()

    def subscribe(self, topics: list[str], timeout: float = 15.0) -> None:
        body = struct.pack("!H", self._packet_id()) + b"".join(_str(t.encode()) + b"\x01" for t in topics)
        self._suback.clear()
        self._send(b"\x82" + _varint(len(body)) + body)
        if not self._suback.wait(timeout):
            raise BrokerConnectError(f"mqtt://{self.host}:{self.port}", "no SUBACK in time")

    def close(self) -> None:
        """Leave cleanly (DISCONNECT): the broker does not publish the will."""
        self._closed = True
        self._stop.set()
        try:
            self._send(b"\xe0\x00")
        except OSError:
            pass
        if self.sock is not None:
            self.sock.close()

    def kill(self) -> None:
        """Vanish without a DISCONNECT, as a device losing its supply: the broker publishes the will."""
        self._closed = True
        self._stop.set()
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()

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
            buf = bytearray()
            for topic, payload, retain in chunk:
                t = topic.encode()
                rest = len(t) + 4 + len(payload)
                buf += bytes([0x33 if retain else 0x32]) + _varint(rest) + struct.pack("!H", len(t)) + t
                buf += struct.pack("!H", self._packet_id()) + payload
            self._send(bytes(buf))
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
                self._send(b"\xc0\x00")
            except OSError:
                return

    def _reader(self) -> None:
        assert self.sock is not None
        buf = bytearray()
        try:
            while True:
                data = self.sock.recv(1 << 16)
                if not data:
                    raise ConnectionError("broker closed the connection")
                buf += data
                pos = self._parse(buf)
                del buf[:pos]
        except (OSError, ConnectionError) as err:
            if not self._closed:
                self.error = str(err)
        with self._cv:
            self._cv.notify_all()

    def _parse(self, buf: bytearray) -> int:
        """Handle every complete packet in ``buf``; returns how many bytes were used."""
        pos, n, acked = 0, len(buf), 0
        while pos + 2 <= n:
            kind = buf[pos]
            length, mult, k = 0, 1, pos + 1
            while True:
                if k >= n:
                    self._acked(acked)
                    return pos
                b = buf[k]
                length += (b & 0x7F) * mult
                mult *= 128
                k += 1
                if not b & 0x80:
                    break
            end = k + length
            if end > n:
                break
            ptype = kind >> 4
            if ptype == 4:  # PUBACK
                acked += 1
            elif ptype == 3:  # PUBLISH
                qos = (kind >> 1) & 3
                tlen = struct.unpack_from("!H", buf, k)[0]
                topic = bytes(buf[k + 2:k + 2 + tlen]).decode("utf-8", "replace")
                p = k + 2 + tlen
                if qos:
                    pid = bytes(buf[p:p + 2])
                    p += 2
                    self._send(b"\x40\x02" + pid)
                if self.on_message is not None:
                    self.on_message(topic, bytes(buf[p:end]))
            elif ptype == 9:  # SUBACK
                self._suback.set()
            pos = end
        self._acked(acked)
        return pos

    def _acked(self, count: int) -> None:
        if count:
            with self._cv:
                self._inflight -= count
                self.acked += count
                self._cv.notify_all()
