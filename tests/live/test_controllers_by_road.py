"""Controllers that own different roads, behind one API process.

Two roads, each with a controller process of its own (``serve --only controller --road …``), one
gateway storing both, one API process serving both: the API sends each road's calls to the
controller that holds it (``runtime.control_client.ControlRouter``), so an operator's dim on either
road is sent by that road's controller and acked by its pole.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from api.auth import TokenStore
from api.store import Store
from benchmarks.failover import CommandWatch, sender
from ops.servers import InfluxServer, MosquittoServer, PostgresServer, free_port
from simulators.runner import SimulationThread
from simulators.scenario import load_scenario

from ..serving import stop_all
from .conftest import wait_until

pytestmark = pytest.mark.servers
ROADS = {"east": "synthetic:8:east", "west": "synthetic:8:west"}
REPORT_S = 4


def test_each_road_is_commanded_by_its_own_controller_through_one_api(
        tmp_path: Path, postgres: PostgresServer) -> None:
    mq = MosquittoServer(name="mosquitto", port=free_port(), data_dir=tmp_path / "mosquitto").start()
    influx = InfluxServer(name="influxd", port=free_port(), data_dir=tmp_path / "influxd").start()
    state_url = postgres.create_database(f"byroad{os.getpid()}")
    port = free_port()
    env = {**os.environ, "STREETLIGHT_MQTT_URL": mq.url, "STREETLIGHT_INFLUX_URL": influx.url,
           "STREETLIGHT_INFLUX_DB": "byroad", "STREETLIGHT_DATA_DIR": str(tmp_path / "var"),
           "STREETLIGHT_STATE_URL": state_url, "STREETLIGHT_LOG_LEVEL": "WARNING"}
    procs: list[subprocess.Popen[bytes]] = []
    sims: list[SimulationThread] = []

    def serve(name: str, *args: str) -> None:
        log = (tmp_path / f"{name}.log").open("wb")
        procs.append(subprocess.Popen([sys.executable, "-m", "streetlight", "serve", "--client-id", name,
                                       "--report-interval-s", str(REPORT_S), *args], env=env, cwd=tmp_path,
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    both = [a for ref in ROADS.values() for a in ("--road", ref)]
    watch = CommandWatch(mq.port)
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        serve("gw", "--only", "gateway", "--shared-group", "gateways", *both)
        for road, ref in ROADS.items():
            serve(f"ctl-{road}", "--only", "controller", "--road", ref)
        serve("api", "--only", "api", "--port", str(port), *both)
        for road, ref in ROADS.items():
            spec = {"name": road, "description": "A quiet night.", "road": ref, "start": "2026-11-24 01:00",
                    "duration": "1h", "speed": 1, "seed": len(sims) + 1, "report_interval_s": REPORT_S,
                    "faults": [], "expected": []}
            (tmp_path / f"{road}.yaml").write_text(yaml.safe_dump(spec))
            sims.append(SimulationThread(load_scenario(str(tmp_path / f"{road}.yaml")), mqtt_url=mq.url,
                                         speed=1).start())
        store = Store(state_url)
        api.headers["Authorization"] = f"Bearer {TokenStore(store).create('operator', 'by-road')[0]}"
        store.close()

        def ready() -> bool:
            try:
                return api.get("/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 60, "the API process ready (both controllers know their road's time)")
        for road in ROADS:
            def dim(road: str = road) -> list[str] | None:
                r = api.post(f"/api/v1/roads/{road}/dim",
                             json={"level": 45, "ramp_ms": 0, "expires_in_s": 600, "confirm": True})
                return r.json()["command_ids"] if r.status_code == 202 else None

            ids: list[str] = wait_until(dim, 20, f"the API to take a dim of {road}")
            assert len(ids) == 8
            done = wait_until(lambda ids=ids: (b := api.get("/api/v1/commands", params={"ids": ",".join(ids)})
                                               .json())["done"] and b, 20, f"the acks of {road}'s dim")
            assert done["summary"]["acked"] == 8, done
        # every command of a road came from one process, and the two roads' from two different ones
        senders = {road: {sender(c) for _, pole, c in watch.snapshot()[0] if pole.startswith(f"{road}/")}
                   for road in ROADS}
        assert all(len(s) == 1 for s in senders.values()), senders
        assert senders["east"] != senders["west"], senders
    finally:
        for s in sims:
            s.stop(30)
        api.close()
        watch.close()
        stop_all(procs)
        mq.stop()
        influx.stop()
