"""Wrong device clocks against real Mosquitto and InfluxDB: one pole a year ahead and one a year
behind cannot move the road's time; their readings are stored at road time with their own ts
kept beside, and counted; every other pole's readings are stored as sent."""

from __future__ import annotations

import uuid

import pytest

from gateway.service import GatewayService
from streetlight.registry import Road
from streetlight.settings import Settings
from telemetry.client import InfluxQL

from .helpers import T0, Publisher, stored, wait_for

pytestmark = pytest.mark.servers
YEAR = 365 * 86_400_000
ROUNDS = 6
AHEAD, BEHIND = "NH-007", "NH-008"


def _points(settings: Settings, road: str, pole: str) -> list[tuple[int, int | None]]:
    """(point time in ms, device_ts) of a pole's stored telemetry, in seq order."""
    q = InfluxQL(settings.influx_url, settings.influx_db)
    try:
        res = q.query(f"SELECT seq, device_ts FROM telemetry WHERE road = '{road}' AND pole = '{pole}'")
    finally:
        q.close()
    rows = sorted((int(v[1]), int(v[0]), None if v[2] is None else int(v[2])) for r in res
                  for s in r.get("series", []) for v in s["values"])
    return [(t, d) for _, t, d in rows]


def test_far_future_and_far_past_clocks_are_stored_at_road_time_and_cannot_move_it(settings: Settings,
                                                                                    road: Road) -> None:
    gw = GatewayService(settings.with_overrides(road_clock="devices"), [road], client_id=f"gw-{uuid.uuid4().hex[:6]}")
    gw.start()
    pub = Publisher(settings.mqtt_port)
    skew = {AHEAD: YEAR, BEHIND: -YEAR}
    try:
        wait_for(lambda: gw.connected, what="gateway connected")
        for k in range(ROUNDS):
            for p in road.poles:
                off = skew.get(p.id, 0) if k >= 2 else 0  # the two clocks go wrong from the third round
                pub.telemetry(road.id, p.id, T0 + k * 10_000 + off, k)
        pub.drain()
        total = ROUNDS * len(road.poles)
        wait_for(lambda: gw.metrics.written >= total, what="storage")
        assert gw.clock.now_ms(road.id) == T0 + (ROUNDS - 1) * 10_000  # neither clock moved road time
        rows = stored(settings.influx_url, settings.influx_db, road.id)
        assert sum(n for n, _ in rows.values()) == total  # every reading stored, none dropped
        assert gw.metrics.clock_corrected == 2 * (ROUNDS - 2)
        for pole, off in skew.items():
            pts = _points(settings, road.id, pole)
            assert len(pts) == ROUNDS
            for time_ms, device_ts in pts[2:]:
                assert T0 <= time_ms <= T0 + ROUNDS * 10_000  # stored at road time …
                assert device_ts is not None and abs(device_ts - time_ms - off) <= 10_000  # … its own ts beside
            assert all(device_ts is None for _, device_ts in pts[:2])  # right clocks: stored as sent
            twin = gw.twins.get(road.id, pole)
            assert twin is not None and twin.last_telemetry is not None
            assert abs(twin.last_telemetry.ts - (T0 + (ROUNDS - 1) * 10_000)) <= 10_000
        assert not any(device_ts for _, device_ts in _points(settings, road.id, "NH-001"))
        assert gw.clock[road.id].skewed(AHEAD) and gw.clock[road.id].skewed(BEHIND)
        assert not gw.clock[road.id].skewed("NH-001")
        assert gw.metrics.registry.get_sample_value("streetlight_gateway_clock_corrected_total") == 2 * (ROUNDS - 2)
    finally:
        pub.close()
        gw.stop()
