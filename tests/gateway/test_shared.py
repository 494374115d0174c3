"""Several gateway processes on one MQTT 5 shared subscription, each storing its share."""

from __future__ import annotations

import uuid

import pytest

from gateway.service import GatewayService
from streetlight.registry import make_road
from streetlight.settings import Settings

from .helpers import T0, Publisher, stored, total_stored, wait_for

pytestmark = pytest.mark.servers


def test_two_gateways_split_the_poles_and_store_everything_once(settings: Settings) -> None:
    road = make_road(500, road_id=f"shared-{uuid.uuid4().hex[:6]}", prefix="SH")
    group = f"gw{uuid.uuid4().hex[:6]}"
    gws = [GatewayService(settings.with_overrides(data_dir=str(settings.data_dir / f"g{i}")), [road],
                          client_id=f"{group}-{i}", shared_group=group) for i in range(2)]
    for gw in gws:
        gw.start()
    pub = Publisher(settings.mqtt_port)
    try:
        wait_for(lambda: all(gw.connected for gw in gws), what="both gateways connected")
        rounds = 6
        for i in range(rounds):
            for p in road.poles:
                pub.telemetry(road.id, p.id, T0 + i * 10_000, i)
        pub.drain()
        total = rounds * len(road.poles)
        wait_for(lambda: sum(gw.metrics.written for gw in gws) >= total, timeout=60, what="both shares stored")
        # each message went to exactly one gateway (other tests' retained traffic on the shared
        # broker may reach them too and is rejected as another road's, so count what was stored)
        shares = [gw.metrics.written for gw in gws]
        assert sum(shares) == total, shares
        assert all(s > total * 0.2 for s in shares), f"the broker should split the load, got {shares}"
        assert total_stored(settings.influx_url, settings.influx_db, road.id) == total
        rows = stored(settings.influx_url, settings.influx_db, road.id)
        assert len(rows) == len(road.poles) and all(v == (rounds, rounds) for v in rows.values())
    finally:
        pub.close()
        for gw in gws:
            gw.stop()
