"""The simulated road against the real Mosquitto: protocol messages, acks, cable cut, fallback."""

from __future__ import annotations

import collections

import orjson
import pytest

from simulators.recording import read_recording
from simulators.runner import Simulation, run_simulation
from streetlight.protocol import parse_cabinet_telemetry, parse_payload, parse_topic, pole_topic, road_topic
from streetlight.registry import load_road

from .conftest import ROAD, write_scenario

pytestmark = pytest.mark.servers
NANHUAN = load_road(ROAD)


def _kinds_by_pole(msgs):
    out = collections.defaultdict(set)
    for topic, _, _ in msgs:
        t = parse_topic(topic)
        if t.cabinet is None:  # the cabinets' topics are checked apart
            out[t.pole].add(t.kind)
    return out


def _parse(topic, payload):
    t = parse_topic(topic)
    return parse_cabinet_telemetry(payload) if t.cabinet and t.kind == "telemetry" else parse_payload(t.kind, payload)


def test_all_93_poles_speak_the_protocol_and_the_recording_matches(broker, listener, tmp_path):
    sc = write_scenario(tmp_path, 'start: "2026-11-23 19:00"\nduration: 2m\nseed: 1\n')
    rec = tmp_path / "run.jsonl"
    stats = run_simulation(sc, mqtt_url=broker.url, speed=None, record=rec, heartbeat_required=False)
    assert stats.steps == 12
    assert listener.wait_for(lambda got: len(got) >= stats.published)
    got = listener.drain()
    by_pole = _kinds_by_pole(got)
    assert len(by_pole) == 93
    assert all({"status", "state", "telemetry", "event"} <= kinds for kinds in by_pole.values())
    recorded = list(read_recording(rec))
    assert len(recorded) == stats.published == stats.recorded
    assert collections.Counter((m.topic, m.payload) for m in recorded) == \
        collections.Counter((t, p) for t, p, _ in got)
    for m in recorded:  # every message of the run passes the platform's parsers
        _parse(m.topic, m.payload)
    tele = [parse_payload("telemetry", m.payload) for m in recorded
            if m.topic.endswith("/telemetry") and "/cabinet/" not in m.topic]
    assert len(tele) == 93 * 12 and all(t.dim == 100 for t in tele)  # 19:00: full on the schedule
    # each cabinet reports every step, each with its own account and its will, its breakers closed
    cabinets = [_parse(t, p) for t, p, _ in got if t.endswith("/telemetry") and "/cabinet/" in t]
    assert len(cabinets) == 2 * 12 and stats.messages["cabinet"] == 2 * 12 + 2  # and each one's online
    assert {f for c in cabinets for f in c.feeders} == {"C1-L1", "C1-L2", "C2-L1", "C2-L2"}
    assert all(r.breaker == "closed" and r.current_a > 0 for c in cabinets for r in c.feeders.values())
    assert sorted(t for t, p, _ in got if t.endswith("/status") and "/cabinet/" in t and p == b"online") == [
        "sl/v1/nanhuan-1/cabinet/C1/status", "sl/v1/nanhuan-1/cabinet/C2/status"]


@pytest.mark.parametrize("concentrator", [False, True], ids=["per-pole", "concentrator"])
def test_commands_are_acked_once_and_config_is_applied(broker, listener, tmp_path, concentrator):
    sc = write_scenario(tmp_path, 'start: "2026-11-24 01:00"\nduration: 1h\n')
    sim = Simulation(sc, mqtt_url=broker.url, speed=None, concentrator=concentrator, heartbeat_required=False)
    sim.start()
    try:
        cmd = pole_topic(ROAD, "NH-010", "cmd")
        dim = orjson.dumps({"cmd_id": "op-1", "type": "dim", "issued_ts": sc.start_ms, "level": 30, "ramp_ms": 0})
        listener.publish(cmd, dim)
        listener.publish(cmd, dim)  # QoS 1 redelivery, or an impatient operator
        listener.publish(pole_topic(ROAD, "NH-011", "cmd"),
                         b'{"cmd_id":"op-2","type":"identify","issued_ts":1,"seconds":30}')
        listener.publish(pole_topic(ROAD, "NH-011", "cmd"), b'{"cmd_id":"op-3","type":"dance","issued_ts":1}')
        listener.publish(pole_topic(ROAD, "NH-012", "config"),
                         b'{"version":4,"report_interval_s":20,"fallback":{"after_s":120,"schedule":[]}}', retain=True)

        def acks(got):
            return [(parse_topic(t).pole, parse_payload("ack", p)) for t, p, _ in got if t.endswith("/ack")]

        for _ in range(200):
            sim.step()
            if len(acks(listener.drain())) >= 4:
                break
        assert listener.wait_for(lambda got: len(acks(got)) >= 4)
        def config_seen(got):
            return any(t == pole_topic(ROAD, "NH-012", "state") and parse_payload("state", p).config_version == 4
                       for t, p, _ in got)

        for _ in range(50):
            sim.step()
            if config_seen(listener.drain()):
                break
        assert listener.wait_for(config_seen)
        applied_at = sim.now_ms
        for _ in range(6):  # a minute: three reports at the new 20 s interval
            sim.step()
        t12 = pole_topic(ROAD, "NH-012", "telemetry")
        assert listener.wait_for(lambda got: sum(t == t12 and orjson.loads(p)["ts"] > applied_at for t, p, _ in got) >= 3)
        got = listener.drain()
        a = acks(got)
        op1 = [ack for pole, ack in a if ack.cmd_id == "op-1"]
        assert len(op1) == 2 and op1[0] == op1[1] and op1[0].ok and op1[0].dim == 30
        assert [ack.ok for _, ack in a if ack.cmd_id == "op-2"] == [True]
        bad = [ack for _, ack in a if ack.cmd_id == "op-3"]
        assert len(bad) == 1 and not bad[0].ok and bad[0].error
        assert sim.device.counts["cmd_executed"] == 2 and sim.device.counts["cmd_repeat"] == 1
        tele10 = [parse_payload("telemetry", p) for t, p, _ in got if t == pole_topic(ROAD, "NH-010", "telemetry")]
        assert tele10[-1].dim == 30
        tele12 = [parse_payload("telemetry", p).ts for t, p, _ in got if t == t12]
        assert [b - a for a, b in zip(tele12, tele12[1:], strict=False) if a > applied_at] == [20_000, 20_000]
    finally:
        sim.close()


