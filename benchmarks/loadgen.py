"""A load generator that speaks just enough MQTT 3.1.1 over a raw socket to publish telemetry at
QoS 1 faster than a paho client can, so that benchmarks measure the consumer, not the producer.

Packets are encoded by :mod:`streetlight.mqttcodec` and pre-encoded; PUBACKs are read in bulk and counted. Used by ``streetlight bench``.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import orjson

from streetlight import mqttcodec as mc


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    return mc.publish(topic, payload, packet_id)


def telemetry_messages(road: str, poles: list[str], count: int, t0_ms: int, seq0: int = 0) -> Iterator[tuple[str, bytes]]:
    """``count`` telemetry messages, round-robin over ``poles``, each pole's seq increasing."""
    topics = [f"sl/v1/{road}/{p}/telemetry" for p in poles]
    n = len(poles)
    for i in range(count):
        r = i // n + seq0
        body = {"ts": t0_ms + r * 1000, "seq": r, "dim": 70.0, "power_w": 84.0 + (i % 7), "voltage_v": 229.0,
                "current_a": 0.37, "pf": 0.98, "energy_wh": 1000.0 + r, "lux": 3.5, "vehicles": i % 5}
        yield topics[i % n], orjson.dumps(body)


class RawPublisher:
    def __init__(self, host: str, port: int, client_id: str | None = None, clean: bool = True) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cid = client_id or f"load-{uuid.uuid4().hex[:8]}"
        self.sock.sendall(mc.connect(cid, keepalive_s=60, clean=clean))
        ack = self._read_exact(4)
        if ack[0] >> 4 != mc.CONNACK or mc.connack(ack[2:])[1] != 0:
            raise ConnectionError(f"broker refused the connection: {ack!r}")
        self.acked = 0
        self._buf = b""

    def _read_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            data += chunk
        return data

    def _read_acks(self, block: bool) -> None:
        self.sock.setblocking(block)
        try:
            chunk = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        finally:
            self.sock.setblocking(True)
        if not chunk:
            raise ConnectionError("broker closed the connection")
        self._buf += chunk
        packets, used = mc.scan(self._buf)
        self._buf = self._buf[used:]
        self.acked += sum(1 for p in packets if p[0] == mc.PUBACK)

    def publish_all(self, messages: Iterator[tuple[str, bytes]], window: int = 20_000,
                    rate: float | None = None) -> int:
        """Publish at QoS 1, at most ``window`` unacknowledged; returns the count acknowledged."""
        sent = 0
        chunk: list[bytes] = []
        start = time.perf_counter()
        for topic, payload in messages:
            chunk.append(publish_packet(topic, payload, sent % 65535 + 1))
            sent += 1
            if len(chunk) >= 500:
                self.sock.sendall(b"".join(chunk))
                chunk.clear()
                while sent - self.acked > window:
                    self._read_acks(block=True)
                self._read_acks(block=False)
                if rate:
                    ahead = sent / rate - (time.perf_counter() - start)
                    if ahead > 0:
                        time.sleep(ahead)
        if chunk:
            self.sock.sendall(b"".join(chunk))
        while self.acked < sent:
            self._read_acks(block=True)
        return self.acked

    def close(self) -> None:
        try:
            self.sock.sendall(mc.DISCONNECT_311)
        finally:
            self.sock.close()
