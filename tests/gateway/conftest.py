from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ops.servers import InfluxServer, MosquittoServer
from streetlight.registry import Road, load_road
from streetlight.settings import Settings


@pytest.fixture(scope="session")
def road() -> Road:
    return load_road("nanhuan-1")


def make_settings(broker: MosquittoServer, influx: InfluxServer, data_dir: Path) -> Settings:
    return Settings(mqtt_url=broker.url, influx_url=influx.url, influx_db=f"t_{uuid.uuid4().hex[:10]}",
                    data_dir=data_dir, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def settings(mosquitto: MosquittoServer, influxdb: InfluxServer, tmp_path: Path) -> Settings:
    return make_settings(mosquitto, influxdb, tmp_path / "data")
