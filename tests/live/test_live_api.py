"""The API against the real stack: broker, database, gateway, controller and the simulated road."""

from __future__ import annotations

import orjson
import paho.mqtt.client as mqtt
import pytest

from streetlight.protocol import pole_topic

from .conftest import LiveApi, wait_until

pytestmark = pytest.mark.servers


def _poles(live: LiveApi) -> list[dict]:
    body = live.get("/api/v1/poles").json()
    return body["poles"]


def test_all_93_poles_come_online_with_live_state(live: LiveApi) -> None:
    def settled() -> list[dict] | None:
        ps = _poles(live)
        return ps if all(p["online"] and p["mode"] and p["last_seen_ms"] for p in ps) else None

    poles = wait_until(settled, 60, "93 poles online with their state")
    assert len(poles) == 93
    assert {p["mode"] for p in poles} <= {"auto", "fallback", "manual"}
    one = live.get("/api/v1/poles/NH-047").json()
    assert one["segment"] and one["chainage"].startswith("K")
    assert one["reason"] in ("schedule", "traffic", "follow", "override", "emergency", "fallback")


def test_dim_a_segment_every_pole_acks_at_the_commanded_level(live: LiveApi) -> None:
    wait_until(lambda: all(p["online"] for p in _poles(live)), 60, "poles online")
    resp = live.post("/api/v1/segments/S2/dim", json={"level": 60, "ramp_ms": 0, "expires_in_s": 600})
    assert resp.status_code == 202, resp.text
    ids = resp.json()["command_ids"]
    s2 = [p for p in _poles(live) if p["segment"] == "S2"]
    assert len(ids) == len(s2) == 23

    batch = wait_until(lambda: (b := live.get("/api/v1/commands", params={"ids": ",".join(ids)}).json())["done"] and b,
                       30, "every pole of S2 to answer")
    assert batch["summary"]["acked"] == 23, batch["summary"]
    ctl = live.platform.control.roads["nanhuan-1"].ctl
    floor = float(ctl.seg_floor[1])
    levels = {c["level"] for c in batch["commands"]}
    # the operator's level, raised to what the segment's measured traffic needs, never below it
    assert levels == {max(60.0, floor)}, (levels, floor)
    want = levels.pop()
    wait_until(lambda: all(p["level"] == want for p in _poles(live) if p["segment"] == "S2"), 30, f"S2 at {want} %")
    assert all(p["reason"] == "override" for p in _poles(live) if p["segment"] == "S2")
    others = [p for p in _poles(live) if p["segment"] != "S2"]
    assert any(p["reason"] != "override" for p in others), "only S2 was dimmed"


def test_roles_and_audit_on_the_live_stack(live: LiveApi) -> None:
    assert live.post("/api/v1/poles/NH-010/dim", role="viewer", json={"level": 40}).status_code == 403
    assert live.post("/api/v1/poles/NH-010/dim", role=None, json={"level": 40}).status_code == 401
    ok = live.post("/api/v1/poles/NH-010/dim", role="operator", json={"level": 95, "expires_in_s": 300})
    assert ok.status_code == 202
    cmd = live.get(f"/api/v1/commands/{ok.json()['command_ids'][0]}")
    assert cmd.status_code == 200
    entries = live.get("/api/v1/audit").json()["entries"]
    assert any(e["result"] == "ok" and e["action"] == "dim_pole" and e["target"] == "pole NH-010" for e in entries)
    assert any(e["result"] == "denied" and e["role"] == "viewer" and "NH-010" in e["target"] for e in entries)


