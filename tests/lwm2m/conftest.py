"""LwM2M tests: the platform (gateway, controller, API) with its LwM2M server on a free UDP port,
real Mosquitto and InfluxDB, and devices that are either the independent ``lwm2m-node-lib``
command-line client (installed by scripts/bootstrap.sh) or this project's own simulated ones."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from api.app import ApiOptions, create_app
from api.serve import served
from lwm2m.adapter import Lwm2mAdapter
from ops.servers import InfluxServer, MosquittoServer, free_port
from runtime.live_platform import LivePlatform
from streetlight.net import free_udp_port
from streetlight.registry import Road, load_road, road_from_mapping, road_to_mapping
from streetlight.settings import Settings

REPO = Path(__file__).resolve().parents[2]
NODE_LIB = Path(os.environ.get("STREETLIGHT_LWM2M_NODE_LIB",
                               REPO / ".venv" / "npm" / "node_modules" / "lwm2m-node-lib"))
ENDPOINTS = {f"NH-{i:03d}": f"urn:imei:86{i:013d}" for i in range(1, 94)}
# the client's own command-line program, with only its configured lifetime and log level set
T = TypeVar("T")
RUN_CLIENT = ("const dir = process.argv[1]; const c = require(dir + '/config');"
              "c.client.lifetime = process.env.LWM2M_LIFETIME || c.client.lifetime; c.client.logLevel = 'FATAL';"
              "require(dir + '/bin/iotagent-lwm2m-client.js');")


def lwm2m_road(poles: list[str] | None = None) -> Road:
    """The reference road with an LwM2M lamp controller on ``poles`` (all by default)."""
    data = road_to_mapping(load_road("nanhuan-1"))
    for p in data["poles"]:
        if poles is None or p["id"] in poles:
            p["lwm2m_endpoint"] = ENDPOINTS[p["id"]]
    return road_from_mapping(data, "nanhuan-1 with LwM2M controllers")


class NodeClient:
    """``iotagent-lwm2m-client`` of lwm2m-node-lib, driven on its standard input."""

    def __init__(self, lifetime_s: int | None = None) -> None:
        if not (NODE_LIB / "bin" / "iotagent-lwm2m-client.js").exists():
            raise AssertionError(f"lwm2m-node-lib is not installed at {NODE_LIB}: run `make install` "
                                 "(scripts/bootstrap.sh installs it with npm)")
        env = {**os.environ, "LWM2M_LIFETIME": str(lifetime_s or "")}
        self.proc = subprocess.Popen(["node", "-e", RUN_CLIENT, str(NODE_LIB)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True, bufsize=1)
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def expect(self, pattern: str, timeout_s: float = 20.0) -> re.Match[str]:
        """The next output line matching ``pattern`` (earlier lines are passed over)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"the client never printed {pattern!r}; its output:\n{''.join(self.output[-40:])}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            m = rx.search(line)
            if m:
                return m

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)


class Loop:
    """An asyncio loop in a thread, for the simulated devices."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 20.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def call(self, fn: Any, *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@dataclass
class Platform:
    live: LivePlatform
    adapter: Lwm2mAdapter
    settings: Settings
    road: Road
    client: httpx.Client
    token: str
    port: int
    broker: MosquittoServer

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.token}"}, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.post(path, headers={"Authorization": f"Bearer {self.token}"}, **kw)

    def pole(self, pole: str) -> dict[str, Any]:
        r = self.get(f"/api/v1/poles/{pole}")
        assert r.status_code == 200, r.text
        return dict(r.json())


def start_platform(influxdb: InfluxServer, data: Path, road: Road, **lwm2m: Any) -> Iterator[Platform]:
    """A platform with the LwM2M server, on a broker of its own: poles of the same road that other
    tests simulated on a shared broker leave their retained ``online`` there, which would put poles
    online here that never spoke."""
    mosquitto = MosquittoServer(name="mosquitto", port=free_port(), data_dir=data.parent / "mosquitto").start()
    port = free_udp_port()
    settings = Settings(mqtt_url=mosquitto.url, influx_url=influxdb.url, influx_db=f"lwm2m_{port}",
                        data_dir=data, road_clock="wall", lwm2m_enabled=True, lwm2m_port=port,
                        **lwm2m, _env_file=None)  # type: ignore[call-arg]
    live = LivePlatform(settings, [road])
    live.start()
    adapter = Lwm2mAdapter(live.gateway, settings, [road])
    adapter.start()
    app = create_app(live, settings, data / "api.sqlite3",
                     ApiOptions(commands_per_minute=6000, command_burst=1000, deliver_webhooks=False))
    try:
        with served(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            token = app.state.ctx.tokens.create("admin", "lwm2m-test")[0]
            yield Platform(live, adapter, settings, road, client, token, port, mosquitto)
    finally:
        adapter.stop()
        live.stop()
        mosquitto.stop()


@pytest.fixture(scope="module")
def platform(influxdb: InfluxServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One platform for a module's tests (each test uses poles of its own)."""
    yield from start_platform(influxdb, tmp_path_factory.mktemp("lwm2m") / "state",
                              lwm2m_road(["NH-001", "NH-002", "NH-003", "NH-004"]))


@pytest.fixture
def node_client() -> Iterator[Callable[..., NodeClient]]:
    made: list[NodeClient] = []

    def make(lifetime_s: int | None = None) -> NodeClient:
        c = NodeClient(lifetime_s)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
