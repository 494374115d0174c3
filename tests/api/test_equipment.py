"""A pole's equipment through the API: its ports from the registry, its open tilt/door/equipment faults."""

from __future__ import annotations

from typing import Any

from .conftest import Api


def test_pole_equipment_lists_ports_and_open_pole_faults(api: Api, inject_fault: Any) -> None:
    r = api.get("/api/v1/poles/NH-024/equipment")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["pole"] == "NH-024" and "lamp" in body["equipment"]
    assert [(p["port"], p["kind"], p["rated_power_w"]) for p in body["ports"]] == [
        ("cam-1", "camera", 25.0), ("sig-1", "traffic_signal", 60.0)]
    assert body["faults"] == [] and all(p["fault_id"] is None for p in body["ports"])
    tilt = inject_fault("nanhuan-1", "NH-024", type="pole_tilt", severity="critical")
    inject_fault("nanhuan-1", "NH-025", type="door_open", severity="minor")
    inject_fault("nanhuan-1", "NH-024", type="lamp_failure")  # not equipment
    faults = api.get("/api/v1/poles/NH-024/equipment").json()["faults"]
    assert [(f["fault_id"], f["type"], f["severity"]) for f in faults] == [(tilt, "pole_tilt", "critical")]
    assert api.get("/api/v1/poles/NH-003/equipment").json()["ports"] == []
    assert api.get("/api/v1/poles/NH-999/equipment").status_code == 404
    assert api.get("/api/v1/poles/NH-024/equipment", role=None).status_code == 401


def test_power_cycle_and_port_commands_are_acked_like_dims_and_audited(api: Api) -> None:
    # maintenance may power-cycle (a hung camera), not switch a port; a viewer neither
    r = api.post("/api/v1/poles/NH-024/ports/cam-1/power-cycle", role="maintenance", json={"off_s": 5})
    assert r.status_code == 202, r.text
    cmd = api.wait_command(r.json()["command_ids"][0])
    assert (cmd["type"], cmd["port"], cmd["off_s"]) == ("power_cycle", "cam-1", 5)
    assert cmd["poles"]["NH-024"]["status"] == "acked"
    assert api.post("/api/v1/poles/NH-024/ports/cam-1", role="maintenance", json={"on": False}).status_code == 403
    assert api.post("/api/v1/poles/NH-024/ports/cam-1/power-cycle", role="viewer").status_code == 403
    # an operator switches a port off and on again
    for on in (False, True):
        r = api.post("/api/v1/poles/NH-024/ports/sig-1", json={"on": on})
        assert r.status_code == 202, r.text
        cmd = api.wait_command(r.json()["command_ids"][0])
        assert (cmd["type"], cmd["port"], cmd["on"], cmd["poles"]["NH-024"]["status"]) == ("port", "sig-1", on, "acked")
    # a port the pole does not carry, a bad off time: refused with what to do
    r = api.post("/api/v1/poles/NH-024/ports/cell-9/power-cycle")
    assert r.status_code == 404 and "cam-1" in r.json()["detail"]
    assert api.post("/api/v1/poles/NH-024/ports/cam-1/power-cycle", json={"off_s": 0}).status_code == 422
    entries = api.get("/api/v1/audit", params={"action": "power_cycle"}).json()["entries"]
    assert [(e["actor"], e["target"], e["result"]) for e in entries][-1] == (
        "test-maintenance", "pole NH-024 port cam-1", "ok")
    assert any(e["result"] == "failed" and "cell-9" in e["target"] for e in entries)
    ports = api.get("/api/v1/audit", params={"action": "port"}).json()["entries"]
    assert sorted(e["params"]["on"] for e in ports) == [False, True]


def test_a_cabinet_lists_its_feeders_breakers_and_meters(api: Api) -> None:
    r = api.get("/api/v1/cabinets/C1")
    assert r.status_code == 200, r.text
    c = r.json()
    assert (c["cabinet"], c["road"]) == ("C1", "nanhuan-1")
    assert [f["feeder"] for f in c["feeders"]] == ["C1-L1", "C1-L2"]
    assert c["feeders"][1]["poles"][0] == "NH-024" and len(c["feeders"][1]["poles"]) == 23
    # as last reported: the live road's cabinets report closed breakers; in memory nothing is reported
    assert all(f["breaker"] in (None, "closed") for f in c["feeders"])
    assert [x["cabinet"] for x in api.get("/api/v1/cabinets").json()] == ["C1", "C2"]
    r = api.get("/api/v1/cabinets/C9")
    assert r.status_code == 404 and "C1" in r.json()["detail"]


def test_a_crew_opens_a_maintenance_window_at_a_pole(api: Api) -> None:
    r = api.post("/api/v1/poles/NH-015/maintenance", role="maintenance", json={"minutes": 90})
    assert r.status_code == 200, r.text
    w = r.json()
    assert w["pole"] == "NH-015" and w["until_ms"] - w["from_ms"] == 90 * 60_000
    assert api.post("/api/v1/poles/NH-015/maintenance", role="operator").status_code == 403
    assert api.post("/api/v1/poles/NH-999/maintenance", role="maintenance").status_code == 404
    assert api.post("/api/v1/poles/NH-015/maintenance", role="maintenance", json={"minutes": 0}).status_code == 422
    entry = api.get("/api/v1/audit", params={"action": "maintenance_window"}).json()["entries"][0]
    assert (entry["actor"], entry["target"], entry["params"]["until_ms"]) == ("test-maintenance", "pole NH-015",
                                                                           w["until_ms"])
