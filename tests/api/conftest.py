"""Fixtures of the API tests: one suite, two platforms.

``platform`` is the road behind the API, parametrized: ``memory`` (``api.memory_platform``, one
fresh road per test) and ``live`` (real Mosquitto and InfluxDB, the gateway, the controller and a
simulated night on the reference road, started once per session). The live API is served as
``streetlight serve`` serves it: its port is the API side of the split
(``runtime.api_platform.SplitPlatform``: its own read model from the broker, the state database,
and the controller's methods over the control channel), beside the gateway and controller
(``runtime.live_platform.LivePlatform`` behind ``runtime.control_channel.ControlChannel``).
Every test that takes ``api`` runs on both; the few that exercise the in-memory road's own knobs
take ``memory_platform``.
``inject_fault`` opens a fault the way each platform does: the in-memory road makes one up, the
live road's simulated pole really fails and the controller finds it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI

from api.app import ApiOptions, create_app
from api.auth import ROLES
from api.memory_platform import MemoryPlatform
from api.platform import PlatformPort
from api.serve import served
from ops.servers import InfluxServer, MosquittoServer, free_port
from runtime.api_platform import SplitPlatform
from runtime.control_channel import ControlChannel
from runtime.live_platform import LivePlatform
from simulators.faults import FAULT_TYPES
from simulators.runner import Simulation
from simulators.scenario import load_scenario
from streetlight.registry import Road, load_road
from streetlight.settings import Settings

from ..waiting import wait_until  # noqa: F401  (the tests import it from here too)

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SIM_FAULT = {alert: sim for sim, (what, alert) in FAULT_TYPES.items() if what == "pole" and alert}
PLATFORMS = ("memory", "live")
# a night on the reference road, long enough for a session; no scenario faults: tests start their own
LIVE_SCENARIO = {
    "name": "api-contract",
    "description": "A night on the reference road for the API suite on the live platform.",
    "road": "nanhuan-1",
    "start": "2026-11-24 20:00",
    "duration": "9h",
    "speed": 20,
    "seed": 11,
    "report_interval_s": 10,
    "faults": [],
    "expected": [],
}




@dataclass
class LiveStack:
    platform: SplitPlatform  # what the API is given
    core: LivePlatform  # the gateway and the controller
    sim: Simulation
    settings: Settings
    injected: set[str] = field(default_factory=set)

    def inject_fault(self, road: str, pole: str, type: str = "lamp_failure", severity: str = "major") -> str:
        """Fail a simulated pole and wait for the controller to open its fault (of alert ``type``).
        The controller rates a fault by its type (controller/data/faults.yaml): asked for a critical
        one, the pole leaks current. A pole fails once a session: asked again, the next healthy pole
        fails instead."""
        if severity == "critical" and type == "lamp_failure":  # asked for a critical one, not a kind
            type = "leakage"
        r = self.platform.roads[road]
        if pole in self.injected:
            pole = next(p.id for p in r.poles if p.id not in self.injected and p.index > r.pole(pole).index)
        self.injected.add(pole)
        self.sim.inject(SIM_FAULT[type], pole)

        def opened() -> str | None:
            return next((f.fault_id for f in self.platform.faults(road, state="open")
                         if f.pole == pole and f.type == type), None)

        return str(wait_until(opened, 60, f"the controller to open a {type} fault on {pole}"))


def _run(sim: Simulation, stop: threading.Event) -> None:
    try:
        while not stop.is_set() and sim.step():
            pass
    finally:
        sim.close()


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    tmp = tmp_path_factory.mktemp("live-api")
    mq = MosquittoServer(name="mosquitto", port=free_port(), data_dir=tmp / "mosquitto").start()
    db = InfluxServer(name="influxd", port=free_port(), data_dir=tmp / "influxd").start()
    settings = Settings(mqtt_url=mq.url, influx_url=db.url, influx_db="api", data_dir=tmp / "state")
    (tmp / "scenario.yaml").write_text(yaml.safe_dump(LIVE_SCENARIO))
    scenario = load_scenario(str(tmp / "scenario.yaml"))
    core = LivePlatform(settings, [scenario.road])
    core.start()
    channel = ControlChannel(core, settings.data_dir).start()
    platform = SplitPlatform(settings, [scenario.road])
    platform.start()
    stop = threading.Event()
    sim = Simulation(scenario, mqtt_url=mq.url, speed=scenario.speed, stop=stop).start()
    runner = threading.Thread(target=_run, args=(sim, stop), name="api-contract-road", daemon=True)
    runner.start()
    try:
        wait_until(lambda: platform.ready()["road_time"], 60, "the road's time (two thirds of its poles reporting)")
        wait_until(lambda: all(t.online for t in platform.twins(scenario.road.id)), 60, "every pole online")
        yield LiveStack(platform, core, sim, settings)
    finally:
        stop.set()
        runner.join(30)
        platform.stop()
        channel.stop()
        core.stop()
        mq.stop()
        db.stop()


@pytest.fixture(scope="session")
def road() -> Road:
    return load_road("nanhuan-1")


@pytest.fixture
def memory_platform(road: Road) -> Iterator[MemoryPlatform]:
    p = MemoryPlatform(road, ack_delay_s=0.01, expire_s=0.5)
    yield p
    p.close()


@pytest.fixture(params=PLATFORMS)
def platform(request: pytest.FixtureRequest) -> PlatformPort:
    if request.param == "live":
        return request.getfixturevalue("live_stack").platform  # type: ignore[no-any-return]
    return request.getfixturevalue("memory_platform")  # type: ignore[no-any-return]


@pytest.fixture
def inject_fault(platform: Any, request: pytest.FixtureRequest) -> Callable[..., str]:
    """Open a lamp failure on the road; returns its id. The severity is the in-memory road's to
    choose; on the live road the controller decides it."""
    if isinstance(platform, SplitPlatform):
        stack: LiveStack = request.getfixturevalue("live_stack")

        def inject_live(road: str, pole: str, type: str = "lamp_failure", severity: str = "major") -> str:
            return stack.inject_fault(road, pole, type, severity)

        return inject_live

    def inject(road: str, pole: str, type: str = "lamp_failure", severity: str = "major") -> str:
        return str(platform.inject_fault(road, type=type, pole=pole, severity=severity).fault_id)

    return inject


@pytest.fixture
def api_options() -> ApiOptions:
    return ApiOptions(commands_per_minute=6000, command_burst=1000, webhook_attempts=3, webhook_backoff_s=0.05)


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    # the webhook receivers of these tests listen on loopback, which a site must allow on purpose;
    # the route × role matrix makes more failed authentications than a real client would
    return Settings(data_dir=tmp_path, webhook_allow=["127.0.0.1"], auth_failures_per_minute=100_000)


@pytest.fixture
def app(platform: PlatformPort, tmp_path: Path, api_options: ApiOptions, api_settings: Settings) -> FastAPI:
    return create_app(platform, api_settings, tmp_path / "api.sqlite3", api_options)


@dataclass
class Api:
    client: httpx.Client
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}

    def get(self, path: str, role: str | None = "viewer", **kw: Any) -> httpx.Response:
        return self.client.get(path, headers=self.auth(role), **kw)

    def post(self, path: str, role: str | None = "operator", **kw: Any) -> httpx.Response:
        return self.client.post(path, headers=self.auth(role), **kw)

    def wait_pole(self, pole: str, cond: Callable[[dict[str, Any]], bool], what: str,
                  timeout_s: float = 20.0) -> dict[str, Any]:
        """The pole's answer once ``cond`` holds (a live pole reports its new level with its next reading)."""
        def check() -> dict[str, Any] | None:
            p: dict[str, Any] = self.get(f"/api/v1/poles/{pole}").json()
            return p if cond(p) else None

        return wait_until(check, timeout_s, f"{pole}: {what}")  # type: ignore[no-any-return]

    def wait_command(self, cmd_id: str, timeout_s: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            body = self.get(f"/api/v1/commands/{cmd_id}").json()
            if body["done"] or time.monotonic() > deadline:
                return body  # type: ignore[no-any-return]
            time.sleep(0.02)


@pytest.fixture
def api(app: FastAPI) -> Iterator[Api]:
    with served(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        tokens = {role: app.state.ctx.tokens.create(role, f"test-{role}")[0] for role in ROLES}
        yield Api(client, tokens)
