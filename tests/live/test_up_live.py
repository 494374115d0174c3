"""``streetlight up`` runs the whole road; an operator dims a segment through the API; Ctrl-C leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from .conftest import wait_until

pytestmark = pytest.mark.servers


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _run_up(tmp_path: Path, check: Any, args: tuple[str, ...] = ("--speed", "20", "--scenario", "normal-night"),
            state_of: dict[str, Any] | None = None) -> str:
    """``streetlight up ARGS`` in ``tmp_path``; ``check(api)`` against its API; Ctrl-C; its output.
    ``state_of`` gets what ``up.json`` said while it ran."""
    env = {**os.environ, "STREETLIGHT_DATA_DIR": str(tmp_path / "var"), "STREETLIGHT_LOG_LEVEL": "WARNING"}
    env.pop("STREETLIGHT_MQTT_URL", None)
    env.pop("STREETLIGHT_STATE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streetlight", "up", *args,
         "--mqtt-port", "0", "--mqtt-tls-port", "0", "--influx-port", "0", "--api-port", "0"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    state_file = tmp_path / "var" / "up.json"
    pids: list[int] = []
    try:
        state = wait_until(lambda: state_file.exists() and json.loads(state_file.read_text()), 120, "up.json")
        if state_of is not None:
            state_of.update(state)
        pids = [c["pid"] for c in state["started"]]
        assert state["token"], "up prints an operator token"
        with httpx.Client(base_url=state["api_url"], headers={"Authorization": f"Bearer {state['token']}"},
                          timeout=30) as api:
            check(api)
        # every process up started, and theirs (serve's by role, PostgreSQL's backends), all running now
        pids += [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    assert "nothing left running" in text
    assert pids and all(wait_until(lambda p=p: _gone(p), 20, f"pid {p} gone") for p in pids)
    assert not state_file.exists()
    return text


def test_up_runs_the_road_and_stops_cleanly_twice_in_one_folder(tmp_path: Path) -> None:
    def dim_s3(api: httpx.Client) -> None:
        wait_until(lambda: sum(p["online"] for p in api.get("/api/v1/poles").json()["poles"]) == 93,
                   120, "93 poles online")
        resp = api.post("/api/v1/segments/S3/dim", json={"level": 70, "expires_in_s": 600})
        assert resp.status_code == 202, resp.text
        ids = resp.json()["command_ids"]
        assert len(ids) == 23
        batch = wait_until(lambda: (b := api.get("/api/v1/commands", params={"ids": ",".join(ids)}).json())["done"]
                           and b, 60, "acks from S3")
        assert batch["summary"]["acked"] == 23, batch["summary"]

    _run_up(tmp_path, dim_s3)

    def nothing_carried_over(api: httpx.Client) -> None:
        # the same simulated hours again: nothing the first run left is taken for this run's (its
        # queued readings would have made every pole's clock look hours off)
        wait_until(lambda: sum(p["online"] for p in api.get("/api/v1/poles").json()["poles"]) == 93,
                   120, "93 poles online")
        time.sleep(3)  # a few report intervals of road time at x20
        faults = api.get("/api/v1/faults", params={"state": "open"}).json()["faults"]
        assert faults == [], [f["summary"] for f in faults]

    text = _run_up(tmp_path, nothing_carried_over)
    assert "starts afresh" in text


def test_up_processes_runs_the_road_split_by_role_on_postgresql_and_stops_it_all(tmp_path: Path) -> None:
    def served(api: httpx.Client) -> None:
        wait_until(lambda: api.get("/readyz").status_code == 200, 120, "/readyz")
        poles = wait_until(lambda: [p for p in api.get("/api/v1/poles").json()["poles"] if p["online"]
                                    and p["power_w"] is not None], 120, "poles with readings")
        assert {p["road"] for p in poles} == {"nanhuan-1"} and poles[0]["level"] is not None
        # the first lamp fails 30 min into the night (30 s at x60): the API processes read the fault the
        # controller that holds the road stored in PostgreSQL
        faults = wait_until(lambda: api.get("/api/v1/faults").json()["faults"], 150, "the first lamp failure")
        assert {(f["type"], f["pole"]) for f in faults} == {("lamp_failure", "NH-012")}

    state: dict[str, Any] = {}
    text = _run_up(tmp_path, served, ("--processes", "--speed", "60", "--scenario", "lamp-failures",
                                      "--postgres-port", "0"), state)
    names = ["gateway-1", "gateway-2", "controller-1", "controller-2", "api-1", "api-2"]
    assert state["processes"] == names
    assert state["state_url"].startswith("postgresql://") and state["state_url"].endswith("/streetlight")
    assert "postgres" in {c["name"] for c in state["started"]}
    assert f"processes  6: {', '.join(names)}" in text
    supervisor = (tmp_path / "var" / "logs" / "serve.log").read_text()
    started = {line.split()[2] for line in supervisor.splitlines() if line.startswith("started the ")}
    assert started == set(names), supervisor[-2000:]
