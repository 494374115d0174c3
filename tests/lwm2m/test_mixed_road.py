"""A mixed road: half the lamp controllers on LwM2M, half on MQTT, against the whole platform;
the scenario's faults are found at the right poles on both edges, with no false alarm."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from lwm2m.adapter import Lwm2mAdapter
from ops.servers import InfluxServer, MosquittoServer
from runtime.live_platform import LivePlatform
from runtime.outcome import compare
from runtime.scenario_check import AlertListener
from simulators.lwm2m_mode import MixedSimulation, with_lwm2m
from simulators.scenario import load_scenario
from streetlight.settings import Settings

from .conftest import free_udp_port, wait_until

pytestmark = [pytest.mark.servers, pytest.mark.slow]

SCENARIO = {
    "name": "mixed-lamp-failures",
    "description": "Lamps fail on an LwM2M pole and on an MQTT pole of a mixed road.",
    "road": "nanhuan-1",
    "start": "2026-11-23 18:00",
    "duration": "40m",
    "seed": 102,
    "report_interval_s": 10,
    "faults": [{"type": "lamp_failure", "pole": "NH-012", "at": "+10m"},
               {"type": "lamp_failure", "pole": "NH-057", "at": "+20m"}],
    "expected": [{"type": "lamp_failure", "pole": "NH-012", "within_reports": 3},
                 {"type": "lamp_failure", "pole": "NH-057", "within_reports": 3}],
}


def _caught_up(adapter: Lwm2mAdapter, t: int) -> bool:
    """Two thirds of the LwM2M poles' readings have reached road time ``t``."""
    return sum(ts >= t for ts in adapter.last_reading_ms.values()) * 3 >= 2 * len(adapter.registrations)


def test_a_mixed_road_passes_its_scenario(mosquitto_factory: Callable[..., MosquittoServer], influxdb: InfluxServer,
                                          tmp_path: Path) -> None:
    mosquitto = mosquitto_factory()  # its own broker: the poles' retained status stays out of other tests
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    scenario = with_lwm2m(load_scenario(str(path)), 0.5)
    road = scenario.road
    assert road.pole("NH-012").lwm2m_endpoint and not road.pole("NH-057").lwm2m_endpoint
    port = free_udp_port()
    settings = Settings(mqtt_url=mosquitto.url, influx_url=influxdb.url, influx_db=f"mixed_{uuid.uuid4().hex[:8]}",
                        data_dir=tmp_path / "state", lwm2m_enabled=True, lwm2m_port=port,
                        _env_file=None)  # type: ignore[call-arg]
    platform = LivePlatform(settings, [road], report_interval_s=scenario.report_interval_s)
    platform.start()
    adapter = Lwm2mAdapter(platform.gateway, settings, [road])
    adapter.start()
    listener = AlertListener(settings, road.id)
    sim = MixedSimulation(scenario, mqtt_url=mosquitto.url, speed=None, lwm2m_server=("127.0.0.1", port))
    try:
        wait_until(lambda: platform.gateway.connected, 10, "the gateway connected")
        sim.start()
        interval = scenario.report_interval_s * 1000
        while sim.step():
            target = sim.now_ms - 5 * interval  # as `streetlight scenario run --check` paces it, on both edges
            wait_until(lambda t=target: (platform.gateway.clock.now_ms() or 0) >= t, 10, "the platform keeping up")
            wait_until(lambda t=target: _caught_up(adapter, t), 30, "the LwM2M devices keeping up")
        wait_until(lambda: (platform.gateway.clock.now_ms() or 0) >= sim.now_ms, 10, "the last reports")
        time.sleep(1.0)
        alerts = listener.drain()
        outcome = compare(scenario.expected, alerts, scenario.report_interval_s)
        assert len(adapter.registrations) == 46
        assert adapter.notifications > 46 * 100
        assert outcome.passed, ([(r.expected, r.reported, r.delay_reports, r.note) for r in outcome.rows],
                                [(a["type"], a.get("pole"), a.get("evidence")) for a in outcome.false_alarms],
                                adapter.stats())
    finally:
        sim.close()
        listener.close()
        adapter.stop()
        platform.stop()
