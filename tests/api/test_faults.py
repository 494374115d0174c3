"""Faults through the API: listed with a location a crew can read, acknowledged, resolved, audited."""

from __future__ import annotations

from typing import Any

from .conftest import Api


def test_fault_lifecycle(api: Api, inject_fault: Any) -> None:
    fid = inject_fault("nanhuan-1", "NH-047", type="lamp_failure", severity="major")
    listed = api.get("/api/v1/faults", params={"state": "open"}).json()
    mine = [f for f in listed["faults"] if f["fault_id"] == fid]
    assert len(mine) == 1 and all(f["state"] == "open" for f in listed["faults"])
    f = mine[0]
    assert f["pole"] == "NH-047" and f["segment"] == "S2" and f["type"] == "lamp_failure"
    assert f["location"].startswith("segment S2, north side, K1+") and "pole NH-047" in f["location"]

    pole = api.get("/api/v1/poles/NH-047").json()
    assert pole["state"] == "fault" and pole["open_faults"] == [fid]

    cables = api.get("/api/v1/faults", params={"type": "cable_fault"}).json()["faults"]
    assert all(x["type"] == "cable_fault" for x in cables)
    same = api.get("/api/v1/faults", params={"segment": "S2", "severity": f["severity"]}).json()["faults"]
    assert fid in [x["fault_id"] for x in same]
    assert fid not in [x["fault_id"] for x in api.get("/api/v1/faults", params={"segment": "S1"}).json()["faults"]]

    acked = api.post(f"/api/v1/faults/{fid}/ack", role="maintenance", json={"note": "crew 2 on the way"})
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert body["state"] == "acknowledged" and body["acknowledged_by"].startswith("test-maintenance")
    assert body["acknowledged_ms"] and body["notes"][-1]["note"] == "crew 2 on the way"
    assert api.post(f"/api/v1/faults/{fid}/ack", role="maintenance").status_code == 409

    resolved = api.post(f"/api/v1/faults/{fid}/resolve", role="maintenance", json={"note": "driver replaced"})
    assert resolved.json()["state"] == "resolved" and resolved.json()["resolved_by"].startswith("test-maintenance")
    again = api.post(f"/api/v1/faults/{fid}/resolve", role="maintenance")
    assert again.status_code == 409 and "resolved" in again.json()["detail"]
    # (a lamp still dark on the live road is found again, as a new fault)
    assert fid not in api.get("/api/v1/poles/NH-047").json()["open_faults"]
    assert fid not in [x["fault_id"] for x in api.get("/api/v1/faults", params={"open": True}).json()["faults"]]
    assert api.get(f"/api/v1/faults/{fid}").json()["evidence"]

    audit = api.get("/api/v1/audit", params={"target": f"fault {fid}"}).json()["entries"]
    assert [(e["action"], e["result"]) for e in audit] == [
        ("resolve_fault", "rejected"), ("resolve_fault", "ok"), ("ack_fault", "rejected"), ("ack_fault", "ok")]
    assert all(e["actor"] == "test-maintenance" for e in audit)


def test_unknown_fault(api: Api) -> None:
    r = api.post("/api/v1/faults/F-999999/ack", role="maintenance")
    assert r.status_code == 404 and "GET /api/v1/faults" in r.json()["detail"]
    assert api.get("/api/v1/faults/F-999999").status_code == 404
