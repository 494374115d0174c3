"""Helpers for the simulator tests against a real Mosquitto."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulators.scenario import Scenario, load_scenario

ROAD = "nanhuan-1"


def write_scenario(folder: Path, body: str, name: str = "t") -> Scenario:
    f = folder / f"{name}.yaml"
    f.write_text(f"name: {name}\nroad: {ROAD}\nreport_interval_s: 10\n" + body)
    return load_scenario(str(f))


class Listener:
    """A subscriber that keeps (topic, payload, retain) of everything it gets."""

    def __init__(self, url: str, topic: str = f"sl/v1/{ROAD}/#") -> None:
        self.q: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self.got: list[tuple[str, bytes, bool]] = []
        host, port = url.removeprefix("mqtt://").split(":")
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"listener-{time.monotonic_ns()}")
        self.c.max_inflight_messages_set(0)
        subscribed = queue.Queue()
        self.c.on_message = lambda c, u, m: self.q.put((m.topic, bytes(m.payload), bool(m.retain)))
        self.c.on_subscribe = lambda *a: subscribed.put(True)
        self.c.connect(host, int(port))
        self.c.subscribe(topic, qos=1)
        self.c.loop_start()
        subscribed.get(timeout=10)

    def drain(self) -> list[tuple[str, bytes, bool]]:
        while True:
            try:
                self.got.append(self.q.get_nowait())
            except queue.Empty:
                return self.got

    def wait_for(self, cond: Callable[[list[tuple[str, bytes, bool]]], bool], timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond(self.drain()):
                return True
            time.sleep(0.02)
        return cond(self.drain())

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


@pytest.fixture
def broker(mosquitto_factory):
    """A fresh broker: retained heartbeats and configs of one test never reach another."""
    return mosquitto_factory()


@pytest.fixture
def listener(broker) -> Iterator[Listener]:
    lst = Listener(broker.url)
    yield lst
    lst.close()
