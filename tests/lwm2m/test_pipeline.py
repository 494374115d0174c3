"""LwM2M devices on the platform's own pipeline: queue mode seen from a command, bad values
counted by the gateway like bad MQTT messages, and MQTT poles undisturbed beside them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from simulators.lwm2m_device import STARTED, SimLwm2mDevice
from streetlight.net import LOOPBACK, free_udp_port
from streetlight.protocol import pole_topic
from tests.waiting import wait_until

from ..gateway.helpers import Publisher
from .conftest import ENDPOINTS, Loop, Platform, start_platform
from .conftest import lwm2m_road as _road


@pytest.fixture
def loop() -> Iterator[Loop]:
    lp = Loop()
    yield lp
    lp.close()


@pytest.fixture(scope="module")
def queued_platform(influxdb, tmp_path_factory) -> Iterator[Platform]:
    """One platform for the module (each test on poles of its own); queue-mode devices sleep soon."""
    yield from start_platform(influxdb, tmp_path_factory.mktemp("lwm2m") / "state",
                              _road(["NH-001", "NH-002", "NH-003"]), lwm2m_queue_awake_s=0.3)


def _device(loop: Loop, platform: Platform, pole: str, **kw: Any) -> SimLwm2mDevice:
    dev = SimLwm2mDevice(ENDPOINTS[pole], (LOOPBACK, platform.port), **kw)
    dev.values.update(STARTED)  # a lamp that is on and measured
    loop.run(dev.start(free_udp_port()))
    return dev


def _fault(platform: Platform, pole: str, type_: str) -> bool:
    r = platform.get("/api/v1/faults", params={"type": type_})
    assert r.status_code == 200, r.text
    return any(f.get("pole") == pole for f in r.json()["faults"])


def _status(platform: Platform, cmd_id: str, pole: str) -> str:
    return str(platform.get(f"/api/v1/commands/{cmd_id}").json()["poles"][pole]["status"])


def test_a_queue_mode_command_waits_visibly_until_the_device_wakes(queued_platform: Platform, loop: Loop) -> None:
    platform = queued_platform
    dev = _device(loop, platform, "NH-001", queue_mode=True)
    dev.on_write = lambda path, value: dev.set((3416, 0, 3), value)  # the lamp follows its command
    loop.run(dev.register())
    wait_until(lambda: platform.pole("NH-001")["online"], 20, "NH-001 online")
    wait_until(lambda: platform.pole("NH-001")["power_w"] == 84, 20, "NH-001's first reading")
    loop.run(dev.update())  # anything the schedule sent meanwhile is delivered; then it sleeps
    time.sleep(1.0)
    # forced: this road runs on the wall clock, and after dusk its segment's floor would raise
    # the level (the floor has tests of its own; this one follows the command to the device)
    r = platform.post("/api/v1/poles/NH-001/dim", json={"level": 35, "force": True})
    assert r.status_code == 202, r.text
    cmd_id = r.json()["command_ids"][0]
    time.sleep(1.0)
    assert _status(platform, cmd_id, "NH-001") == "pending" and dev.values[(3416, 0, 1)] != 35
    loop.run(dev.update())  # it wakes: the held write goes out
    wait_until(lambda: _status(platform, cmd_id, "NH-001") == "acked", 20, "the ack after waking")
    assert dev.values[(3416, 0, 1)] == 35
    loop.run(dev.stop())


def test_bad_values_are_counted_and_nothing_else_is_disturbed(queued_platform: Platform, loop: Loop) -> None:
    platform = queued_platform
    gw = platform.live.gateway
    dev = _device(loop, platform, "NH-003")
    loop.run(dev.register())
    wait_until(lambda: platform.pole("NH-003")["online"], 20, "NH-003 online")
    before = gw.metrics.rejected.get("out_of_range", 0)
    loop.call(dev.set, (3418, 0, 1), 9999.0)  # no supply is at 9999 V
    wait_until(lambda: gw.metrics.rejected.get("out_of_range", 0) > before, 20, "the out-of-range reading counted")
    # an MQTT pole beside it is stored as ever
    pub = Publisher(platform.broker.port)
    try:
        ts = gw.clock.now_or_wall("nanhuan-1")
        body = {"ts": ts, "seq": 1, "dim": 70.0, "power_w": 84.0, "voltage_v": 229.5}
        pub.client.publish(pole_topic("nanhuan-1", "NH-010", "telemetry"), orjson.dumps(body), qos=1)
        wait_until(lambda: platform.pole("NH-010")["online"], 20, "the MQTT pole online")
    finally:
        pub.client.loop_stop()
        pub.client.disconnect()
    loop.call(dev.set, (3418, 0, 1), 231.0)
    wait_until(lambda: getattr(platform.live.twin("nanhuan-1", "NH-003"), "voltage_v", None) == 231.0, 20,
               "NH-003 reporting again")
    assert platform.pole("NH-003")["online"]
    loop.run(dev.stop())


def test_the_controllers_failure_flags_raise_their_alerts(queued_platform: Platform, loop: Loop) -> None:
    """/3416/0/10 (day burner) and /3416/0/11 (cycling failure) as /5 and /7 do: the alert at once."""
    platform = queued_platform
    dev = _device(loop, platform, "NH-002")
    loop.run(dev.register())
    wait_until(lambda: platform.pole("NH-002")["online"], 20, "NH-002 online")
    assert not _fault(platform, "NH-002", "day_burning") and not _fault(platform, "NH-002", "cycling")
    loop.call(dev.set, (3416, 0, 10), True)
    wait_until(lambda: _fault(platform, "NH-002", "day_burning"), 30, "day_burning at NH-002")
    loop.call(dev.set, (3416, 0, 11), True)
    wait_until(lambda: _fault(platform, "NH-002", "cycling"), 30, "cycling at NH-002")
    assert platform.adapter.counts["unknown_resource"] == 0
    loop.run(dev.stop())
