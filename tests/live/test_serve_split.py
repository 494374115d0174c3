"""``streetlight serve`` as processes by role: the API in a process of its own, supervised.

Killed, the API process takes neither ingest nor control with it, and the ``serve`` process
starts it again; Ctrl-C then leaves nothing running.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from api.auth import TokenStore
from api.store import Store
from ops.servers import InfluxServer, MosquittoServer, free_port
from runtime.control_channel import channel_files
from runtime.control_client import ControlClient
from simulators.runner import SimulationThread
from simulators.scenario import load_scenario
from telemetry import InfluxQL, TelemetryQueries

from .conftest import SCENARIO, wait_until

pytestmark = pytest.mark.servers
ROAD = "nanhuan-1"


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


class _Output:
    """The serve process's output, read as it comes."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.text = ""
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.text += line.decode(errors="replace")

    def pids(self, name: str) -> list[int]:
        return [int(p) for p in re.findall(rf"started the {name} process \([^)]*\), pid (\d+)", self.text)]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[MosquittoServer, InfluxServer]]:
    mq = MosquittoServer(name="mosquitto", port=free_port(), data_dir=tmp_path / "mosquitto").start()
    db = InfluxServer(name="influxd", port=free_port(), data_dir=tmp_path / "influxd").start()
    try:
        yield mq, db
    finally:
        mq.stop()
        db.stop()


def _readings(db: InfluxServer) -> int:
    return TelemetryQueries(InfluxQL(db.url, "split")).count_readings(ROAD)["telemetry"]


def test_the_api_process_dies_and_comes_back_while_ingest_and_control_go_on(
        tmp_path: Path, servers: tuple[MosquittoServer, InfluxServer]) -> None:
    mq, db = servers
    var = tmp_path / "var"
    port = free_port()
    env = {**os.environ, "STREETLIGHT_MQTT_URL": mq.url, "STREETLIGHT_INFLUX_URL": db.url,
           "STREETLIGHT_INFLUX_DB": "split", "STREETLIGHT_DATA_DIR": str(var), "STREETLIGHT_API_PORT": str(port),
           "STREETLIGHT_LOG_LEVEL": "WARNING"}
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(SCENARIO))
    scenario = load_scenario(str(tmp_path / "scenario.yaml"))
    proc = subprocess.Popen([sys.executable, "-m", "streetlight", "serve"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    out = _Output(proc)
    sim = SimulationThread(scenario, mqtt_url=mq.url, speed=scenario.speed).start()
    children: list[int] = []
    try:
        store = Store(var / "api.sqlite3")
        token = TokenStore(store).create("operator", "split-test")[0]
        store.close()
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"},
                           timeout=10)

        def all_online() -> bool:
            try:
                poles = api.get("/api/v1/poles").json()["poles"]
            except (httpx.HTTPError, ValueError, KeyError):
                return False
            return len(poles) == 93 and all(p["online"] for p in poles)

        wait_until(all_online, 90, "every pole online through the API process")
        wait_until(lambda: api.get("/readyz").status_code == 200, 60, "the API ready (the controller's road time)")
        [core], [api_pid] = out.pids("core"), out.pids("api")
        children = [core, api_pid]
        assert core != api_pid != proc.pid

        os.kill(api_pid, signal.SIGKILL)
        wait_until(lambda: _gone(api_pid), 10, "the API process gone")
        # ingest and control go on without it: readings keep arriving in InfluxDB, and the
        # controller process takes an operator's dim and sends it
        before = _readings(db)
        [file] = channel_files(var)  # the one core process's channel
        channel = ControlClient(file)
        sent = channel.call("dim", road=ROAD, poles=["NH-030"], level=40.0, ramp_ms=0, expires_ms=None,
                            actor="split-test", force=True)
        assert sent and sent[0]["pole"] == "NH-030" and sent[0]["level"] == 40.0
        wait_until(lambda: _readings(db) > before + 93, 30, "readings stored while the API process is down")
        wait_until(lambda: channel.call("command", cmd_id=sent[0]["cmd_id"])["status"]["status"] == "acked", 30,
                   "the pole's ack of a dim sent while the API process is down")
        assert not _gone(core)

        # the serve process starts the API again; it serves the live road and the dim's result
        [_, api_again] = wait_until(lambda: len(out.pids("api")) == 2 and out.pids("api"), 30, "the API restarted")
        children.append(api_again)
        wait_until(all_online, 60, "every pole online through the restarted API process")
        wait_until(lambda: (p := api.get("/api/v1/poles/NH-030").json())["reason"] == "override"
                   and abs(p["level"] - 40.0) < 0.5, 30, "NH-030 at its override's 40 % through the restarted API")
        assert api.get(f"/api/v1/commands/{sent[0]['cmd_id']}").json()["done"]
        api.close()
    finally:
        sim.stop_event.set()
        sim.join(30)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait(60)
    assert proc.returncode == 0, out.text[-3000:]
    assert children and all(wait_until(lambda p=p: _gone(p), 20, f"pid {p} gone") for p in children)