def test_a_lamp_failure_reaches_the_crew_and_is_acknowledged(live: LiveApi) -> None:
    def lamp_fault():
        faults = live.get("/api/v1/faults", params={"state": "open"}).json()["faults"]
        return next((f for f in faults if f["type"] == "lamp_failure"), None)

    fault = wait_until(lamp_fault, 90, "the lamp failure at NH-020")
    assert fault["pole"] == "NH-020"
    assert fault["segment"] == "S1" and fault["chainage_m"] and fault["lat"] and fault["feeder"]
    assert "NH-020" in fault["summary"]
    acked = live.post(f"/api/v1/faults/{fault['fault_id']}/ack", role="maintenance", json={"note": "crew on the way"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["state"] == "acknowledged" and acked.json()["acknowledged_by"]
    again = live.get(f"/api/v1/faults/{fault['fault_id']}").json()
    assert again["state"] == "acknowledged"
    assert any(e["action"].startswith("fault") or "ack" in e["action"] for e in live.get("/api/v1/audit").json()["entries"])
    # no other fault on a normal road
    others = [f for f in live.get("/api/v1/faults").json()["faults"] if f["fault_id"] != fault["fault_id"]]
    assert others == [], [(f["type"], f.get("pole"), f["summary"]) for f in others]


def test_readiness_and_metrics_reflect_the_real_servers(live: LiveApi) -> None:
    ready = live.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["broker"] and ready.json()["checks"]["database"]
    metrics = live.get("/metrics").text
    line = next(x for x in metrics.splitlines() if x.startswith("streetlight_messages_in_total"))
    assert float(line.split()[-1]) > 93


def test_a_new_schedule_reaches_the_controller_and_the_poles_fallback(live: LiveApi) -> None:
    gw = live.platform.gateway
    before = gw.config.versions["nanhuan-1"]
    body = {"name": "S4 late dim", "kind": "default", "segments": ["S4"], "priority": 5,
            "steps": [{"at": "dusk", "level": 100}, {"at": "23:00", "level": 60}, {"at": "dawn", "level": 0}]}
    resp = live.post("/api/v1/schedules", json=body)
    assert resp.status_code == 201, resp.text
    sid = resp.json()["id"]
    assert any(s["id"] == sid for s in live.get("/api/v1/schedules").json())
    active = live.get("/api/v1/schedules/active").json()["segments"]
    assert active["S4"] == sid and active["S1"] != sid
    ctl = live.platform.control.roads["nanhuan-1"].ctl
    assert ctl.schedules.for_pole(live.platform.roads["nanhuan-1"].poles_of_segment("S4")[0]).scope == "segment"
    # the road's fallback config is published again with a higher version, and the poles apply it
    after = gw.config.versions["nanhuan-1"]
    assert after > before
    wait_until(lambda: all((t.config_version_applied or 0) >= after for t in gw.twins.all("nanhuan-1")), 30,
               "every pole to report the new config version")


def test_a_restart_without_its_reboot_event_is_counted_on_the_pole(live: LiveApi) -> None:
    wait_until(lambda: all(p["online"] for p in _poles(live)), 60, "poles online")
    road, pole = "nanhuan-1", "NH-090"
    assert live.get(f"/api/v1/poles/{pole}").json()["restarts"] == 0
    last = live.platform.gateway.twins.get(road, pole).last_telemetry  # type: ignore[union-attr]
    assert last is not None and last.seq > 0
    # the pole's seq goes back to 0 on a later ts, and its reboot event never came
    # a minute ahead: later than anything the pole sends while this message is on its way
    body = {k: v for k, v in last.to_dict().items() if v is not None} | {"ts": last.ts + 60_000, "seq": 0}
    host, port = live.platform.settings.mqtt_host, live.platform.settings.mqtt_port
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="restart-test")
    client.connect(host, port)
    client.loop_start()
    try:
        client.publish(pole_topic(road, pole, "telemetry"), orjson.dumps(body), qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()
    wait_until(lambda: live.get(f"/api/v1/poles/{pole}").json()["restarts"] == 1, 30, "the restart counted")
    listed = {p["id"]: p["restarts"] for p in _poles(live)}
    assert listed[pole] == 1 and sum(listed.values()) == 1
    metrics = live.get("/metrics").text
    assert "streetlight_unannounced_restarts_total 1.0" in metrics
