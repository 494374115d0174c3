"""An LwM2M pole seen through the API process of ``streetlight serve``.

Its messages never reach the broker's device topics: the core's LwM2M server hands them to its
gateway, which mirrors them for the API process's read model. Through the API process the pole is
online with its readings, and an operator's dim reaches it and is acked.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from api.auth import TokenStore
from api.store import Store
from ops.servers import InfluxServer, MosquittoServer, free_port
from simulators.lwm2m_device import STARTED, SimLwm2mDevice
from streetlight.net import LOOPBACK, free_udp_port
from streetlight.registry import road_to_mapping

from ..lwm2m.conftest import ENDPOINTS, Loop, lwm2m_road
from ..waiting import wait_until

pytestmark = pytest.mark.servers
POLE = "NH-005"


def test_an_lwm2m_pole_is_online_and_dimmed_through_the_api_process(
        tmp_path: Path, mosquitto_factory: Callable[..., MosquittoServer], influxdb: InfluxServer) -> None:
    mosquitto = mosquitto_factory()  # its own broker: other tests' retained statuses stay out
    registry = tmp_path / "road.yaml"
    registry.write_text(yaml.safe_dump(road_to_mapping(lwm2m_road([POLE])), allow_unicode=True))
    var, port, coap = tmp_path / "var", free_port(), free_udp_port()
    env = {**os.environ, "STREETLIGHT_MQTT_URL": mosquitto.url, "STREETLIGHT_INFLUX_URL": influxdb.url,
           "STREETLIGHT_INFLUX_DB": f"split_lwm2m_{coap}", "STREETLIGHT_DATA_DIR": str(var),
           "STREETLIGHT_API_PORT": str(port), "STREETLIGHT_LOG_LEVEL": "WARNING", "STREETLIGHT_ROAD_CLOCK": "wall",
           "STREETLIGHT_LWM2M_ENABLED": "true", "STREETLIGHT_LWM2M_PORT": str(coap)}
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "streetlight", "serve", "--road", str(registry)], env=env,
                            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    loop = Loop()
    dev = SimLwm2mDevice(ENDPOINTS[POLE], (LOOPBACK, coap))
    dev.values.update(STARTED)  # a lamp that is on and measured
    dev.on_write = lambda path, value: dev.set((3416, 0, 3), value)  # the lamp follows its command
    stack = contextlib.ExitStack()
    try:
        store = Store(var / "api.sqlite3")
        token = TokenStore(store).create("admin", "split-lwm2m-test")[0]
        store.close()
        api = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{port}",
                                               headers={"Authorization": f"Bearer {token}"}, timeout=10))

        def ready() -> bool:
            try:
                return api.get("/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        # ready: the API's read model is subscribed and the core answers on its control channel,
        # which it opens after its LwM2M server
        wait_until(ready, 60, "the API process ready")
        loop.run(dev.start(free_udp_port()))
        loop.run(dev.register())

        def pole() -> dict[str, object]:
            return dict(api.get(f"/api/v1/poles/{POLE}").json())

        seen = wait_until(lambda: (p := pole())["online"] and p.get("power_w") == STARTED[(3418, 0, 4)] and p, 20,
                          f"{POLE} online with its readings through the API process")
        # its level is whatever the controller's schedule has commanded meanwhile (the device follows it)
        assert seen["level"] is not None and seen["last_seen_ms"] is not None
        assert not dict(api.get("/api/v1/poles/NH-006").json())["online"]  # an MQTT pole that never spoke

        # forced: this road runs on the wall clock, and after dusk its segment's floor would raise
        # the level (the floor has tests of its own; this one follows the command to the device)
        r = api.post(f"/api/v1/poles/{POLE}/dim", json={"level": 35, "force": True})
        assert r.status_code == 202, r.text
        cmd_id = r.json()["command_ids"][0]
        done = wait_until(lambda: (c := api.get(f"/api/v1/commands/{cmd_id}").json())["poles"][POLE]["status"]
                          == "acked" and c, 20, f"{POLE}'s ack of the dim, through the API process")
        assert dev.values[(3416, 0, 1)] == 35 and done["poles"][POLE]["dim"] == 35, done
        wait_until(lambda: pole()["level"] == 35, 20, f"{POLE}'s reading at 35 % through the API process")
    finally:
        stack.close()
        loop.run(dev.stop())
        loop.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait(60)
        log.close()
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()[-3000:]
