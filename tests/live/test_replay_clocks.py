"""A road with wrong device clocks, recorded and replayed: the recording is byte-identical on two
runs, and the platform fed the same recording at two speeds publishes the same alerts, with
``clock_skew`` on exactly the bad clocks and no other fault raised by them."""

from __future__ import annotations

import queue
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from api.app import ApiOptions, create_app
from api.serve import served
from ops.servers import InfluxServer, MosquittoServer, free_port
from runtime.live_platform import LivePlatform
from simulators.recording import read_recording
from simulators.replay import replay
from simulators.runner import run_simulation
from simulators.scenario import load_scenario
from streetlight.protocol import road_topic
from streetlight.settings import Settings

from .conftest import wait_until

pytestmark = pytest.mark.servers

SCENARIO = """\
name: bad-clocks
road: nanhuan-1
start: "2026-11-23 20:00"
duration: 8m
seed: 41
report_interval_s: 10
faults:
  - {type: clock_offset, pole: NH-015, offset: "+8760h", at: "+2m"}
  - {type: clock_offset, pole: NH-066, offset: "-10m", at: "+2m"}
  - {type: lamp_failure, pole: NH-040, at: "+3m"}
"""


def _alerts_of_a_replay(rec: Path, tmp: Path, speed: float | None, end_ms: int,
                        api_faults: list[dict[str, Any]] | None = None) -> list[tuple[Any, ...]]:
    """The alerts the platform published for a replay; ``api_faults`` gets GET /api/v1/faults?type=clock_skew."""
    mq = MosquittoServer(name="mosquitto", port=free_port(), data_dir=tmp / "mosquitto").start()
    db = InfluxServer(name="influxd", port=free_port(), data_dir=tmp / "influxd").start()
    settings = Settings(mqtt_url=mq.url, influx_url=db.url, influx_db="replay", data_dir=tmp / "state",
                        road_clock="devices")
    platform = LivePlatform(settings, [load_scenario("clock-skew").road], client_id=f"gw-{uuid.uuid4().hex[:6]}")
    got: queue.Queue[dict[str, Any]] = queue.Queue()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"alerts-{uuid.uuid4().hex[:6]}")
    sub.on_message = lambda c, u, m: got.put(orjson.loads(m.payload))
    try:
        platform.start()
        sub.connect(settings.mqtt_host, settings.mqtt_port)
        sub.subscribe(road_topic("nanhuan-1", "alerts"), qos=1)
        sub.loop_start()
        wait_until(lambda: platform.gateway.connected, 20, "gateway connected")
        time.sleep(0.5)
        replay(rec, mq.url, speed=speed)
        wait_until(lambda: (platform.gateway.clock.now_ms("nanhuan-1") or 0) >= end_ms, 60, "the replay ingested")
        time.sleep(1.0)  # the last tick's alerts on their way; well inside the two quiet seconds
        if api_faults is not None:
            app = create_app(platform, settings, tmp / "api.sqlite3", ApiOptions(deliver_webhooks=False))
            token = app.state.ctx.tokens.create("viewer", "crew")[0]
            with served(app) as url:
                resp = httpx.get(f"{url}/api/v1/faults", params={"type": "clock_skew"},
                                 headers={"Authorization": f"Bearer {token}"}, timeout=30)
                assert resp.status_code == 200, resp.text
                api_faults.extend(resp.json()["faults"])
        alerts = []
        while not got.empty():
            a = got.get()
            if a["last_seen_ts"] <= end_ms:  # what the recording itself caused, not the silence after it
                alerts.append((a["fault_id"], a["type"], a["state"], a.get("pole"), a["first_seen_ts"],
                               a["last_seen_ts"], a["evidence"].get("offset_ms")))
        return sorted(alerts)
    finally:
        sub.loop_stop()
        sub.disconnect()
        platform.stop()
        mq.stop()
        db.stop()


def test_bad_clocks_record_identically_and_replay_to_the_same_alerts_at_any_speed(tmp_path: Path) -> None:
    f = tmp_path / "bad-clocks.yaml"
    f.write_text(SCENARIO)
    sc = load_scenario(str(f))
    broker = MosquittoServer(name="rec", port=free_port(), data_dir=tmp_path / "rec").start()
    try:
        a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
        run_simulation(sc, mqtt_url=broker.url, speed=None, record=a, heartbeat_required=False)
        run_simulation(sc, mqtt_url=broker.url, speed=None, record=b, heartbeat_required=False)
    finally:
        broker.stop()
    assert a.read_bytes() == b.read_bytes()
    stamps = [orjson.loads(m.payload)["ts"] for m in read_recording(a) if m.topic.endswith("NH-015/telemetry")]
    assert max(stamps) > sc.start_ms + 300 * 86_400_000  # the recording carries the year-ahead clock
    end_ms = sc.end_ms - 10_000
    listed: list[dict[str, Any]] = []
    fast = _alerts_of_a_replay(a, tmp_path / "fast", None, end_ms, listed)
    paced = _alerts_of_a_replay(a, tmp_path / "paced", 240.0, end_ms)
    assert fast == paced  # the same alerts, ids and times, whatever the speed
    opened = {(t, pole) for _, t, state, pole, *_ in fast if state == "open"}
    assert opened == {("clock_skew", "NH-015"), ("clock_skew", "NH-066"), ("lamp_failure", "NH-040")}
    offsets = {pole: off for _, t, _, pole, _, _, off in fast if t == "clock_skew"}
    assert offsets["NH-015"] > 300 * 86_400_000 and -11 * 60_000 < offsets["NH-066"] < -9 * 60_000
    # the crews' list says the same, with the offset as evidence
    assert {f["pole"] for f in listed} == {"NH-015", "NH-066"}
    assert all(f["severity"] == "minor" and "offset_ms" in f["evidence"] for f in listed)
