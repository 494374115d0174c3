"""Pure logic: deduplication across reboots, twin ordering and availability, the fast validator,
the rejected store and its command."""

from __future__ import annotations

import queue
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from gateway.dedup import SLOTS, Dedup, Verdict
from gateway.inbound import Inbound, Raw
from gateway.metrics import GatewayMetrics
from gateway.pipeline import Pipeline
from gateway.rejected import RejectedStore, read_rejected
from gateway.twins import TwinStore
from gateway.validate import Validator
from streetlight.clock import RoadClocks
from streetlight.errors import ProtocolError
from streetlight.protocol import State, Telemetry, pole_topic
from streetlight.registry import Road


def test_dedup_by_pole_boot_seq() -> None:
    d = Dedup()
    assert not d.is_duplicate("r", "P1", 1000, 5)
    assert d.is_duplicate("r", "P1", 1000, 5)
    assert not d.is_duplicate("r", "P2", 1000, 5)  # another pole
    assert not d.is_duplicate("r", "P1", 5000, 0, reboot=True)  # new boot: seq restarts
    assert d.is_duplicate("r", "P1", 5000, 0, reboot=True)  # the reboot event redelivered
    assert not d.is_duplicate("r", "P1", 6000, 5)  # seq 5 again, but in the new boot
    assert d.is_duplicate("r", "P1", 1000, 5)  # a late redelivery from the old boot
    assert not d.is_duplicate("r", "P1", 1500, 6)  # an old-boot message never seen
    assert d.boot("r", "P1") == 1


def test_dedup_is_the_same_reading_not_the_same_number() -> None:
    d = Dedup()
    for s in range(10):
        assert d.judge("r", "P", 1000 + s, s, b"a%d" % s) is Verdict.NEW
    assert d.judge("r", "P", 1005, 5, b"a5") is Verdict.DUPLICATE  # QoS 1 redelivery
    assert d.judge("r", "P", 1005, 5, b"changed") is Verdict.CONFLICT  # would overwrite what is stored
    assert d.judge("r", "P", 1008, 5, b"other") is Verdict.REUSED  # reused seq, another reading and ts
    assert d.judge("r", "P", 5000, 0, b"b0") is Verdict.RESTART  # seq back, ts forward, no reboot event
    assert d.judge("r", "P", 5001, 1, b"b1") is Verdict.NEW
    assert d.judge("r", "P", 5000, 0, b"b0") is Verdict.DUPLICATE  # the new boot's own redelivery
    assert d.judge("r", "P", 1003, 3, b"a3") is Verdict.DUPLICATE  # a late one from the old boot
    assert d.judge("r", "P", 1010, 12, b"late") is Verdict.NEW  # from before the restart, never seen: late
    assert d.boot("r", "P") == 1
    assert d.judge("r", "P", 9000, 1, b"c1") is Verdict.RESTART  # the same seq again, later: restart too
    assert d.boot("r", "P") == 2


def tel(ts: int, seq: int, dim: float = 50.0) -> Telemetry:
    return Telemetry(ts=ts, seq=seq, dim=dim, power_w=10.0, voltage_v=230.0)


def test_twins_ordered_by_ts_and_silence(road: Road) -> None:
    tw = TwinStore([road], report_interval_s=10)
    assert tw.apply(Inbound(road.id, "NH-001", "telemetry", 20_000, tel(20_000, 2, 80.0)))  # came online
    assert not tw.apply(Inbound(road.id, "NH-001", "telemetry", 10_000, tel(10_000, 1, 30.0)))  # late arrival
    t = tw.get(road.id, "NH-001")
    assert t is not None and t.last_telemetry is not None and t.last_telemetry.dim == 80.0
    s_new = State(ts=30_000, mode="manual", dim=40, config_version=3, fw="1")
    s_old = State(ts=25_000, mode="auto", dim=90, config_version=2, fw="1")
    tw.apply(Inbound(road.id, "NH-001", "state", 30_000, s_new))
    tw.apply(Inbound(road.id, "NH-001", "state", 25_000, s_old))
    t = tw.get(road.id, "NH-001")
    assert t is not None and t.state == s_new and t.config_version_applied == 3
    assert tw.sweep(lambda road: 55_000) == []  # 25 s of silence: within three intervals
    assert tw.sweep(lambda road: 61_000) == [(road.id, "NH-001")]
    assert tw.get(road.id, "NH-001").offline_reason == "silence"  # type: ignore[union-attr]
    assert not tw.apply(Inbound(road.id, "NH-001", "telemetry", 29_000, tel(29_000, 3)))  # old: still offline
    assert tw.apply(Inbound(road.id, "NH-001", "telemetry", 62_000, tel(62_000, 4)))  # back
    tw.apply(Inbound(road.id, "NH-001", "status", 63_000, "offline"))
    assert tw.get(road.id, "NH-001").online is False  # type: ignore[union-attr]
    assert tw.apply(Inbound(road.id, "NH-001", "status", 64_000, "online"))


def test_a_status_before_road_time_is_known_does_not_set_last_seen(road: Road) -> None:
    # a simulated road runs days away from the wall clock that stamps a status heard before road
    # time is known: last_seen must come from the pole's readings, not from that stamp
    tw = TwinStore([road], report_interval_s=10)
    wall = 1_796_180_000_000
    assert tw.apply(Inbound(road.id, "NH-001", "status", wall, "online"))
    assert tw.get(road.id, "NH-001").last_seen_ms is None  # type: ignore[union-attr]
    tw.apply(Inbound(road.id, "NH-001", "telemetry", 20_000, tel(20_000, 1)))
    assert tw.get(road.id, "NH-001").last_seen_ms == 20_000  # type: ignore[union-attr]
    tw.apply(Inbound(road.id, "NH-001", "status", 25_000, "online", road_ms=25_000))
    assert tw.get(road.id, "NH-001").last_seen_ms == 25_000  # type: ignore[union-attr]


