"""Pytest fixtures for engineers' test suites: real Mosquitto and InfluxDB on loopback.

Loaded automatically when the ``streetlight`` package is installed (entry point ``pytest11``).

* ``mosquitto`` / ``influxdb``: one server each for the whole test session (use a topic prefix
  or a database name of your own per test).
* ``mosquitto_factory`` / ``influx_factory``: fresh servers for a test that restarts or kills
  them; stopped at the end of the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ops.servers import InfluxServer, MosquittoServer, free_port


def _mosquitto(path: Path, **kw: object) -> MosquittoServer:
    return MosquittoServer(name="mosquitto", port=free_port(), data_dir=path, **kw).start()  # type: ignore[arg-type]


def _influx(path: Path) -> InfluxServer:
    return InfluxServer(name="influxd", port=free_port(), data_dir=path).start()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    server = _mosquitto(tmp_path_factory.mktemp("mosquitto"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    server = _influx(tmp_path_factory.mktemp("influxd"))
    yield server
    server.stop()


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., MosquittoServer]]:
    started: list[MosquittoServer] = []

    def make(**kw: object) -> MosquittoServer:
        server = _mosquitto(tmp_path / f"mosquitto-{len(started)}", **kw)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def influx_factory(tmp_path: Path) -> Iterator[Callable[[], InfluxServer]]:
    started: list[InfluxServer] = []

    def make() -> InfluxServer:
        server = _influx(tmp_path / f"influxd-{len(started)}")
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


# --- scenario fixtures ------------------------------------------------------------------------
# Heavy imports stay inside the fixtures: this plugin is loaded by every test session.


@pytest.fixture
def simulate(mosquitto: MosquittoServer) -> Callable[..., object]:
    """Run a scenario (name, file or ``Scenario``) against the platform; returns a ``SimulationReport``.

    The platform under test must already listen on the same broker (``mqtt_url``, default: the
    session ``mosquitto``). Alerts the platform publishes on ``sl/v1/{road}/alerts`` during the run,
    and up to ``settle_s`` after it, are collected; ``report.unmet()`` lists the scenario's
    expectations the platform missed.
    """
    from simulators.expect import AlertCollector, SimulationReport
    from simulators.runner import run_simulation
    from simulators.scenario import Scenario, load_scenario

    def run(scenario: object, *, mqtt_url: str | None = None, speed: float | None = None,
            settle_s: float = 2.0, **kwargs: object) -> SimulationReport:
        sc = scenario if isinstance(scenario, Scenario) else load_scenario(str(scenario))
        url = mqtt_url or mosquitto.url
        collector = AlertCollector(url, sc.road.id)
        try:
            stats = run_simulation(sc, mqtt_url=url, speed=speed, **kwargs)  # type: ignore[arg-type]
            _settle(collector, sc, settle_s)
        finally:
            collector.close()
        return SimulationReport(sc, stats, list(collector.alerts), list(collector.invalid))

    return run


@pytest.fixture
def replay_recording(mosquitto: MosquittoServer) -> Callable[..., object]:
    """Replay a recording into the broker; returns the Alerts the platform published meanwhile."""
    from simulators.expect import AlertCollector
    from simulators.recording import read_recording
    from simulators.replay import replay

    def run(path: Path, *, road: str | None = None, mqtt_url: str | None = None, speed: float | None = None,
            settle_s: float = 2.0) -> list[object]:
        url = mqtt_url or mosquitto.url
        road_id = road or next(iter(read_recording(path))).topic.split("/")[2]
        collector = AlertCollector(url, road_id)
        try:
            replay(path, url, speed)
            _settle(collector, None, settle_s)
        finally:
            collector.close()
        return list(collector.alerts)

    return run


def _settle(collector: object, scenario: object, settle_s: float) -> None:
    """Give the platform ``settle_s`` to publish its last alerts, ending early once all are in."""
    import time

    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        alerts = collector.collect()  # type: ignore[attr-defined]
        expected = getattr(scenario, "expected", None)
        if expected and len({a.type for a in alerts}) >= len({e.type for e in expected}):
            break
        time.sleep(0.05)
