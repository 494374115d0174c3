"""The whole platform, live: real Mosquitto and InfluxDB, gateway, controller, API, simulated road.

One stack per test module (starting it costs a few seconds); the simulated road runs in a
background thread at a speed where a command is answered within about a second of wall time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from api.app import ApiOptions, create_app
from api.auth import ROLES
from api.serve import served
from ops.servers import InfluxServer, MosquittoServer, free_port
from runtime.live_platform import LivePlatform
from simulators.runner import SimulationThread
from simulators.scenario import load_scenario
from streetlight.settings import Settings

from ..waiting import wait_until  # noqa: F401  (the tests import it from here too)

SCENARIO = {
    "name": "live-api",
    "description": "An evening on the reference road with one lamp failing early, for the live API tests.",
    "road": "nanhuan-1",
    "start": "2026-11-24 01:00",
    "duration": "6h",
    "speed": 20,
    "seed": 7,
    "report_interval_s": 10,
    "faults": [{"type": "lamp_failure", "pole": "NH-020", "at": "+3m"}],
    "expected": [{"type": "lamp_failure", "pole": "NH-020", "within_reports": 3}],
}




@dataclass
class LiveApi:
    client: httpx.Client
    tokens: dict[str, str]
    platform: LivePlatform
    sim: SimulationThread

    def headers(self, role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}

    def get(self, path: str, role: str | None = "viewer", **kw: Any) -> httpx.Response:
        return self.client.get(path, headers=self.headers(role), **kw)

    def post(self, path: str, role: str | None = "operator", **kw: Any) -> httpx.Response:
        return self.client.post(path, headers=self.headers(role), **kw)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    tmp = tmp_path_factory.mktemp("live")
    mq = MosquittoServer(name="mosquitto", port=free_port(), data_dir=tmp / "mosquitto").start()
    db = InfluxServer(name="influxd", port=free_port(), data_dir=tmp / "influxd").start()
    settings = Settings(mqtt_url=mq.url, influx_url=db.url, influx_db="live", data_dir=tmp / "state")
    scenario_file = tmp / "live-api.yaml"
    scenario_file.write_text(yaml.safe_dump(SCENARIO))
    scenario = load_scenario(str(scenario_file))
    platform = LivePlatform(settings, [scenario.road])
    platform.start()
    sim = SimulationThread(scenario, mqtt_url=mq.url, speed=scenario.speed).start()
    wait_until(lambda: platform.ready()["road_time"], 60, "the road's time (two thirds of its poles reporting)")
    app = create_app(platform, settings, tmp / "api.sqlite3",
                     ApiOptions(commands_per_minute=6000, command_burst=1000, deliver_webhooks=False))
    try:
        with served(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            tokens = {role: app.state.ctx.tokens.create(role, f"live-{role}")[0] for role in ROLES}
            yield LiveApi(client, tokens, platform, sim)
    finally:
        sim.stop_event.set()
        sim.join(30)
        platform.stop()
        mq.stop()
        db.stop()
