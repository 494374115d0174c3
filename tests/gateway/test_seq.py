"""Sequence numbers against real Mosquitto and InfluxDB: a duplicate is the same reading, not the
same number, and every reading published is stored or counted with a reason."""

from __future__ import annotations

import uuid

import pytest

from gateway.rejected import read_rejected
from gateway.service import GatewayService
from streetlight.registry import Road
from streetlight.settings import Settings

from .helpers import T0, Publisher, stored, wait_for

pytestmark = pytest.mark.servers


def test_restart_redelivery_and_reused_seq_each_stored_or_counted(settings: Settings, road: Road) -> None:
    gw = GatewayService(settings, [road], client_id=f"gw-{uuid.uuid4().hex[:6]}")
    gw.start()
    pub = Publisher(settings.mqtt_port)
    reboot_pole, redelivered, reused = "NH-001", "NH-002", "NH-003"
    try:
        wait_for(lambda: gw.connected, what="gateway connected")
        # a pole restarts without its reboot event: seq 0 … 49 again, with later timestamps
        for boot in range(2):
            for i in range(50):
                pub.telemetry(road.id, reboot_pole, T0 + boot * 3_600_000 + i * 10_000, i, dim=10.0 + boot)
        # a QoS 1 redelivery: the same seq with the same payload
        for i in range(10):
            pub.telemetry(road.id, redelivered, T0 + i * 10_000, i)
        pub.telemetry(road.id, redelivered, T0 + 3 * 10_000, 3)
        # a reused seq with another payload: one at a ts of its own, one on the ts already stored
        for i in range(10):
            pub.telemetry(road.id, reused, T0 + i * 10_000, i)
        pub.telemetry(road.id, reused, T0 + 5 * 10_000 + 1, 5, dim=20.0)
        pub.telemetry(road.id, reused, T0 + 6 * 10_000, 6, dim=20.0)
        pub.drain()
        published = 100 + 11 + 12
        wait_for(lambda: gw.metrics.messages_in >= published, what="ingest")
        wait_for(lambda: gw.metrics.written >= 100 + 10 + 11, what="storage")
        rows = stored(settings.influx_url, settings.influx_db, road.id)
        assert rows[reboot_pole] == (100, 50)  # every reading of both boots
        assert rows[redelivered] == (10, 10)  # stored once
        assert rows[reused] == (11, 10)  # the reading at a ts of its own is stored
        assert gw.metrics.restarts[(road.id, reboot_pole)] == 1 and gw.metrics.restarts_total == 1
        assert gw.metrics.duplicates == 1
        assert gw.metrics.seq_reused == 1
        assert gw.metrics.rejected == {"seq_conflict": 1}
        # published = stored + counted duplicates + counted rejections
        assert published == sum(n for n, _ in rows.values()) + gw.metrics.duplicates + sum(gw.metrics.rejected.values())
        text = gw.metrics.registry.get_sample_value("streetlight_gateway_unannounced_restarts_total")
        assert text == 1.0
        twin = gw.twins.get(road.id, reboot_pole)
        assert twin is not None and twin.last_telemetry is not None and twin.last_telemetry.dim == 11.0
    finally:
        pub.close()
        gw.stop()
    kept = read_rejected(gw.rejected.path)  # type: ignore[arg-type]
    assert [(r.pole, r.reason) for r in kept] == [(reused, "seq_conflict")]
    assert b'"dim":20.0' in kept[0].raw