def test_a_cut_cable_silences_exactly_the_downstream_poles(broker, listener, tmp_path):
    sc = write_scenario(tmp_path, 'start: "2026-11-24 01:00"\nduration: 4m\nfaults:\n'
                                  '  - {type: cable_cut, span: [NH-061, NH-060], at: "+1m"}\n')
    downstream = {p for p in NANHUAN.feeder_by_id["C2-L1"].poles[10:]}
    assert len(downstream) == 14 and "NH-060" in downstream and "NH-061" not in downstream
    stats = run_simulation(sc, mqtt_url=broker.url, speed=None, heartbeat_required=False)

    def offline(got):
        return {parse_topic(t).pole for t, p, _ in got if t.endswith("/status") and p == b"offline"}

    assert listener.wait_for(lambda got: len(got) >= stats.published + len(downstream) and offline(got))
    got = listener.drain()
    assert offline(got) == downstream  # the broker published their wills
    cut_ms = sc.start_ms + 60_000
    late = {parse_topic(t).pole for t, p, _ in got
            if t.endswith("/telemetry") and "/cabinet/" not in t and orjson.loads(p)["ts"] > cut_ms}
    assert late == set(NANHUAN.pole_ids) - downstream


def test_heartbeat_gap_puts_poles_into_fallback_and_back(broker, listener, tmp_path):
    sc = write_scenario(tmp_path, 'start: "2026-11-23 23:00"\nduration: 1h\n')
    hb = road_topic(ROAD, "heartbeat")
    listener.publish(hb, b'{"ts": %d}' % sc.start_ms, retain=True)
    sim = Simulation(sc, mqtt_url=broker.url, speed=None, heartbeat_required=True)
    sim.start()

    def modes(got, since):
        last = {}
        for t, p, _ in got:
            if t.endswith("/state"):
                s = parse_payload("state", p)
                if s.ts >= since:
                    last[parse_topic(t).pole] = s.mode
        return last

    try:
        while sim.now_ms < sc.start_ms + 290_000:
            sim.step()
        listener.wait_for(lambda got: False, timeout=0.2)
        assert "fallback" not in modes(listener.drain(), sc.start_ms).values()
        quiet_since = sim.now_ms + 1
        while sim.now_ms <= sc.start_ms + 310_000:
            sim.step()
        gap_end = sim.now_ms
        assert listener.wait_for(lambda got: len(modes(got, quiet_since)) == 93)
        assert set(modes(listener.drain(), quiet_since).values()) == {"fallback"}
        listener.publish(hb, b'{"ts": %d}' % sim.now_ms, retain=True)
        for _ in range(50):
            sim.step()
            if len(modes(listener.drain(), gap_end + 1)) == 93:
                break
        assert set(modes(listener.drain(), gap_end + 1).values()) == {"auto"}
    finally:
        sim.close()


def test_simulation_thread_runs_in_the_background_and_stops(broker, listener, tmp_path):
    from simulators.runner import SimulationThread

    sc = write_scenario(tmp_path, 'start: "2026-11-24 02:00"\nduration: 24h\n')
    thread = SimulationThread(sc, mqtt_url=broker.url, speed=None, heartbeat_required=False, concentrator=True).start()
    assert listener.wait_for(lambda got: sum(t.endswith("/telemetry") for t, _, _ in got) >= 93 * 5)
    stats = thread.stop()
    assert not thread.running
    assert stats is not None and stats.stopped_early and 5 <= stats.steps < 24 * 360


@pytest.mark.parametrize("concentrator", [False, True], ids=["per-pole", "concentrator"])
def test_poles_come_back_after_a_broker_restart(broker, tmp_path, concentrator):
    from .conftest import Listener

    sc = write_scenario(tmp_path, 'start: "2026-11-24 01:00"\nduration: 1h\n')
    sim = Simulation(sc, mqtt_url=broker.url, speed=None, concentrator=concentrator, heartbeat_required=False)
    sim.start()
    try:
        sim.step()
        broker.stop()
        sim.step()  # published into the void: lost, as a real device's would be without a session
        broker.start()
        lst = Listener(broker.url, f"sl/v1/{ROAD}/+/telemetry")
        try:
            restart = sim.now_ms
            for _ in range(100):
                sim.step()
                if lst.wait_for(lambda got: len({t for t, _, _ in got}) == 93, timeout=0.05):
                    break
            assert len({t for t, _, _ in lst.drain()}) == 93
        finally:
            lst.close()
        assert sim.now_ms > restart
    finally:
        sim.close()
