"""Ingest end to end: MQTT -> validation -> InfluxDB, exactly once, with the PUBACK after storage."""

from __future__ import annotations

import uuid

import pytest

from gateway.service import GatewayService
from streetlight.registry import Road
from streetlight.settings import Settings

from .helpers import T0, Publisher, stored, total_stored, wait_for

pytestmark = pytest.mark.servers


def test_93_poles_stored_once_with_redeliveries_dropped(settings: Settings, road: Road) -> None:
    gw = GatewayService(settings, [road], client_id=f"gw-{uuid.uuid4().hex[:6]}")
    seen: list[str] = []
    gw.add_listener(lambda inb: seen.append(inb.kind))
    gw.start()
    pub = Publisher(settings.mqtt_port)
    try:
        wait_for(lambda: gw.connected, what="gateway connected")
        for i in range(10):
            for p in road.poles:
                pub.telemetry(road.id, p.id, T0 + i * 10_000, i)
        # QoS 1 redeliveries: the same (pole, seq) again
        for p in road.poles[:10]:
            pub.telemetry(road.id, p.id, T0 + 30_000, 3)
        pub.drain()
        wait_for(lambda: gw.metrics.messages_in >= 940 and gw.metrics.written >= 930, what="ingest")
        rows = stored(settings.influx_url, settings.influx_db, road.id)
        assert len(rows) == 93
        assert all(v == (10, 10) for v in rows.values()), rows
        assert gw.metrics.duplicates == 10
        assert seen.count("telemetry") == 930
        twin = gw.twins.get(road.id, "NH-001")
        assert twin is not None and twin.online and twin.last_telemetry is not None
        assert twin.last_telemetry.seq == 9
        assert total_stored(settings.influx_url, settings.influx_db, road.id) == 930
    finally:
        pub.close()
        gw.stop()
