"""Role × route, generated from the app's routes and checked exhaustively; no token 401."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI

from api.access import PUBLIC, RouteAccess, matrix_markdown, route_access
from api.auth import ROLES

from .conftest import ARTIFACTS, Api

BODIES: dict[str, Any] = {
    "/api/v1/poles/{pole}/dim": {"level": 40},
    "/api/v1/poles/dim": {"poles": ["NH-001"], "level": 40},
    "/api/v1/segments/{segment}/dim": {"level": 40},
    "/api/v1/roads/{road}/dim": {"level": 40, "confirm": True},
    "/api/v1/roads/{road}/emergency": {"on": False, "confirm": True},
    "/api/v1/poles/{pole}/identify": {"seconds": 5},
    "/api/v1/poles/{pole}/ports/{port}": {"on": True},
    "/api/v1/poles/{pole}/ports/{port}/power-cycle": {"off_s": 5},
    "/api/v1/poles/{pole}/maintenance": {"minutes": 30},
    "/api/v1/schedules": {"name": "t", "kind": "default", "steps": [{"at": "dusk", "level": 80}]},
    "/api/v1/schedules/{schedule_id}": {"name": "t", "kind": "default", "steps": [{"at": "dusk", "level": 80}]},
    "/api/v1/faults/{fault_id}/ack": {"note": "on it"},
    "/api/v1/faults/{fault_id}/resolve": {"note": "fixed"},
    "/api/v1/tokens": {"role": "viewer", "name": "spare"},
    "/api/v1/webhooks": {"name": "crew", "kind": "json", "url": "http://127.0.0.1:9/hook"},
}


PORT = "env-1"  # NH-047's environmental sensors


def _path(route: RouteAccess, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], route.path)


def _call(api: Api, route: RouteAccess, role: str | None, values: dict[str, str], token: str | None = None) -> int:
    headers = api.auth(role) if token is None else {"Authorization": f"Bearer {token}"}
    kw: dict[str, Any] = {"headers": headers}
    if route.path == "/api/v1/stream":
        kw["params"] = {"max_events": 1}
    if route.method in ("POST", "PUT") and route.path in BODIES:
        kw["json"] = BODIES[route.path]
    return api.client.request(route.method, _path(route, values), **kw).status_code


@pytest.fixture
def values(api: Api, platform: Any, inject_fault: Any) -> dict[str, str]:
    cmd = api.post("/api/v1/poles/NH-002/dim", json={"level": 90}).json()["command_ids"][0]
    hook = api.post("/api/v1/webhooks", role="admin", json=BODIES["/api/v1/webhooks"]).json()["id"]
    return {"pole": "NH-047", "segment": "S3", "road": "nanhuan-1", "cmd_id": cmd,
            "fault_id": inject_fault("nanhuan-1", "NH-050"), "schedule_id": "nanhuan-1-default",
            "token_id": "tok_unknown", "webhook_id": hook, "port": PORT, "cabinet": "C1"}


def test_every_route_declares_a_permission_or_is_health(app: FastAPI) -> None:
    routes = route_access(app)
    assert len(routes) >= 30
    public = {r.path for r in routes if r.permission is None}
    assert public == set(PUBLIC)
    control = [r for r in routes if r.permission == "control"]
    assert {r.path for r in control} >= {"/api/v1/poles/{pole}/dim", "/api/v1/segments/{segment}/dim",
                                          "/api/v1/roads/{road}/dim", "/api/v1/roads/{road}/emergency"}


def test_role_by_route_matrix(app: FastAPI, api: Api, values: dict[str, str]) -> None:
    table = []
    routes = [r for r in route_access(app) if r.permission is not None]
    for route in routes:
        for role in ROLES:
            code = _call(api, route, role, values)
            if route.allows(role):
                assert code not in (401, 403) and code < 500, (route, role, code)
            else:
                assert code == 403, (route, role, code)
            table.append((route, role, code))
        # no token, a malformed header, and an unknown token: 401 on every route
        assert _call(api, route, None, values) == 401, route
        assert _call(api, route, None, values, token="sl_not-a-token") == 401, route
    assert len(table) == len(routes) * len(ROLES)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "access-matrix.md").write_text(matrix_markdown(app) + "\n")


def test_viewer_is_refused_on_every_control_route_and_refusals_are_audited(app: FastAPI, api: Api,
                                                                           values: dict[str, str]) -> None:
    writes = [r for r in route_access(app) if r.permission not in (None, "read")]
    for route in writes:
        r = api.client.request(route.method, _path(route, values), headers=api.auth("viewer"),
                               json=BODIES.get(route.path))
        assert r.status_code == 403, route
        assert r.headers["content-type"] == "application/problem+json"
        assert "viewer" in r.json()["detail"] and "token of role" in r.json()["detail"]
    denied = api.get("/api/v1/audit", params={"result": "denied", "limit": 1000}).json()
    assert denied["count"] == len(writes)  # one row per refused route, reads included
    assert {e["actor"] for e in denied["entries"]} == {"test-viewer"}
    assert all(e["count"] == 1 for e in denied["entries"])


def test_health_needs_no_token_and_401_says_how_to_get_one(api: Api) -> None:
    assert api.get("/healthz", role=None).json() == {"status": "ok"}
    ready = api.get("/readyz", role=None).json()
    assert ready == {"ready": True, "checks": {"broker": True, "database": True, "road_time": True}}
    r = api.get("/api/v1/poles", role=None)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert "streetlight token create" in r.json()["detail"]


def test_revoked_token_is_refused(api: Api, app: FastAPI) -> None:
    token, record = app.state.ctx.tokens.create("viewer", "temp")
    h = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/api/v1/whoami", headers=h).json()["role"] == "viewer"
    assert api.client.delete(f"/api/v1/tokens/{record['id']}", headers=api.auth("admin")).json()["revoked_ms"]
    assert api.client.get("/api/v1/whoami", headers=h).status_code == 401
    stored = app.state.store.query("SELECT hash FROM tokens WHERE id = ?", (record["id"],))[0]["hash"]
    assert token not in stored and len(stored) == 64
