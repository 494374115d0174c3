"""Readings, energy, schedules, the live stream, readiness and metrics."""

from __future__ import annotations

import io
import threading
from typing import Any

import httpx
import orjson
import pandas as pd

from api.serve import served
from controller.schedule import night_of

from .conftest import Api

DAY = 86_400_000
T0 = 1_764_000_000_000


def test_pole_readings_json_and_csv(api: Api) -> None:
    params = {"start_ms": T0, "end_ms": T0 + DAY, "every_s": 3600}
    body = api.get("/api/v1/poles/NH-047/readings", params=params).json()
    assert body["count"] == 24 and {"time", "pole", "dim", "power_w"} <= set(body["columns"])
    assert all(r["pole"] == "NH-047" and T0 - 3_600_000 < r["time"] < T0 + DAY for r in body["readings"])
    csv = api.get("/api/v1/poles/NH-047/readings", params={**params, "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    df = pd.read_csv(io.StringIO(csv.text))
    assert len(df) == 24 and list(df.columns) == body["columns"]


def test_segment_readings_and_range_errors(api: Api, road: Any) -> None:
    body = api.get("/api/v1/segments/S1/readings", params={"start_ms": T0, "end_ms": T0 + DAY, "every_s": 21600}).json()
    assert {r["pole"] for r in body["readings"]} == {p.id for p in road.poles_of_segment("S1")}
    bad = api.get("/api/v1/segments/S1/readings", params={"start_ms": T0, "end_ms": T0 - 1})
    assert bad.status_code == 422 and "after start_ms" in bad.json()["detail"]
    wide = api.get("/api/v1/segments/S1/readings", params={"start_ms": 0, "end_ms": T0, "every_s": 1})
    assert wide.status_code == 422 and "larger every_s" in wide.json()["detail"]


def test_latest_and_energy(api: Api, road: Any) -> None:
    latest = api.get("/api/v1/readings/latest").json()
    assert latest["count"] == len(road.poles)
    energy = api.get("/api/v1/energy", params={"day": "2026-11-20"}).json()
    assert energy["day"] == "2026-11-20" and len(energy["poles"]) == len(road.poles)
    assert len(energy["segments"]) == len(road.segments)
    assert 0 < energy["savings_pct"] < 100 and energy["violations"] == 0
    assert abs(sum(s["energy_kwh"] for s in energy["segments"]) - energy["energy_kwh"]) < 0.01


def test_schedules_crud_and_active(api: Api) -> None:
    base = api.get("/api/v1/schedules").json()
    assert [s["kind"] for s in base] == ["default"]
    active = api.get("/api/v1/schedules/active").json()
    assert set(active["segments"].values()) == {base[0]["id"]}
    tonight = night_of(active["now_ms"], "Asia/Shanghai").isoformat()  # before noon: the night before
    exc = {"name": "Festival", "kind": "exception", "segments": ["S2"], "dates": [tonight], "priority": 5,
           "steps": [{"at": "dusk", "level": 100}, {"at": "dawn", "level": 0}]}
    created = api.post("/api/v1/schedules", json=exc)
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    segs = api.get("/api/v1/schedules/active").json()["segments"]
    assert segs["S2"] == sid and segs["S1"] == base[0]["id"]
    upd = api.client.put(f"/api/v1/schedules/{sid}", headers=api.auth("operator"), json={**exc, "segments": ["S3"]})
    assert upd.status_code == 200 and upd.json()["segments"] == ["S3"]
    assert api.get("/api/v1/schedules/active").json()["segments"]["S3"] == sid
    bad = api.post("/api/v1/schedules", json={**exc, "segments": ["S9"]})
    assert bad.status_code == 404 and "S9" in bad.json()["detail"]
    badstep = api.post("/api/v1/schedules", json={**exc, "steps": [{"at": "25:00", "level": 10}]})
    assert badstep.status_code == 422
    assert api.client.delete(f"/api/v1/schedules/{sid}", headers=api.auth("operator")).status_code == 204
    assert api.get(f"/api/v1/schedules/{sid}").status_code == 404
    actions = [e["action"] for e in api.get("/api/v1/audit").json()["entries"]]
    assert actions[:3] == ["delete_schedule", "update_schedule", "create_schedule"]


def test_live_stream_carries_twin_command_and_alert_events(api: Api, inject_fault: Any) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    ready = threading.Event()

    def read() -> None:
        with api.client.stream("GET", "/api/v1/stream", headers=api.auth("viewer"), params={"max_events": 4},
                               timeout=30) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            kind = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    events.append((kind or "message", orjson.loads(line[6:])))
                    ready.set()

    t = threading.Thread(target=read)
    t.start()
    assert ready.wait(10)  # hello received: subscribed
    api.post("/api/v1/poles/NH-005/dim", json={"level": 25})
    fid = inject_fault("nanhuan-1", "NH-006")
    t.join(timeout=20)
    kinds = [k for k, _ in events]
    assert kinds[0] == "hello" and sorted(kinds[1:]) == ["alert", "command", "twin"], kinds
    alert = next(d for k, d in events if k == "alert")
    assert alert["fault_id"] == fid and "pole NH-006" in alert["location"]
    twin = next(d for k, d in events if k == "twin")
    assert twin["pole"] == "NH-005" and twin["level"] == 25 and twin["state"] == "dimmed"


def test_readyz_is_503_when_the_database_is_away(platform: Any, tmp_path: Any) -> None:
    from api.app import create_app
    from streetlight.settings import Settings

    class Broken:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def ready(self) -> dict[str, bool]:
            return {"broker": True, "database": False}

    app = create_app(Broken(platform), Settings(data_dir=tmp_path), tmp_path / "b.sqlite3")  # type: ignore[arg-type]
    with served(app) as url:
        r = httpx.get(f"{url}/readyz")
    assert r.status_code == 503 and r.json() == {"ready": False, "checks": {"broker": True, "database": False}}


def test_metrics_of_api_and_platform(api: Api) -> None:
    api.post("/api/v1/poles/NH-001/dim", json={"level": 60})
    api.get("/api/v1/poles")
    assert api.get("/metrics", role=None).status_code == 401
    text = api.get("/metrics").text
    assert 'streetlight_api_requests_total{method="GET",route="/api/v1/poles",status="200"}' in text
    assert 'streetlight_api_commands_total{target="pole"} 1.0' in text
    for name in ("streetlight_messages_in_total", "streetlight_messages_rejected_total",
                 "streetlight_points_written_total", "streetlight_spool_depth", "streetlight_command_latency_seconds"):
        assert name in text, name
