"""Record and replay: one seed gives one byte stream; a replay republishes it as recorded."""

from __future__ import annotations

import collections

import pytest
from typer.testing import CliRunner

from simulators.errors import RecordingError
from simulators.recording import read_recording
from simulators.replay import replay
from simulators.runner import run_simulation
from streetlight.cli import app
from streetlight.protocol import parse_cabinet_telemetry, parse_payload, parse_topic

from .conftest import Listener, write_scenario

pytestmark = pytest.mark.servers

FAULTY = """\
start: "2026-11-24 04:30"
duration: 6m
seed: 21
faults:
  - {type: cable_cut, span: [NH-030, NH-031], at: "+1m", until: "+3m"}
  - {type: lamp_failure, pole: NH-005, at: "+30s"}
  - {type: reboot, pole: NH-090, at: "+2m"}
  - {type: leakage, pole: NH-019, at: "+1m", ma: 40}
"""


def test_two_runs_with_one_seed_record_identical_streams(broker, tmp_path):
    sc = write_scenario(tmp_path, FAULTY)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    run_simulation(sc, mqtt_url=broker.url, speed=None, record=a, heartbeat_required=False)
    run_simulation(sc, mqtt_url=broker.url, speed=None, record=b, heartbeat_required=False)
    assert a.read_bytes() == b.read_bytes()
    msgs = list(read_recording(a))
    kinds = collections.Counter(parse_topic(m.topic).kind for m in msgs)
    assert kinds["telemetry"] > 93 * 30 and kinds["event"] > 0 and kinds["status"] > 93
    for m in msgs:  # the whole run, faults and reboots included, passes the platform's parsers
        t = parse_topic(m.topic)
        parse_cabinet_telemetry(m.payload) if t.cabinet and t.kind == "telemetry" else parse_payload(t.kind, m.payload)
    events = [parse_payload("event", m.payload) for m in msgs if m.topic.endswith("/event")]
    assert {"reboot", "lamp_fault", "vehicle"} <= {e.type for e in events}
    other = write_scenario(tmp_path, FAULTY.replace("seed: 21", "seed: 22"), name="other")
    c = tmp_path / "c.jsonl"
    run_simulation(other, mqtt_url=broker.url, speed=None, record=c, heartbeat_required=False, concentrator=True)
    assert c.read_bytes() != a.read_bytes()


def test_replay_publishes_the_recording_again(broker, tmp_path, mosquitto_factory):
    sc = write_scenario(tmp_path, 'start: "2026-11-24 02:00"\nduration: 1m\nseed: 3\n')
    rec = tmp_path / "r.jsonl"
    run_simulation(sc, mqtt_url=broker.url, speed=None, record=rec, heartbeat_required=False, concentrator=True)
    recorded = list(read_recording(rec))
    other = mosquitto_factory()
    lst = Listener(other.url)
    try:
        stats = replay(rec, other.url, speed=None)
        assert stats.messages == len(recorded)
        assert lst.wait_for(lambda got: len(got) >= len(recorded))
        got = lst.drain()
        by_topic = collections.defaultdict(list)
        for t, p, _ in got:
            by_topic[t].append(p)
        want = collections.defaultdict(list)
        for m in recorded:
            want[m.topic].append(m.payload)
        assert by_topic == want  # same bytes, same order per topic
    finally:
        lst.close()
    late = Listener(other.url)  # state and status were republished retained
    try:
        assert late.wait_for(lambda got: sum(t.endswith("/state") for t, _, _ in got) == 93)
        assert all(retain for _, _, retain in late.drain())
    finally:
        late.close()


def test_a_broken_recording_names_file_and_line(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"ts": 1, "topic": "sl/v1/r/P-1/status", "payload": "online"}\n{"ts": "x"}\n')
    with pytest.raises(RecordingError) as info:
        list(read_recording(f))
    assert info.value.line == 2 and str(f) in str(info.value)


def test_cli_simulate_records_and_replay_plays_it(broker, tmp_path):
    f = tmp_path / "cli.yaml"
    f.write_text('name: cli\nroad: nanhuan-1\nstart: "2026-11-24 02:00"\nduration: 1m\nseed: 5\n')
    rec = tmp_path / "cli.jsonl"
    runner = CliRunner()
    res = runner.invoke(app, ["--mqtt-url", broker.url, "simulate", "--scenario", str(f), "--speed", "max",
                              "--record", str(rec), "--standalone"])
    assert res.exit_code == 0, res.output
    assert "cli: 93 poles, 6 steps" in res.output
    n = sum(1 for _ in read_recording(rec))
    res = runner.invoke(app, ["--mqtt-url", broker.url, "replay", str(rec), "--speed", "max"])
    assert res.exit_code == 0, res.output
    assert f"replayed {n:,} messages" in res.output
    res = runner.invoke(app, ["--mqtt-url", broker.url, "simulate", "--scenario", "no-such", "--speed", "max"])
    assert res.exit_code != 0 and "no such scenario" in str(res.exception or res.output)
    res = runner.invoke(app, ["--mqtt-url", broker.url, "simulate", "--scenario", str(f), "--speed", "fast"])
    assert res.exit_code == 2 and "speed" in res.output
