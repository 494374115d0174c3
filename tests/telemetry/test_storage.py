"""The writer and queries against a real InfluxDB: batches, 400 dead letter, roll-ups, frames."""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
import pytest

from ops.servers import InfluxServer
from streetlight.protocol import Telemetry
from streetlight.registry import load_road
from telemetry import InfluxQL, InfluxWriter, TelemetryQueries, ensure_schema, rollup, tag_set, telemetry_line

pytestmark = pytest.mark.servers
DAY0 = int(pd.Timestamp("2026-11-20 00:00", tz="Asia/Shanghai").value // 1_000_000)


@pytest.fixture
def db(influxdb: InfluxServer) -> InfluxQL:
    client = InfluxQL(influxdb.url, f"s_{uuid.uuid4().hex[:10]}")
    ensure_schema(client, raw_duration="INF")
    ensure_schema(client, raw_duration="INF")  # idempotent
    return client


def lines_for_day(road_id: str = "nanhuan-1", poles: int = 6, hours: int = 48) -> list[str]:
    road = load_road(road_id)
    out = []
    for p in road.poles[:poles]:
        tags = tag_set(road.id, p, p.id)
        for h in range(hours * 6):  # every 10 minutes
            ts = DAY0 + h * 600_000
            out.append(telemetry_line(tags, Telemetry(ts=ts, seq=h, dim=50.0, power_w=60.0, voltage_v=230.0,
                                                      energy_wh=10.0 * h, vehicles=2)))
    return out


def test_write_query_and_idempotent_rewrite(db: InfluxQL, tmp_path: Path) -> None:
    w = InfluxWriter(db.url, db.db, spool_dir=tmp_path)
    try:
        lines = lines_for_day()
        assert w.write(lines) == "written"
        assert w.write(lines[:100]) == "written"  # a rewrite adds no rows
        q = TelemetryQueries(db)
        raw = q.pole_readings("nanhuan-1", "NH-001", DAY0, DAY0 + 86_400_000)
        assert len(raw) == 144 and raw["seq"].is_unique
        per_hour = q.pole_readings("nanhuan-1", "NH-001", DAY0, DAY0 + 86_400_000, every="1h")
        assert len(per_hour) == 24 and (per_hour["vehicles"] == 12).all()
        latest = q.latest("nanhuan-1")
        assert sorted(latest["pole"]) == [f"NH-00{i}" for i in range(1, 7)]
        assert (latest["seq"] == 287).all()
        energy = q.energy_per_day("nanhuan-1", DAY0, DAY0 + 2 * 86_400_000, by="pole")
        assert len(energy) == 12 and (energy["energy_wh"] == 1430.0).all()  # 143 steps of 10 Wh per day
        road_energy = q.energy_per_day("nanhuan-1", DAY0, DAY0 + 2 * 86_400_000, by="road")
        assert list(road_energy["energy_wh"]) == [6 * 1430.0, 6 * 1430.0]
        seg = q.segment_aggregates("nanhuan-1", DAY0, DAY0 + 86_400_000, every="1h", segment="*")
        assert len(seg) == 24 and (seg["power_w"] == 360.0).all() and (seg["poles"] == 6).all()
        counts = q.count_distinct_seq("nanhuan-1")
        assert (counts["points"] == 288).all() and (counts["distinct_seq"] == 288).all()
        rollup(db, DAY0, DAY0 + 2 * 86_400_000)
        hourly = q.pole_readings("nanhuan-1", "NH-002", DAY0, DAY0 + 86_400_000, source="1h")
        assert len(hourly) == 24 and (hourly["samples"] == 6).all()
    finally:
        w.close()


def test_type_conflict_goes_to_dead_letter_and_good_points_stay(db: InfluxQL, tmp_path: Path) -> None:
    w = InfluxWriter(db.url, db.db, spool_dir=tmp_path)
    try:
        good = lines_for_day(poles=1, hours=1)
        assert w.write(good) == "written"
        bad = 'telemetry,pole=NH-001,road=nanhuan-1 dim="seventy" 1795000000000000000'
        assert w.write([*good[:3], bad, *good[3:]]) == "written"  # never retried, never spooled
        assert w.dead_letter.count == 1
        assert "conflict" in str(w.dead_letter.list()[0]["error"])
        assert w.spool.depth == 0
        n = db.query("SELECT count(seq) FROM telemetry")[0]["series"][0]["values"][0][1]
        assert n == 6
    finally:
        w.close()


def test_unreachable_database_spools_and_drains_in_order(influx_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = influx_factory()
    client = InfluxQL(server.url, "spooltest")
    ensure_schema(client, raw_duration="INF")
    server.stop()
    w = InfluxWriter(server.url, "spooltest", spool_dir=tmp_path, timeout_s=2)
    try:
        lines = lines_for_day(poles=2, hours=2)
        assert w.write(lines[:10]) == "spooled"
        assert w.write(lines[10:]) == "spooled"  # behind the backlog
        assert w.spool.depth == 2
        server.start()
        assert w.wait_drained(30)
        n = client.query("SELECT count(seq) FROM telemetry")[0]["series"][0]["values"][0][1]
        assert n == len(lines)
    finally:
        w.close()
        client.close()


def test_batch_in_concurrent_parts_stores_every_point_and_dead_letters_the_bad_one(db: InfluxQL,
                                                                                  tmp_path: Path) -> None:
    w = InfluxWriter(db.url, db.db, spool_dir=tmp_path, writers=3, min_part=10)
    try:
        good = lines_for_day(poles=6, hours=2)  # 72 points: three parts of 24
        # the field types are set first, as the gateway's typed lines set them (parts race otherwise)
        assert w.write(good[:1]) == "written"
        bad = 'telemetry,pole=NH-001,road=nanhuan-1 dim="seventy" 1795000000000000000'
        assert w.write([*good[:50], bad, *good[50:]]) == "written"
        assert w.dead_letter.count == 1 and w.spool.depth == 0
        n = db.query("SELECT count(seq) FROM telemetry")[0]["series"][0]["values"][0][1]
        assert n == len(good)
    finally:
        w.close()


def test_batch_in_parts_to_an_absent_database_is_spooled_whole_and_drained(influx_factory,  # type: ignore[no-untyped-def]
                                                                          tmp_path: Path) -> None:
    server = influx_factory()
    client = InfluxQL(server.url, "partspool")
    ensure_schema(client, raw_duration="INF")
    server.stop()
    w = InfluxWriter(server.url, "partspool", spool_dir=tmp_path, timeout_s=2, writers=4, min_part=5)
    try:
        lines = lines_for_day(poles=3, hours=2)
        assert w.write(lines) == "spooled"
        assert w.spool.depth == 1  # one batch, however many parts it was posted as
        server.start()
        assert w.wait_drained(30)
        n = client.query("SELECT count(seq) FROM telemetry")[0]["series"][0]["values"][0][1]
        assert n == len(lines)
    finally:
        w.close()
        client.close()
