"""Test helpers: a small QoS 1 publisher that counts PUBACKs, message makers, database checks."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from streetlight.protocol import pole_topic
from telemetry import InfluxQL

T0 = 1_795_000_000_000  # device time of the test traffic (ms)


def telemetry(ts: int, seq: int, **kw: Any) -> bytes:
    body = {"ts": ts, "seq": seq, "dim": 70.0, "power_w": 84.0, "voltage_v": 229.5, "energy_wh": 1000.0 + seq}
    body.update(kw)
    return orjson.dumps(body)


def wait_for(cond: Callable[[], Any], timeout: float = 20.0, every: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class Publisher:
    """One MQTT connection publishing at QoS 1 for many poles; ``acked`` holds what got a PUBACK."""

    def __init__(self, url_port: int, client_id: str | None = None) -> None:
        self.port = url_port
        self.acked: set[tuple[str, int]] = set()  # (pole, seq)
        self._pending: dict[int, tuple[str, int] | None] = {}
        self._early: set[int] = set()
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"pub-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv311, clean_session=True)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.05, 0.5)
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, rc: Any, props: Any) -> None:
        with self._lock:
            if mid not in self._pending:
                self._early.add(mid)  # PUBACK before publish() returned
                return
            key = self._pending.pop(mid)
            if key is not None:
                self.acked.add(key)

    def publish(self, topic: str, payload: bytes, key: tuple[str, int] | None = None, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                if key is not None:
                    self.acked.add(key)
            else:
                self._pending[info.mid] = key

    def telemetry(self, road: str, pole: str, ts: int, seq: int, **kw: Any) -> None:
        self.publish(pole_topic(road, pole, "telemetry"), telemetry(ts, seq, **kw), (pole, seq))

    def drain(self, timeout: float = 30.0) -> None:
        wait_for(lambda: not self._pending, timeout, what="PUBACKs")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def stored(influx_url: str, db: str, road: str) -> dict[str, tuple[int, int]]:
    """pole -> (points, distinct seq) in the database."""
    q = InfluxQL(influx_url, db)
    try:
        res = q.query(f"SELECT count(seq) AS n, count(distinct(seq)) AS d FROM telemetry WHERE road = '{road}' GROUP BY pole")
    finally:
        q.close()
    out: dict[str, tuple[int, int]] = {}
    for r in res:
        for s in r.get("series", []):
            out[s["tags"]["pole"]] = (int(s["values"][0][1]), int(s["values"][0][2]))
    return out


def total_stored(influx_url: str, db: str, road: str) -> int:
    try:
        return sum(n for n, _ in stored(influx_url, db, road).values())
    except Exception:
        return -1


def stored_keys(influx_url: str, db: str, road: str) -> list[tuple[str, int]]:
    """Every stored (pole, seq), with repeats if a message was stored twice."""
    q = InfluxQL(influx_url, db)
    try:
        res = q.query(f"SELECT seq FROM telemetry WHERE road = '{road}' GROUP BY pole")
    finally:
        q.close()
    return [(s["tags"]["pole"], int(v[1])) for r in res for s in r.get("series", []) for v in s["values"]]


class Traffic:
    """93 poles publishing telemetry at QoS 1 in rounds, on a thread, until stopped."""

    def __init__(self, pub: Publisher, road_id: str, poles: list[str], every_s: float = 0.05) -> None:
        self.pub, self.road_id, self.poles, self.every_s = pub, road_id, poles, every_s
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            for p in self.poles:
                self.pub.telemetry(self.road_id, p, T0 + self.rounds * 1000, self.rounds)
            self.rounds += 1
            self._stop.wait(self.every_s)

    def wait_rounds(self, n: int, timeout: float = 60.0) -> None:
        target = self.rounds + n
        wait_for(lambda: self.rounds >= target, timeout, what=f"{n} rounds of traffic")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
