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
