"""Protocol 1.1 at the edge: port readings and cabinet reports stored in their own measurements,
twins carrying them, and every refusal against the registry counted with the rest kept."""

from __future__ import annotations

import uuid

import orjson
import pytest

from gateway.service import GatewayService
from streetlight.protocol import cabinet_topic, pole_topic
from streetlight.registry import Road
from streetlight.settings import Settings
from telemetry import InfluxQL, TelemetryQueries

from .helpers import T0, Publisher, wait_for

pytestmark = pytest.mark.servers


def _cabinet(ts: int, seq: int, feeders: dict) -> bytes:
    return orjson.dumps({"ts": ts, "seq": seq, "voltage_v": 229.8, "feeders": feeders})


def test_ports_and_cabinets_stored_and_twinned_bad_parts_counted(settings: Settings, road: Road) -> None:
    gw = GatewayService(settings, [road], client_id=f"gw-{uuid.uuid4().hex[:6]}")
    gw.start()
    pub = Publisher(settings.mqtt_port)
    try:
        wait_for(lambda: gw.connected, what="gateway connected")
        ports = {"cam-1": {"on": True, "power_w": 23.5, "link": "down"}, "cell-1": {"on": True, "power_w": 71.0},
                 "cam-7": {"on": True, "power_w": 20.0}}  # NH-001 has cam-1 and cell-1 only
        pub.telemetry(road.id, "NH-001", T0, 0, ports=ports)
        pub.telemetry(road.id, "NH-003", T0, 0, ports={"cam-1": {"on": True, "power_w": 20.0}})  # has no ports
        pub.telemetry(road.id, "NH-002", T0, 0)
        ok = {"C1-L1": {"breaker": "closed", "current_a": 12.4, "energy_wh": 1000.0},
              "C1-L2": {"breaker": "open", "current_a": 0.0, "energy_wh": 900.0}}
        pub.publish(cabinet_topic(road.id, "C1", "telemetry"), _cabinet(T0, 1, ok))
        wrong = {"C1-L1": {"breaker": "closed", "current_a": 12.0, "energy_wh": 990.0},  # went down
                 "C2-L1": {"breaker": "closed", "current_a": 3.0, "energy_wh": 5.0},  # not this cabinet's
                 "C1-L2": {"breaker": "closed", "current_a": 11.0, "energy_wh": 910.0}}
        pub.publish(cabinet_topic(road.id, "C1", "telemetry"), _cabinet(T0 + 10_000, 2, wrong))
        pub.publish(cabinet_topic(road.id, "C9", "telemetry"), _cabinet(T0, 1, ok))
        pub.publish(cabinet_topic(road.id, "C2", "status"), b"online", retain=True)
        pub.publish(pole_topic(road.id, "NH-001", "event"),
                    orjson.dumps({"ts": T0 + 1, "seq": 1, "type": "port_trip", "port": "cell-1", "current_a": 4.1}))
        pub.drain()
        wait_for(lambda: gw.metrics.messages_in >= 8 and gw.metrics.written >= 9, what="ingest")
        wait_for(lambda: gw.cabinets.get(road.id, "C2").online, what="cabinet status")

        rejected = gw.metrics.rejected
        assert rejected == {"unknown_port": 2, "energy_decreased": 1, "unknown_feeder": 1, "unknown_cabinet": 1}

        twin = gw.twins.get(road.id, "NH-001")
        assert twin is not None and sorted(twin.ports) == ["cam-1", "cell-1"] and twin.ports["cam-1"].link == "down"
        assert twin.tripped == {"cell-1"} and twin.last_telemetry.power_w == 84.0
        assert gw.twins.get(road.id, "NH-003").last_telemetry is not None  # the rest of its report kept
        cab = gw.cabinets.get(road.id, "C1")
        assert cab is not None and cab.online and cab.last.seq == 2
        assert cab.energy_wh == {"C1-L1": 1000.0, "C1-L2": 910.0}

        q = TelemetryQueries(InfluxQL(settings.influx_url, settings.influx_db))
        df = q.port_readings(road.id, "NH-001", T0 - 1, T0 + 60_000)
        assert sorted(df["port"]) == ["cam-1", "cell-1"]
        assert set(df["kind"]) == {"camera", "small_cell"}
        cam = df[df["port"] == "cam-1"].iloc[0]
        assert cam["power_w"] == 23.5 and bool(cam["on"]) and cam["link"] == "down"
        assert q.port_readings(road.id, "NH-003", T0 - 1, T0 + 60_000).empty
        feeders = q.cabinet_readings(road.id, "C1", T0 - 1, T0 + 60_000)
        rows = sorted(zip(feeders["feeder"], feeders["seq"], feeders["breaker"], strict=True))
        assert rows == [("C1-L1", 1, "closed"), ("C1-L2", 1, "open"), ("C1-L2", 2, "closed")]
    finally:
        pub.close()
        gw.stop()
