"""Control through the API: every pole of a segment acks and reports its new level; audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from api.app import ApiOptions, create_app
from api.memory_platform import MemoryPlatform
from api.serve import served
from streetlight.registry import Road
from streetlight.settings import Settings

from .conftest import Api

PROBLEM = "application/problem+json"


def test_dim_segment_every_pole_acks_and_reports_the_new_level(api: Api, road: Road) -> None:
    segment = road.poles_of_segment("S3")
    r = api.post("/api/v1/segments/S3/dim", json={"level": 60, "ramp_ms": 0, "expires_in_s": 900})
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["poles"] == len(segment) and accepted["target"] == "segment S3"
    # one command per pole, each saying what the pole was sent and why
    assert len(accepted["command_ids"]) == len(segment)
    sent = {a["pole"]: a["level"] for a in accepted["applied"]}
    assert set(sent) == {p.id for p in segment}
    assert all(a["level"] >= 60 and a["why"] for a in accepted["applied"]), accepted["applied"]

    acked: dict[str, Any] = {}
    for cmd_id in accepted["command_ids"]:
        cmd = api.wait_command(cmd_id)
        assert cmd["done"], cmd["summary"]
        assert cmd["decision"]["requested_level"] == 60 and cmd["decision"]["applied_level"] == cmd["level"]
        acked.update(cmd["poles"])
    assert set(acked) == {p.id for p in segment}
    assert all(s["status"] == "acked" and s["dim"] == sent[p] for p, s in acked.items()), acked

    for p in segment[:3]:
        api.wait_pole(p.id, lambda b, p=p: b["level"] == sent[p.id], f"at {sent[p.id]} %")
    poles = api.get("/api/v1/poles", params={"segment": "S3"}).json()
    assert poles["count"] == len(segment)
    # (a pole of S3 with a fault found earlier on the shared live road shows as "fault")
    assert all(p["reason"] == "override" and p["state"] in ("dimmed", "lit", "fault") for p in poles["poles"])
    assert "NH-001" not in acked and api.get("/api/v1/poles/NH-001").json()["segment"] == "S1"

    audit = api.get("/api/v1/audit", params={"action": "dim_segment"}).json()
    assert audit["count"] == 1
    entry = audit["entries"][0]
    assert (entry["actor"], entry["role"], entry["target"], entry["result"]) == ("test-operator", "operator", "segment S3", "ok")
    assert entry["params"]["level"] == 60 and entry["params"]["command_ids"] == accepted["command_ids"]


def test_a_dim_under_the_floor_says_what_was_applied_and_why(api: Api) -> None:
    r = api.post("/api/v1/poles/NH-047/dim", json={"level": 1, "expires_in_s": 600})
    assert r.status_code == 202, r.text
    body = r.json()
    (applied,) = body["applied"]
    assert body["level"] == 1 and body["force"] is False
    assert applied["level"] > 1 and applied["rule"] == "floor", applied  # no lit segment may go to 1 %
    assert "floor" in applied["why"] and "S2" in applied["why"]
    assert body["raised"] == 1 and '"force": true' in body["how_to_force"]
    cmd = api.wait_command(applied["cmd_id"])
    d = cmd["decision"]
    assert (d["requested_level"], d["applied_level"], d["rule"]) == (1, applied["level"], "floor")
    assert d["floor"] is not None and d["floor"] <= applied["level"] and d["how_to_force"]
    assert cmd["poles"]["NH-047"] == {**cmd["poles"]["NH-047"], "status": "acked", "dim": applied["level"]}
    api.wait_pole("NH-047", lambda p: p["level"] == applied["level"], f"at {applied['level']} %")

    # an operator may not force it; an admin may, and the pole goes under the floor; both audited
    denied = api.post("/api/v1/poles/NH-047/dim", json={"level": 1, "expires_in_s": 600, "force": True})
    assert denied.status_code == 403 and "force" in denied.json()["detail"]
    forced = api.post("/api/v1/poles/NH-047/dim", role="admin", json={"level": 1, "expires_in_s": 600, "force": True})
    assert forced.status_code == 202, forced.text
    assert forced.json()["applied"][0]["level"] == 1 and forced.json()["applied"][0]["rule"] == "forced"
    assert forced.json()["raised"] == 0 and forced.json()["how_to_force"] is None
    cmd = api.wait_command(forced.json()["command_ids"][0])
    assert cmd["force"] is True and cmd["decision"]["rule"] == "forced" and cmd["poles"]["NH-047"]["dim"] == 1
    api.wait_pole("NH-047", lambda p: p["level"] == 1, "at 1 %")
    audit = [(e["result"], e["role"], e["params"].get("force")) for e in
             api.get("/api/v1/audit", params={"action": "dim_pole"}).json()["entries"]]
    assert audit == [("ok", "admin", True), ("denied", "operator", True), ("ok", "operator", False)]


def test_dim_one_pole_with_expiry_is_an_override(api: Api) -> None:
    r = api.post("/api/v1/poles/NH-047/dim", json={"level": 90, "expires_in_s": 600})
    assert r.status_code == 202, r.text
    assert r.json()["expires_ms"] is not None
    cmd = api.wait_command(r.json()["command_ids"][0])
    assert cmd["poles"]["NH-047"]["status"] == "acked" and cmd["expires_ms"] == r.json()["expires_ms"]
    pole = api.wait_pole("NH-047", lambda p: p["level"] == 90.0, "at 90 %")
    assert pole["reason"] == "override"


def test_dim_a_list_of_poles_and_reject_unknown_ones(api: Api) -> None:
    r = api.post("/api/v1/poles/dim", role="admin", json={"poles": ["NH-090", "NH-091"], "level": 0,
                                                         "force": True, "expires_in_s": 120})
    assert r.status_code == 202
    ids = r.json()["command_ids"]
    assert len(ids) == 2
    for cmd_id in ids:
        api.wait_command(cmd_id)
    batch = api.get("/api/v1/commands", params={"ids": ",".join(ids)}).json()
    assert {p for c in batch["commands"] for p in c["poles"]} == {"NH-090", "NH-091"}
    assert api.wait_pole("NH-090", lambda p: p["level"] == 0, "at 0 %")["state"] in ("off", "fault")

    bad = api.post("/api/v1/poles/dim", json={"poles": ["NH-010", "XX-999"], "level": 10})
    assert bad.status_code == 404 and bad.headers["content-type"] == PROBLEM
    assert "XX-999" in bad.json()["detail"]


def test_road_dim_asks_for_confirm(api: Api, road: Road) -> None:
    r = api.post(f"/api/v1/roads/{road.id}/dim", json={"level": 50})
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert '"confirm": true' in r.json()["detail"]
    ok = api.post(f"/api/v1/roads/{road.id}/dim", json={"level": 50, "confirm": True, "expires_in_s": 60})
    assert ok.status_code == 202 and ok.json()["poles"] == len(road.poles)
    ids = ",".join(ok.json()["command_ids"])
    for cmd_id in ok.json()["command_ids"]:
        api.wait_command(cmd_id)
    batch = api.get("/api/v1/commands", params={"ids": ids}).json()
    assert batch["done"] and batch["summary"]["acked"] == len(road.poles)
    assert sum(len(c["poles"]) for c in batch["commands"]) == len(road.poles)
    assert api.get("/api/v1/commands", params={"ids": ids + ",nope"}).status_code == 404


def test_offline_pole_command_expires(memory_platform: MemoryPlatform, tmp_path: Path) -> None:
    # the in-memory road's switch; on the live road a pole that stops answering is tests/live's
    # (tests/gateway/test_commands.py drives the gateway's retries and expiry against a real broker)
    memory_platform.set_online("nanhuan-1", "NH-020", False)
    app = create_app(memory_platform, Settings(data_dir=tmp_path), tmp_path / "api.sqlite3")
    with served(app) as url, httpx.Client(base_url=url) as client:
        api = Api(client, {"operator": app.state.ctx.tokens.create("operator", "o")[0],
                           "viewer": app.state.ctx.tokens.create("viewer", "v")[0]})
        assert api.get("/api/v1/poles/NH-020").json()["state"] == "offline"
        r = api.post("/api/v1/poles/NH-020/dim", json={"level": 20})
        cmd = api.wait_command(r.json()["command_ids"][0])
    assert cmd["poles"]["NH-020"]["status"] == "expired" and cmd["poles"]["NH-020"]["error"]


def test_emergency_all_on_and_release(api: Api, road: Road) -> None:
    assert api.post(f"/api/v1/roads/{road.id}/emergency", json={"on": True}).status_code == 409
    on = api.post(f"/api/v1/roads/{road.id}/emergency", json={"on": True, "confirm": True})
    assert on.status_code == 200 and on.json() == {"road": road.id, "emergency": True}
    assert api.get(f"/api/v1/roads/{road.id}").json()["emergency"] is True
    off = api.post(f"/api/v1/roads/{road.id}/emergency", json={"on": False, "confirm": True})
    assert off.json()["emergency"] is False
    actions = [(e["action"], e["params"]) for e in api.get("/api/v1/audit", params={"action": "emergency"}).json()["entries"]]
    assert actions == [("emergency", {"on": False}), ("emergency", {"on": True})]


def test_identify_by_maintenance(api: Api) -> None:
    r = api.post("/api/v1/poles/NH-047/identify", role="maintenance", json={"seconds": 20})
    assert r.status_code == 202
    cmd = api.wait_command(r.json()["command_ids"][0])
    assert cmd["type"] == "identify" and cmd["poles"]["NH-047"]["status"] == "acked"
    assert api.get("/api/v1/audit", params={"action": "identify"}).json()["entries"][0]["actor"] == "test-maintenance"


def test_bad_requests_are_problems_a_person_can_act_on(api: Api) -> None:
    r = api.post("/api/v1/poles/NH-047/dim", json={"level": 130})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert "level" in r.json()["detail"] and r.json()["errors"][0]["field"] == "level"
    r = api.post("/api/v1/poles/NH-999/dim", json={"level": 10})
    assert r.status_code == 404 and "NH-001" in r.json()["detail"]
    r = api.post("/api/v1/segments/S9/dim", json={"level": 10})
    assert r.status_code == 404 and "S1" in r.json()["detail"]
    assert api.get("/api/v1/commands/nope").status_code == 404
    r = api.get("/api/v1/no-such-thing")
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM


def test_command_routes_are_rate_limited_per_token(platform: Any, tmp_path: Any) -> None:
    app = create_app(platform, Settings(data_dir=tmp_path), tmp_path / "rl.sqlite3",
                     ApiOptions(commands_per_minute=1, command_burst=3))
    with served(app) as url, httpx.Client(base_url=url) as client:
        a = app.state.ctx.tokens.create("operator", "a")[0]
        b = app.state.ctx.tokens.create("operator", "b")[0]
        codes = [client.post("/api/v1/poles/NH-001/dim", json={"level": 50},
                             headers={"Authorization": f"Bearer {a}"}).status_code for _ in range(4)]
        assert codes == [202, 202, 202, 429]
        limited = client.post("/api/v1/poles/NH-001/dim", json={"level": 50}, headers={"Authorization": f"Bearer {a}"})
        assert int(limited.headers["Retry-After"]) >= 1 and "wait" in limited.json()["detail"]
        # another token has its own bucket; reads are not limited
        assert client.post("/api/v1/poles/NH-001/dim", json={"level": 50},
                           headers={"Authorization": f"Bearer {b}"}).status_code == 202
        assert client.get("/api/v1/poles", headers={"Authorization": f"Bearer {a}"}).status_code == 200
        entries = app.state.ctx.audit.list(result="rate_limited")
        # both refusals in one aggregated row
        assert len(entries) == 1 and entries[0]["actor"] == "a" and entries[0]["count"] == 2
