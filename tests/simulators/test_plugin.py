"""The fixtures engineers load in their own suites: run a scenario, get what the platform reported."""

from __future__ import annotations

import threading

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulators.expect import SimulationReport
from streetlight.protocol import Alert, parse_topic, road_topic

from .conftest import ROAD, write_scenario

pytestmark = pytest.mark.servers


class ToyPlatform:
    """Stands in for the platform: turns a pole's ``lamp_fault`` event into a lamp_failure Alert."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="toy-platform")
        ready = threading.Event()
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.on_message = self._on_message
        self.c.connect(host, int(port))
        self.c.subscribe(f"sl/v1/{ROAD}/+/event", qos=1)
        self.c.loop_start()
        assert ready.wait(10)

    def _on_message(self, c, u, m):
        ev = orjson.loads(m.payload)
        if ev["type"] != "lamp_fault":
            return
        pole = parse_topic(m.topic).pole
        alert = {"fault_id": f"F-{pole}", "type": "lamp_failure", "severity": "major", "state": "open",
                 "road": ROAD, "pole": pole, "first_seen_ts": ev["ts"], "last_seen_ts": ev["ts"],
                 "summary": f"lamp failed at {pole}"}
        c.publish(road_topic(ROAD, "alerts"), orjson.dumps(alert), qos=1)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


BODY = """\
start: "2026-11-24 01:00"
duration: 3m
seed: 8
faults:
  - {type: lamp_failure, pole: NH-040, at: "+1m"}
  - {type: leakage, pole: NH-041, at: "+1m"}
expected:
  - {type: lamp_failure, pole: NH-040, within_reports: 2}
  - {type: leakage, pole: NH-041}
"""


def test_simulate_fixture_collects_alerts_and_lists_what_was_missed(simulate, broker, tmp_path):
    sc = write_scenario(tmp_path, BODY)
    platform = ToyPlatform(broker.url)
    try:
        report = simulate(sc, mqtt_url=broker.url, heartbeat_required=False, settle_s=1.0)
    finally:
        platform.close()
    assert report.stats.steps == 18
    assert [a.pole for a in report.alerts] == ["NH-040"]
    assert [(e.type, e.pole) for e in report.unmet()] == [("leakage", "NH-041")]  # the toy cannot see leakage
    assert report.unexpected() == []


def test_replay_fixture_returns_the_alerts(replay_recording, broker, tmp_path, simulate):
    rec = tmp_path / "r.jsonl"
    sc = write_scenario(tmp_path, BODY)
    simulate(sc, mqtt_url=broker.url, heartbeat_required=False, record=rec, settle_s=0.1, concentrator=True)
    platform = ToyPlatform(broker.url)
    try:
        alerts = replay_recording(rec, mqtt_url=broker.url, speed=None, settle_s=1.0)
    finally:
        platform.close()
    assert [a.type for a in alerts] == ["lamp_failure"]


def _alert(fid: str, state: str, ts: int, pole: str = "NH-040") -> Alert:
    return Alert.model_validate({"fault_id": fid, "type": "lamp_failure", "severity": "major", "state": state,
                                 "road": ROAD, "pole": pole, "first_seen_ts": ts, "last_seen_ts": ts,
                                 "summary": f"lamp failed at {pole}"})


def test_the_plugin_report_uses_the_scenario_judge(tmp_path):
    """The fixture's report and `scenario run --check` share one judge: an alert before the fault's
    first evidence is a false alarm, and a fault reopened under a new id while never repaired misses."""
    sc = write_scenario(tmp_path, BODY)
    lamp, leak = sc.expected
    early = SimulationReport(sc, None, [_alert("F-1", "open", lamp.after_ms - 10_000)])
    assert early.unexpected() == early.alerts and lamp in early.unmet()
    assert "before the fault's first evidence" in early.verdict().false_alarms[0].why
    split = SimulationReport(sc, None, [_alert("F-1", "open", lamp.after_ms + 10_000),
                                        _alert("F-1", "resolved", lamp.after_ms + 40_000),
                                        _alert("F-2", "open", lamp.after_ms + 70_000)])
    assert split.unexpected() == [] and split.unmet() == [lamp, leak]
    assert "opened as 2 faults" in split.verdict().rows[0].note
