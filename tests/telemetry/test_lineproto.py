"""Line protocol: the platform's lines are influxdb-client's lines, byte for byte.

``telemetry.lineproto`` writes the text itself for speed (``streetlight bench ingest``); these
tests hold it to ``Point.to_line_protocol()`` on the text a device or a registry can put in a
tag or a string field.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from ops.servers import InfluxServer
from streetlight.protocol import Event, LampFaultEvent, RebootEvent, Telemetry, TiltEvent, VehicleEvent
from streetlight.registry import Pole, load_road
from telemetry import InfluxQL, InfluxWriter, ensure_schema, event_line, point_time_ns, tag_set, telemetry_line

ROAD = load_road("nanhuan-1")
SPECIAL = " ,=\"'\\\n\t\r#"
# the characters line protocol escapes, among any text (unicode included, no lone surrogates)
text = st.text(st.one_of(st.sampled_from(SPECIAL), st.characters(codec="utf-8")), max_size=24)


def _pole(feeder: str, segment: str, side: str) -> Pole:
    return dataclasses.replace(ROAD.poles[0], feeder=feeder, segment=segment, side=side)


def _point(measurement: str, road: str, pole: Pole | None, pole_id: str, fields: dict[str, object],
           ts: int, seq: int, **extra_tags: str) -> str:
    p = Point(measurement).tag("road", road).tag("pole", pole_id)
    if pole is not None:
        p.tag("segment", pole.segment).tag("feeder", pole.feeder).tag("side", pole.side)
    for k, v in extra_tags.items():
        p.tag(k, v)
    for k, v in fields.items():
        p.field(k, v)
    return str(p.time(point_time_ns(ts, seq), WritePrecision.NS).to_line_protocol())


def test_telemetry_line_tags_fields_and_time() -> None:
    p = ROAD.poles[0]
    tags = tag_set(ROAD.id, p, p.id)
    t = Telemetry(ts=1_700_000_000_123, seq=7, dim=70, power_w=84.5, voltage_v=230.0, vehicles=3)
    line = telemetry_line(tags, t)
    assert line == (f"telemetry,feeder={p.feeder},pole={p.id},road=nanhuan-1,segment={p.segment},side={p.side} "
                    f"dim=70,power_w=84.5,seq=7i,vehicles=3i,voltage_v=230 {1_700_000_000_123_000_007}")
    assert "pf=" not in line  # absent optional readings are not written


def test_point_time_is_stable_and_distinct() -> None:
    assert point_time_ns(1000, 5) == point_time_ns(1000, 5)
    assert point_time_ns(1000, 5) != point_time_ns(1000, 6)


def test_event_line_escapes_strings() -> None:
    e = LampFaultEvent(ts=1, seq=2, code='E "7", x=1')
    line = event_line(",pole=NH-001,road=r", e)
    assert ',type=lamp_fault code="E \\"7\\", x=1",seq=2i ' in line
    v = VehicleEvent(ts=1, seq=3, speed_kmh=50, direction=-1)
    assert "direction=-1i" in event_line(",pole=a,road=r", v)


def test_a_newline_in_an_event_type_stays_in_its_tag() -> None:
    """The type comes from the device: a newline there must not start a line of its choosing."""
    e = Event(ts=1, seq=1, type="x\nevil,pole=NH-001 seq=9i 1")
    line = event_line(tag_set(ROAD.id, ROAD.poles[0], ROAD.poles[0].id), e)
    assert "\n" not in line
    assert line.endswith(r",type=x\nevil\,pole\=NH-001\ seq\=9i\ 1 seq=1i 1000001")


@pytest.mark.servers
def test_hostile_text_is_stored_as_one_point(influxdb: InfluxServer, tmp_path: Path) -> None:
    """InfluxDB takes the escaped lines whole: one point each, in its measurement, and nothing else."""
    db = InfluxQL(influxdb.url, f"lp_{uuid.uuid4().hex[:10]}")
    ensure_schema(db, raw_duration="INF")
    w = InfluxWriter(db.url, db.db, spool_dir=tmp_path)
    pole = ROAD.poles[0]
    tags = tag_set(ROAD.id, pole, pole.id)
    hostile = 'x\nevil,pole=NH-001 seq=9i 1'
    code = 'E "7", x=1 \\ 路灯'
    try:
        assert w.write([event_line(tags, Event(ts=1_795_000_000_000, seq=1, type=hostile)),
                        event_line(tags, LampFaultEvent(ts=1_795_000_000_000, seq=2, code=code))]) == "written"
        assert w.dead_letter.count == 0
        measurements = db.query("SHOW MEASUREMENTS")[0]["series"][0]["values"]
        assert [m[0] for m in measurements] == ["event"]
        rows = db.query('SELECT "seq", "code", "type" FROM "event" ORDER BY time')[0]["series"][0]["values"]
        assert [(r[1], r[2]) for r in rows] == [(1, None), (2, code)]
        # commas, spaces, equals come back as sent; a newline stays the two characters ``\n``
        assert rows[0][3] == hostile.replace("\n", "\\n") and rows[1][3] == "lamp_fault"
    finally:
        w.close()


@given(road=text, pole_id=text, feeder=text, segment=text, side=text)
def test_tags_match_influxdb_client(road: str, pole_id: str, feeder: str, segment: str, side: str) -> None:
    t = Telemetry(ts=1_795_000_000_000, seq=3, dim=55.5, power_w=61.0, voltage_v=229.0, pedestrians=2)
    fields = {"seq": 3, "dim": 55.5, "power_w": 61.0, "voltage_v": 229.0, "pedestrians": 2}
    pole = _pole(feeder, segment, side)
    assert telemetry_line(tag_set(road, pole, pole_id), t) == _point("telemetry", road, pole, pole_id, fields, t.ts, 3)
    assert telemetry_line(tag_set(road, None, pole_id), t) == _point("telemetry", road, None, pole_id, fields, t.ts, 3)


@given(type_=text.filter(lambda s: 0 < len(s) <= 64), code=text, reason=text, pole_id=text)
def test_event_tags_and_string_fields_match_influxdb_client(type_: str, code: str, reason: str, pole_id: str) -> None:
    pole = ROAD.poles[5]
    tags = tag_set(ROAD.id, pole, pole_id)
    ts = 1_795_000_000_000
    cases: list[tuple[Event, dict[str, object]]] = [
        (Event(ts=ts, seq=1, type=type_), {"seq": 1}),
        (LampFaultEvent(ts=ts, seq=2, code=code), {"seq": 2, "code": code}),
        (RebootEvent(ts=ts, seq=3, reason=reason), {"seq": 3, "reason": reason}),
    ]
    for e, fields in cases:
        expected = _point("event", ROAD.id, pole, pole_id, fields, ts, e.seq, type=e.type)
        assert event_line(tags, e) == expected


@given(dim=st.floats(0, 100), power=st.floats(0, 2000), volts=st.floats(0, 400),
       energy=st.one_of(st.none(), st.floats(0, 1e12)), vehicles=st.one_of(st.none(), st.integers(0, 10**9)),
       seq=st.integers(0, 2**32 - 1), degrees=st.floats(0, 180), speed=st.floats(0, 250),
       direction=st.sampled_from([1, -1]))
def test_numbers_match_influxdb_client(dim: float, power: float, volts: float, energy: float | None,
                                       vehicles: int | None, seq: int, degrees: float, speed: float,
                                       direction: int) -> None:
    pole = ROAD.poles[0]
    tags = tag_set(ROAD.id, pole, pole.id)
    optional = {k: v for k, v in (("energy_wh", energy), ("vehicles", vehicles)) if v is not None}
    t = Telemetry(ts=1_795_000_000_000, seq=seq, dim=dim, power_w=power, voltage_v=volts, **optional)
    fields = {"seq": seq, "dim": dim, "power_w": power, "voltage_v": volts, **optional}
    assert telemetry_line(tags, t) == _point("telemetry", ROAD.id, pole, pole.id, fields, t.ts, seq)
    tilt = TiltEvent(ts=t.ts, seq=seq, degrees=degrees)
    assert event_line(tags, tilt) == _point("event", ROAD.id, pole, pole.id, {"seq": seq, "degrees": degrees},
                                            t.ts, seq, type="tilt")
    car = VehicleEvent(ts=t.ts, seq=seq, speed_kmh=speed, direction=direction)
    assert event_line(tags, car) == _point("event", ROAD.id, pole, pole.id,
                                           {"seq": seq, "speed_kmh": speed, "direction": direction}, t.ts, seq,
                                           type="vehicle")
