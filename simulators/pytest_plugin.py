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

from streetlight.servers import InfluxServer, MosquittoServer, free_port


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