@pytest.mark.parametrize(("payload", "reason"), [
    (b'{"ts":1,"seq":1,"seq":2,"dim":5,"power_w":6,"voltage_v":230}', "duplicate_key"),
    (b'{"ts":1,"seq":1,"dim":NaN,"power_w":6,"voltage_v":230}', "non_finite"),
    (b'{"ts":1,"seq":1,"dim":"5","power_w":6,"voltage_v":230}', "wrong_type"),
    (b'{"ts":1,"seq":1,"dim":500,"power_w":6,"voltage_v":230}', "out_of_range"),
    (b'{"ts":1,"seq":1,"power_w":6,"voltage_v":230}', "missing_field"),
    (b'{"ts":1,"seq":1,"dim":5,"power_w":6,"voltage_v":230,"fw":"x\\"y"}', None),  # unknown field ignored
])
def test_fast_path_agrees_with_the_protocol(road: Road, payload: bytes, reason: str | None) -> None:
    v = Validator([road])
    if reason is None:
        assert v.message(road.id, "NH-001", "telemetry", payload, 0).message.dim == 5
        return
    with pytest.raises(ProtocolError) as err:
        v.message(road.id, "NH-001", "telemetry", payload, 0)
    assert err.value.reason == reason


def test_topics(road: Road) -> None:
    v = Validator([road])
    assert v.topic("sl/v1/nanhuan-1/NH-001/telemetry") == ("nanhuan-1", "NH-001", "telemetry")
    for topic, reason in [("sl/v1/other/NH-001/telemetry", "unknown_road"), ("sl/v1/nanhuan-1/NH-999/state", "unknown_pole"),
                          ("sl/v1/nanhuan-1/NH-001/cmd", "bad_topic"), ("sl/v2/x", "bad_topic")]:
        with pytest.raises(ProtocolError) as err:
            v.topic(topic)
        assert err.value.reason == reason


def test_rejected_store_and_command(tmp_path: Path) -> None:
    from streetlight.cli import app

    path = tmp_path / "gateway" / "streetlight-gateway" / "rejected.jsonl"
    store = RejectedStore(path, keep=3)
    for i in range(5):
        store.add("sl/v1/r/P1/telemetry", b"\xff" * 10_000, "not_utf8", "payload is not valid UTF-8", "r", f"P{i}")
    store.close()
    assert store.total == 5 and len(store.list(10)) == 3 and len(store.list(10)[0].raw) == 4096
    assert len(read_rejected(path, 0)) == 5
    res = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "rejected", "--limit", "2"])
    assert res.exit_code == 0, res.output
    assert res.output.count("not_utf8") == 3 and "by reason: not_utf8 2" in res.output
    assert orjson.loads(path.read_bytes().splitlines()[0])["size"] == 10_000


def test_dedup_window_is_bounded_and_exact_inside() -> None:
    d = Dedup()
    seqs = list(range(0, 20_000, 3))
    assert not any(d.is_duplicate("r", "P", 1, s) for s in seqs)
    assert all(d.is_duplicate("r", "P", 1, s) for s in seqs[-(SLOTS // 3):])  # recent: remembered
    assert not d.is_duplicate("r", "P", 1, 19_997)  # a gap inside the window is new
    assert not d.is_duplicate("r", "P", 1, 2**32 - 1)  # a jump far ahead does not blow up memory
    assert d.is_duplicate("r", "P", 1, 2**32 - 1)


def _pipeline(road: Road) -> Pipeline:
    rejected = RejectedStore()
    return Pipeline([road], queue.Queue(), None, rejected, GatewayMetrics(rejected),  # type: ignore[arg-type]
                    RoadClocks({road.id: road.pole_ids}), lambda raws: None, lambda inbs: None)


@pytest.mark.parametrize("lwm2m_sequenced", [False, True])
def test_a_pole_half_on_lwm2m_is_not_taken_for_a_restarting_pole(road: Road, lwm2m_sequenced: bool) -> None:
    """A pole whose lamp controller speaks LwM2M (readings handed on by another edge, with a seq made
    there from road time) while its sensors' events still come over MQTT with the pole's own small
    counter: only the MQTT seq is judged, so nothing looks like a restart. Judged as one sequence
    (the parameter True), every MQTT event would be a restart."""
    p = _pipeline(road)
    batch = []
    for i in range(10):
        ts = 1_764_000_000_000 + i * 10_000
        lwm2m = {"ts": ts, "seq": (ts // 100) & 0xFFFF_FFFF, "dim": 50.0, "power_w": 60.0, "voltage_v": 230.0}
        batch.append(Raw(pole_topic(road.id, "NH-002", "telemetry"), orjson.dumps(lwm2m), 0, 0, -1,
                         sequenced=lwm2m_sequenced))
        mqtt = {"ts": ts + 5_000, "seq": i, "type": "vehicle", "speed_kmh": 40.0, "direction": 1}
        batch.append(Raw(pole_topic(road.id, "NH-002", "event"), orjson.dumps(mqtt), i + 1, 1, 1))
    prepared = p.prepare(batch)
    assert len(prepared.lines) == 20  # every reading stored either way
    assert p.metrics.restarts_total == (10 if lwm2m_sequenced else 0)  # judged as one: each MQTT event "restarts"
    assert p.metrics.duplicates == 0 and p.rejected.total == 0
