"""Two core processes for one road, on a shared subscription, with road leases on PostgreSQL.

The lease holder decides for the road; the other hears every message and stands by. Killed
(SIGKILL), the holder's road is taken over within one report interval (the lease is 0.6 of it); no
command is ever sent by both (each process's commands carry its own id prefix, counted per pole
by a watcher on ``sl/v1/+/+/cmd``); an operator's dim through the API process afterwards is acked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from api.auth import TokenStore
from api.store import Store
from benchmarks.failover import CommandWatch, sender
from ops.servers import InfluxServer, MosquittoServer, PostgresServer, free_port
from runtime.leases import Lease, LeaseStore
from simulators.runner import SimulationThread
from simulators.scenario import load_scenario
from streetlight.clock import wall_ms
from streetlight.statedb import Database

from ..serving import stop_all
from .conftest import wait_until

pytestmark = pytest.mark.servers
ROAD = "synthetic-12"
REPORT_S = 4  # the poles' report interval; the core processes' lease is 0.6 of it
SCENARIO = {
    "name": "failover", "description": "A quiet night on a short road, for the controller failover test.",
    "road": ROAD, "start": "2026-11-24 01:00", "duration": "1h", "speed": 1, "seed": 3,
    "report_interval_s": REPORT_S, "faults": [], "expected": [],
}


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[MosquittoServer, InfluxServer]]:
    mq = MosquittoServer(name="mosquitto", port=free_port(), data_dir=tmp_path / "mosquitto").start()
    db = InfluxServer(name="influxd", port=free_port(), data_dir=tmp_path / "influxd").start()
    try:
        yield mq, db
    finally:
        mq.stop()
        db.stop()


def test_a_killed_controller_s_road_is_taken_over_and_never_commanded_twice(
        tmp_path: Path, servers: tuple[MosquittoServer, InfluxServer], postgres: PostgresServer) -> None:
    mq, influx = servers
    state_url = postgres.create_database(f"failover{os.getpid()}")
    var = tmp_path / "var"
    port = free_port()
    env = {**os.environ, "STREETLIGHT_MQTT_URL": mq.url, "STREETLIGHT_INFLUX_URL": influx.url,
           "STREETLIGHT_INFLUX_DB": "failover", "STREETLIGHT_DATA_DIR": str(var), "STREETLIGHT_STATE_URL": state_url,
           "STREETLIGHT_LOG_LEVEL": "WARNING"}
    common = [sys.executable, "-m", "streetlight", "serve", "--road", ROAD, "--report-interval-s", str(REPORT_S)]

    def start(*args: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{args[-1]}.log").open("wb")
        return subprocess.Popen(common + list(args), env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def core(name: str) -> subprocess.Popen[bytes]:
        return start("--only", "gateway", "--only", "controller", "--shared-group", "cores", "--client-id", name)

    db = Database(state_url)
    leases = LeaseStore(db)
    watch = CommandWatch(mq.port)
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(SCENARIO))
    sim = SimulationThread(load_scenario(str(tmp_path / "scenario.yaml")), mqtt_url=mq.url, speed=1).start()
    procs: list[subprocess.Popen[bytes]] = []
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        procs.append(core("core-a"))
        first: Lease = wait_until(lambda: leases.get(ROAD), 30, "core-a to take the road's lease")
        assert first.holder == "core-a"
        procs.append(core("core-b"))
        procs.append(start("--only", "api", "--port", str(port), "--client-id", "api"))
        store = Store(state_url)
        token = TokenStore(store).create("operator", "failover-test")[0]
        store.close()
        api.headers["Authorization"] = f"Bearer {token}"

        def ready() -> bool:
            try:
                return api.get("/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 30, "the API process ready")
        # the holder commands the road (its first tick decides every pole); the standby nothing
        wait_until(lambda: len({p for _, p, _ in watch.snapshot()[0]}) == 12, 30, "a command to every pole")
        time.sleep(REPORT_S)  # both controllers hear the road for a report interval: the standby stays silent
        assert len({sender(c) for _, _, c in watch.snapshot()[0]}) == 1

        killed_ms = wall_ms()
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        taken: Lease = wait_until(lambda: (lease := leases.get(ROAD)) is not None and lease.holder == "core-b"
                                  and lease, 2 * REPORT_S + 10, "core-b to take the road over")
        takeover_s = (taken.taken_ms - killed_ms) / 1000
        print(f"\ncore-b took {ROAD} over {takeover_s:.2f} s after core-a was killed "
              f"(goal: one report interval, {REPORT_S} s); lease epoch {taken.epoch}")
        assert taken.epoch == first.epoch + 1
        assert 0 < takeover_s <= 2 * REPORT_S  # twice the goal: a loaded machine delays the claiming thread

        # the operator's dim through the API process reaches the new holder and is acked
        def dim() -> list[str] | None:
            r = api.post("/api/v1/poles/SY-005/dim", json={"level": 35, "ramp_ms": 0, "expires_in_s": 600})
            return r.json()["command_ids"] if r.status_code == 202 else None

        [cmd_id] = wait_until(dim, 20, "the API process to take a dim after the takeover")
        done = wait_until(lambda: (c := api.get(f"/api/v1/commands/{cmd_id}").json())["done"] and c, 20,
                          "the dim's ack")
        assert done["summary"]["acked"] == 1, done

        # no pole was ever commanded by both: per pole, every command of the killed process came
        # before the kill and every command of the survivor after the takeover
        seen = watch.snapshot()[0]
        by_sender: dict[str, list[int]] = {}
        per_pole: dict[str, dict[str, int]] = {}
        for at, pole, c in seen:
            by_sender.setdefault(sender(c), []).append(at)
            per_pole.setdefault(pole, {}).setdefault(sender(c), 0)
            per_pole[pole][sender(c)] += 1
        assert len(by_sender) == 2, by_sender.keys()
        [(old, old_at), (new, new_at)] = sorted(by_sender.items(), key=lambda kv: min(kv[1]))
        assert max(old_at) <= killed_ms and min(new_at) >= taken.taken_ms, (old, new)
        assert sender(cmd_id) == new
        print("commands per pole (killed holder / new holder): "
              + ", ".join(f"{p} {n.get(old, 0)}/{n.get(new, 0)}" for p, n in sorted(per_pole.items())))
    finally:
        api.close()
        watch.close()
        sim.stop_event.set()
        sim.join(30)
        stop_all(procs)
        db.close()
