"""Readings, energy, schedules, the live stream, readiness and metrics."""

from __future__ import annotations

import io
import threading
from typing import Any

import httpx
import orjson
import pandas as pd

from api.models import ScheduleOut
from api.serve import served
from controller.schedule import night_of

from .conftest import Api, wait_until

DAY = 86_400_000
HOUR = 3_600_000


def road_now(api: Api) -> int:
    """The platform's time: the wall clock in memory, the road's (simulated) time live."""
    return int(api.get("/api/v1/poles").json()["now_ms"])


def test_pole_readings_json_and_csv(api: Api) -> None:
    def fetch() -> tuple[dict[str, Any], dict[str, Any]] | None:
        # a road that has just started has its first readings at "now": ask again as time moves on
        end = road_now(api)
        params = {"start_ms": end - 2 * HOUR, "end_ms": end, "every_s": 600}
        b = api.get("/api/v1/poles/NH-047/readings", params=params).json()
        return (params, b) if b["count"] else None

    params, body = wait_until(fetch, 20, "NH-047's readings in the database")
    start, end = params["start_ms"], params["end_ms"]
    assert 1 <= body["count"] <= 13 and {"time", "pole", "dim", "power_w"} <= set(body["columns"])
    assert all(r["pole"] == "NH-047" and start - 600_000 <= r["time"] <= end for r in body["readings"])
    assert all(0 <= r["dim"] <= 100 and r["power_w"] >= 0 for r in body["readings"])
    csv = api.get("/api/v1/poles/NH-047/readings", params={**params, "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    df = pd.read_csv(io.StringIO(csv.text))
    assert len(df) == body["count"] and list(df.columns) == body["columns"]


def test_segment_readings_and_range_errors(api: Api, road: Any) -> None:
    end = road_now(api)
    body = api.get("/api/v1/segments/S1/readings", params={"start_ms": end - 6 * HOUR, "end_ms": end,
                                                           "every_s": 21600}).json()
    assert {r["pole"] for r in body["readings"]} == {p.id for p in road.poles_of_segment("S1")}
    for empty in ({"start_ms": end, "end_ms": end}, {"start_ms": end, "end_ms": end - 1}):
        body = api.get("/api/v1/segments/S1/readings", params=empty).json()
        assert body["count"] == 0 and body["readings"] == [] and "power_w" in body["columns"]
    # 23 poles over a year at 1 s would be 725 million rows: the answer comes at a resolution that fits
    wide = api.get("/api/v1/segments/S1/readings", params={"start_ms": end - 365 * DAY, "end_ms": end, "every_s": 1})
    assert wide.status_code == 200 and wide.json()["every_s"] >= 365 * 86_400 * 23 // 200_000
    assert wide.json()["count"] <= 200_000


def test_latest_and_energy(api: Api, road: Any) -> None:
    latest = api.get("/api/v1/readings/latest").json()
    assert latest["count"] == len(road.poles)
    tonight = night_of(road_now(api), road.timezone).isoformat()
    energy = api.get("/api/v1/energy", params={"day": tonight}).json()
    assert energy["day"] == tonight and len(energy["poles"]) == len(road.poles)
    assert len(energy["segments"]) == len(road.segments)
    # (measured energy may pass the rated baseline early in a busy evening: drivers draw a little over rated)
    assert energy["baseline_kwh"] > 0 and energy["energy_kwh"] > 0
    assert abs(energy["savings_kwh"] - (energy["baseline_kwh"] - energy["energy_kwh"])) < 0.01
    assert abs(sum(s["energy_kwh"] for s in energy["segments"]) - energy["energy_kwh"]) < 0.01
    # a violation is a segment that spent time under its floor (a forced dim), on both platforms
    assert energy["violations"] == sum(1 for s in energy["segments"] if s["minutes_under_floor"] > 0)
    assert energy["violations"] == sum(s["violations"] for s in energy["segments"])


def test_a_forced_dim_under_the_floor_is_a_violation(api: Api, road: Any) -> None:
    tonight = night_of(road_now(api), road.timezone).isoformat()
    r = api.post("/api/v1/poles/NH-080/dim", role="admin", json={"level": 0, "force": True, "expires_in_s": 120})
    assert r.status_code == 202 and r.json()["applied"][0]["rule"] == "forced", r.text
    seg = road.pole("NH-080").segment
    api.wait_command(r.json()["command_ids"][0])

    def under() -> dict[str, Any] | None:
        segments = api.get("/api/v1/energy", params={"day": tonight}).json()["segments"]
        s = next(x for x in segments if x["segment"] == seg)
        return s if s["minutes_under_floor"] > 0 else None

    s = wait_until(under, 30, f"segment {seg}'s minutes under its floor")
    assert s["violations"] == 1


def test_schedules_crud_and_active(api: Api, road: Any) -> None:
    base = api.get("/api/v1/schedules").json()
    assert any(s["kind"] == "default" and not s["segments"] for s in base), base  # a road-wide default
    before = api.get("/api/v1/schedules/active").json()
    assert set(before["segments"]) == {s.id for s in road.segments}
    assert set(before["segments"].values()) <= {s["id"] for s in base}
    tonight = night_of(before["now_ms"], road.timezone).isoformat()  # before noon: the night before
    exc = {"name": "Festival", "kind": "exception", "segments": ["S2"], "dates": [tonight], "priority": 50,
           "steps": [{"at": "dusk", "level": 100}, {"at": "dawn", "level": 0}]}
    created = api.post("/api/v1/schedules", json=exc)
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    segs = api.get("/api/v1/schedules/active").json()["segments"]
    assert segs["S2"] == sid and segs["S1"] == before["segments"]["S1"]
    upd = api.client.put(f"/api/v1/schedules/{sid}", headers=api.auth("operator"), json={**exc, "segments": ["S3"]})
    assert upd.status_code == 200 and upd.json()["segments"] == ["S3"]
    segs = api.get("/api/v1/schedules/active").json()["segments"]
    assert segs["S3"] == sid and segs["S2"] == before["segments"]["S2"]
    bad = api.post("/api/v1/schedules", json={**exc, "segments": ["S9"]})
    assert bad.status_code == 404 and "S9" in bad.json()["detail"]
    badstep = api.post("/api/v1/schedules", json={**exc, "steps": [{"at": "25:00", "level": 10}]})
    assert badstep.status_code == 422
    assert api.client.delete(f"/api/v1/schedules/{sid}", headers=api.auth("operator")).status_code == 204
    assert api.get(f"/api/v1/schedules/{sid}").status_code == 404
    assert api.get("/api/v1/schedules/active").json()["segments"] == before["segments"]
    actions = [e["action"] for e in api.get("/api/v1/audit").json()["entries"]]
    assert actions[:3] == ["delete_schedule", "update_schedule", "create_schedule"]


def test_a_schedule_is_answered_with_the_same_bytes_however_it_is_asked_for(api: Api) -> None:
    # keys in another order than the answers', levels as an operator types them; a night far away,
    # so that the road runs as it did while the test's exception exists
    body = {"steps": [{"at": "dusk", "level": 90}, {"at": "23:30", "level": 42.5}, {"at": "dawn", "level": 0}],
            "priority": 7, "dates": ["2027-02-06"], "segments": ["S4", "S1"], "kind": "exception", "name": "Lanterns"}
    created = api.post("/api/v1/schedules", json=body)
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    try:
        got = api.get(f"/api/v1/schedules/{sid}")
        assert got.status_code == 200, got.text
        assert created.content == got.content
        assert list(got.json()) == list(ScheduleOut.model_fields)
        assert got.content in api.get("/api/v1/schedules").content  # listed with the same bytes
        updated = api.client.put(f"/api/v1/schedules/{sid}", headers=api.auth("operator"),
                                 json={**body, "priority": 8, "dates": ["2027-02-06", "2027-02-07"]})
        assert updated.status_code == 200, updated.text
        assert updated.content == api.get(f"/api/v1/schedules/{sid}").content
        assert updated.json()["dates"] == ["2027-02-06", "2027-02-07"] and updated.json()["steps"][1] == {
            "at": "23:30", "level": 42.5}
    finally:
        assert api.client.delete(f"/api/v1/schedules/{sid}", headers=api.auth("operator")).status_code == 204


def test_live_stream_carries_twin_command_and_alert_events(api: Api, inject_fault: Any) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    ready, seen = threading.Event(), threading.Event()
    want: dict[str, Any] = {}

    def complete() -> bool:
        return (any(k == "alert" and d.get("fault_id") == want.get("fault") for k, d in events)
                and any(k == "command" and d.get("pole") == "NH-005" for k, d in events)
                and any(k == "twin" and d.get("pole") == "NH-005" and d.get("level") == want.get("level")
                        for k, d in events))

    def read() -> None:
        # a live road streams every pole's changes: read until this test's three have passed by
        with api.client.stream("GET", "/api/v1/stream", headers=api.auth("viewer"), params={"max_events": 5000},
                               timeout=30) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            kind = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    events.append((kind or "message", orjson.loads(line[6:])))
                    ready.set()
                    if want and complete():
                        seen.set()
                        return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    assert ready.wait(10)  # hello received: subscribed
    dim = api.post("/api/v1/poles/NH-005/dim", json={"level": 40, "expires_in_s": 600}).json()
    want["level"] = dim["applied"][0]["level"]
    want["fault"] = fid = inject_fault("nanhuan-1", "NH-006")
    assert seen.wait(30) or complete(), [(k, d.get("pole"), d.get("fault_id")) for k, d in events][-20:]
    assert events[0][0] == "hello" and {k for k, _ in events} <= {"hello", "twin", "command", "alert"}
    alert = next(d for k, d in events if k == "alert" and d.get("fault_id") == fid)
    assert "pole NH-006" in alert["location"]
    twin = next(d for k, d in events if k == "twin" and d.get("pole") == "NH-005" and d.get("level") == want["level"])
    assert twin["state"] in ("dimmed", "lit", "fault")
    command = next(d for k, d in events if k == "command" and d.get("pole") == "NH-005")
    assert command["cmd_id"] == dim["command_ids"][0] and command["status"] in ("acked", "pending")


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
