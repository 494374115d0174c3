"""10,000 hostile payloads mixed into normal traffic: the gateway stays up, every one is counted
with its reason, every valid message is stored."""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter

import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from gateway.rejected import read_rejected
from gateway.service import GatewayService
from streetlight.protocol import pole_topic
from streetlight.registry import Road
from streetlight.settings import Settings

from .helpers import T0, Publisher, stored, telemetry, wait_for

pytestmark = pytest.mark.servers

REQUIRED = {"ts": T0, "seq": 1, "dim": 50.0, "power_w": 60.0, "voltage_v": 230.0}
# (field, a value outside its range) and (field, a value of the wrong type)
OUT_OF_RANGE = [("dim", 100.5), ("power_w", 2000.1), ("voltage_v", -1), ("seq", 2**32), ("pf", 1.5),
                ("temp_c", -60), ("rssi_dbm", 3), ("vehicles", -2), ("lux", 300000)]
WRONG_TYPE = [("dim", "70"), ("power_w", True), ("ts", 1.5), ("seq", "3"), ("vehicles", 2.5), ("pf", None),
              ("voltage_v", [230]), ("energy_wh", {"v": 1})]


def hand_made(road: Road, rng: random.Random) -> list[tuple[str, bytes, str]]:
    """(topic, payload, expected reason) for every kind of junk named in the issue."""
    p = road.poles
    out: list[tuple[str, bytes, str]] = []
    t = lambda i: pole_topic(road.id, p[i % len(p)].id, "telemetry")  # noqa: E731
    for i in range(700):
        out.append((t(i), b'{"ts":1,"seq":1,"dim":50,"power_w":60,"voltage_v":230,"pad":"' + b"x" * 17000 + b'"}',
                    "too_large"))
        out.append((t(i), b'{"ts":1,"seq":1,"dim":NaN,"power_w":60,"voltage_v":230}', "non_finite"))
        out.append((t(i), b'{"ts":1,"seq":1,"dim":Infinity,"power_w":60,"voltage_v":230}', "non_finite"))
        out.append((t(i), b'{"ts":1,"seq":1,"seq":2,"dim":5,"power_w":60,"voltage_v":230}', "duplicate_key"))
        field, bad = OUT_OF_RANGE[i % len(OUT_OF_RANGE)]
        out.append((t(i), orjson.dumps({**REQUIRED, field: bad}), "out_of_range"))
        field, bad = WRONG_TYPE[i % len(WRONG_TYPE)]
        out.append((t(i), orjson.dumps({**REQUIRED, field: bad}), "wrong_type"))
        missing = list(REQUIRED)[i % len(REQUIRED)]
        out.append((t(i), orjson.dumps({k: v for k, v in REQUIRED.items() if k != missing}), "missing_field"))
        out.append((t(i), b"\xff\xfe" + rng.randbytes(40), "not_utf8"))
        out.append((pole_topic(road.id, f"NH-{900 + i % 99}", "telemetry"), telemetry(T0, i), "unknown_pole"))
        out.append((pole_topic("other-road", p[0].id, "telemetry"), telemetry(T0, i), "unknown_road"))
    for i in range(200):
        out.append((t(i), b"[1, 2, 3]", "not_object"))
        out.append((t(i), b'{"ts": 1, "seq":', "invalid_json"))
        out.append((pole_topic(road.id, p[i % len(p)].id, "status"), b"maybe", "bad_status"))
        out.append((pole_topic(road.id, p[i % len(p)].id, "event"), orjson.dumps({"ts": 1, "seq": 1, "type": "vehicle",
                                                                                   "speed_kmh": 50, "direction": 0}),
                    "bad_value"))
        out.append((pole_topic(road.id, p[i % len(p)].id, "state"),
                    orjson.dumps({"ts": 1, "mode": "turbo", "dim": 5, "config_version": 1, "fw": "x"}), "bad_value"))
    return out


def hypothesis_made(n: int) -> list[bytes]:
    """Payloads from hypothesis: a valid telemetry body with one known field broken."""
    found: list[bytes] = []
    bad_value = st.one_of(st.text(max_size=8), st.booleans(), st.none(), st.lists(st.integers(), max_size=3),
                          st.floats(max_value=-0.001, allow_nan=False), st.integers(min_value=2**53 + 1))
    junk = st.binary(min_size=1, max_size=64).filter(lambda b: not b.strip().startswith(b"{"))

    @hyp_settings(max_examples=n, database=None, suppress_health_check=list(HealthCheck), deadline=None)
    @given(field=st.sampled_from(["ts", "seq", "dim", "power_w", "voltage_v"]), value=bad_value, raw=junk,
           use_raw=st.booleans())
    def collect(field: str, value: object, raw: bytes, use_raw: bool) -> None:
        found.append(raw if use_raw else json.dumps({**REQUIRED, field: value}).encode())

    collect()
    rng = random.Random(n)
    while len(found) < n:  # hypothesis may stop early once it has explored the space
        found.append(b"\x00" + rng.randbytes(16))
    return found[:n]


def test_hostile_payloads_counted_and_valid_traffic_stored(settings: Settings, road: Road) -> None:
    rng = random.Random(7)
    hostile = hand_made(road, rng)
    extra = hypothesis_made(10_000 - len(hostile))
    hostile += [(pole_topic(road.id, road.poles[i % 93].id, "telemetry"), b, "?") for i, b in enumerate(extra)]
    assert len(hostile) == 10_000
    rng.shuffle(hostile)
    gw = GatewayService(settings, [road], client_id=f"gw-{uuid.uuid4().hex[:6]}")
    gw.start()
    pub = Publisher(settings.mqtt_port)
    try:
        wait_for(lambda: gw.connected, what="gateway connected")
        valid = 0
        for i, (topic, payload, _) in enumerate(hostile):
            pub.publish(topic, payload)
            if i % 20 == 0:  # normal traffic in between
                pole = road.poles[valid % 93].id
                pub.telemetry(road.id, pole, T0 + valid * 1000, valid // 93)
                valid += 1
        pub.drain(60)
        wait_for(lambda: gw.rejected.total >= 10_000 and gw.metrics.written >= valid, timeout=60, what="all counted")
        assert gw.rejected.total == 10_000
        expected = Counter(reason for _, _, reason in hostile if reason != "?")
        got = gw.metrics.rejected
        for reason, n in expected.items():
            assert got[reason] >= n, (reason, got)
        assert sum(got.values()) == 10_000
        assert sum(n for _, n in stored(settings.influx_url, settings.influx_db, road.id).values()) == valid
        assert gw.rejected.by_pole[("NH-950", "unknown_pole")] > 0
        # operators can list them, with the raw bytes (bounded) and the reason
        listed = gw.rejected.list(5)
        assert len(listed) == 5 and all(x.reason and len(x.raw) <= 4096 for x in listed)
        from_disk = read_rejected(gw.rejected.path, 0)  # type: ignore[arg-type]
        assert len(from_disk) == 10_000
        # and the gateway still works afterwards
        pub.telemetry(road.id, "NH-001", T0 + 10_000_000, 999_999)
        pub.drain()
        wait_for(lambda: stored(settings.influx_url, settings.influx_db, road.id)["NH-001"][0] > valid // 93,
                 what="a message after the storm")
    finally:
        pub.close()
        gw.stop()
