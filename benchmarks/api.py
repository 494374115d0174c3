"""``streetlight bench api``: an operator's road dim to the last pole's ack, and pole-list reads.

Two stacks in one run, each API in its own child process (uvicorn on loopback, one worker):

- **in-memory** (the baseline): the in-memory road, whose poles ack as fast as it produces
  acks, so the figures are the API's own cost;
- **live**: what ``streetlight serve`` runs (``LivePlatform``: gateway + controller + InfluxDB)
  behind the same API, against a real Mosquitto and InfluxDB, with the 93 simulated poles of
  the reference road in a third process, at :data:`LIVE_SPEED` × real time. The poles act on a
  command the moment it arrives, with no link delay (``--device-latency-ms 0``), so the dim
  latency is the platform's own: API, controller, broker, gateway and back.

Clients run in this process; each stack's read baseline is ``/api/v1/whoami`` (authentication
and routing, no road data), and every live row carries its ratio to the in-memory row.
"""

from __future__ import annotations

import multiprocessing as mp
import socket
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import orjson

from ops.servers import LOOPBACK, free_port

ROAD = "nanhuan-1"
LIVE_SPEED = 1.0  # real time: the poles answer on arrival, so no speed-up is needed to see the platform
LIVE_START = "2026-11-24 01:00"  # a quiet night: the controller dims, operators override


def _memory_child(conn: Connection, port: int) -> None:
    from api.app import ApiOptions, create_app
    from api.memory_platform import MemoryPlatform
    from api.serve import served
    from streetlight.registry import load_road
    from streetlight.settings import Settings

    folder = Path(tempfile.mkdtemp(prefix="sl-bench-api-"))
    platform = MemoryPlatform(load_road(ROAD), ack_delay_s=0.0)
    app = create_app(platform, Settings(data_dir=folder), folder / "api.sqlite3",
                     ApiOptions(commands_per_minute=1e9, command_burst=10**9))
    with served(app, port):
        conn.send({"token": app.state.ctx.tokens.create("admin", "bench")[0]})
        try:
            conn.recv()  # the parent's stop (or EOFError when it is gone)
        except EOFError:
            pass


def _live_child(conn: Connection, port: int) -> None:
    """Broker, database, gateway, controller and API, as ``streetlight serve`` runs them; stops on a message."""
    import shutil

    from api.app import ApiOptions, create_app
    from api.serve import served
    from ops.servers import InfluxServer, MosquittoServer
    from runtime.live_platform import LivePlatform
    from streetlight.registry import load_road
    from streetlight.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="sl-bench-api-live-"))
    mq = MosquittoServer(name="mosquitto", port=free_port(), data_dir=tmp / "mosquitto").start()
    db = InfluxServer(name="influxd", port=free_port(), data_dir=tmp / "influxd").start()
    platform: LivePlatform | None = None
    try:
        settings = Settings(mqtt_url=mq.url, influx_url=db.url, influx_db="bench", data_dir=tmp / "state")
        platform = LivePlatform(settings, [load_road(ROAD)])
        platform.start()
        app = create_app(platform, settings, tmp / "api.sqlite3",
                         ApiOptions(commands_per_minute=1e9, command_burst=10**9, deliver_webhooks=False))
        with served(app, port):
            conn.send({"token": app.state.ctx.tokens.create("admin", "bench")[0], "mqtt_url": mq.url})
            conn.recv()  # the parent's stop (or EOFError when it is gone)
    except EOFError:
        pass
    finally:
        if platform is not None:
            platform.stop()
        mq.stop()
        db.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _sim_child(conn: Connection, mqtt_url: str, speed: float) -> None:
    """The 93 simulated poles, one MQTT connection each, paced at ``speed``; stops on a message."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from simulators.device import fixed_link
    from simulators.runner import SimulationThread
    from simulators.scenario import Scenario
    from streetlight.registry import load_road

    road = load_road(ROAD)
    start = datetime.strptime(LIVE_START, "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(road.timezone))
    scenario = Scenario(name="bench-api", road=road, start_ms=int(start.timestamp() * 1000),
                        duration_s=7 * 86_400, speed=speed, seed=7, report_interval_s=10)
    # the poles act on a command as it arrives, with no link delay: the platform's latency is measured
    sim = SimulationThread(scenario, mqtt_url=mqtt_url, speed=speed, link=fixed_link(0)).start()
    conn.send({"started": True})
    try:
        conn.recv()
    except EOFError:
        pass
    finally:
        sim.stop()


@contextmanager
def _child(target: Callable[..., None], *args: Any, start_timeout_s: float = 90.0) -> Iterator[dict[str, Any]]:
    """Run ``target(conn, *args)`` in a spawned process; yield its first message; stop it on exit."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(child, *args), daemon=True)
    proc.start()
    try:
        deadline = time.monotonic() + start_timeout_s
        while not parent.poll(0.2):
            if not proc.is_alive():
                raise RuntimeError(f"{target.__name__} exited with code {proc.exitcode} before it was ready")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{target.__name__} did not start within {start_timeout_s:.0f} s")
        yield parent.recv()
    finally:
        try:
            parent.send("stop")
        except OSError:
            pass
        proc.join(timeout=30)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5)


def _wait_http(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API at {url} did not answer within {timeout_s:.0f} s") from None
            time.sleep(0.05)


def _wait_online(client: httpx.Client, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        poles = client.get("/api/v1/poles").json()["poles"]
        # online, and the road's time known (an operator's dim needs it)
        if poles and all(p["online"] and p["last_seen_ms"] for p in poles) and client.get("/readyz").status_code == 200:
            return
        if time.monotonic() > deadline:
            online = sum(1 for p in poles if p["online"])
            raise RuntimeError(f"only {online} of {len(poles)} simulated poles came online within {timeout_s:.0f} s")
        time.sleep(0.2)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class _Wire:
    """Watches the broker for the dim's commands and acks (QoS 0, its own connection), so the
    stage table can say where the time went; it never takes part in the measured path."""

    def __init__(self, mqtt_url: str) -> None:
        from urllib.parse import urlsplit

        import paho.mqtt.client as mqtt

        self.seen: dict[tuple[str, str], float] = {}  # (kind, cmd_id) -> wall time first seen
        self._lock = threading.Lock()
        self._ready = threading.Event()
        u = urlsplit(mqtt_url)
        c = self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-api-wire",
                                      protocol=mqtt.MQTTv5)
        c.on_connect = lambda cl, *_: cl.subscribe([(f"sl/v1/{ROAD}/+/cmd", 0), (f"sl/v1/{ROAD}/+/ack", 0)])
        c.on_subscribe = lambda *_: self._ready.set()
        c.on_message = self._on_message
        c.connect(u.hostname or LOOPBACK, u.port or 1883)
        c.loop_start()
        if not self._ready.wait(10):
            raise RuntimeError(f"could not watch the broker at {mqtt_url}")

    def _on_message(self, _c: object, _u: object, m: Any) -> None:
        t = time.time()
        kind = m.topic.rsplit("/", 1)[1]
        try:
            cmd_id = orjson.loads(m.payload)["cmd_id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        with self._lock:
            self.seen.setdefault((kind, cmd_id), t)

    def span(self, kind: str, ids: list[str]) -> tuple[float, float] | None:
        with self._lock:
            times = [self.seen[(kind, i)] for i in ids if (kind, i) in self.seen]
        return (min(times), max(times)) if len(times) == len(ids) else None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# the stages of one road dim, each as wall time since the request left the client (ms)
STAGES = ("first command issued", "last command issued", "first command at the broker",
          "last command at the broker", "API answered the dim", "first ack at the broker",
          "last ack at the broker", "last ack settled by the platform", "client saw the last ack")


def _stages(t0: float, answered: float, done: float, batch: dict[str, Any], wire: _Wire | None,
            ids: list[str]) -> dict[str, float]:
    issued = [c["issued_ms"] / 1000 for c in batch["commands"]]
    settled = [p["ack_ms"] / 1000 for c in batch["commands"] for p in c["poles"].values() if p["ack_ms"]]
    out = {"first command issued": min(issued), "last command issued": max(issued), "API answered the dim": answered,
           "client saw the last ack": done}
    if settled:
        out["last ack settled by the platform"] = max(settled)
    if wire is not None:
        for kind, name in (("cmd", "command"), ("ack", "ack")):
            span = wire.span(kind, ids)
            if span is not None:
                out[f"first {name} at the broker"], out[f"last {name} at the broker"] = span
    return {k: (v - t0) * 1000 for k, v in out.items()}


def _road_dim(client: httpx.Client, runs: int, wire: _Wire | None = None,
              timeout_s: float = 30.0) -> list[dict[str, Any]]:
    latencies = []
    acked = 0
    errors: Counter[str] = Counter()
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    for i in range(runs):
        t0 = time.time()  # wall time: the platform's command times are wall times, in another process
        p0 = time.perf_counter()
        r = client.post(f"/api/v1/roads/{ROAD}/dim", json={"level": 30 + i % 50, "confirm": True})
        r.raise_for_status()
        answered = time.time()
        ids = r.json()["command_ids"]
        while not (batch := client.get("/api/v1/commands", params={"ids": ",".join(ids)}).json())["done"]:
            if time.perf_counter() - p0 > timeout_s:
                raise RuntimeError(f"road dim {i}: {batch['summary']} after {timeout_s:.0f} s")
            time.sleep(0.002)
        latencies.append((time.perf_counter() - p0) * 1000)
        done = time.time()
        time.sleep(0.05)  # the watcher's last ack may still be on its way
        for name, ms in _stages(t0, answered, done, batch, wire, ids).items():
            stages[name].append(ms)
        acked += batch["summary"].get("acked", 0)
        errors.update(p["error"] or p["status"] for c in batch["commands"] for p in c["poles"].values()
                      if p["status"] != "acked")
    row = {"case": "road dim → last ack (93 poles)", "runs": runs, "acked_pct": 100.0 * acked / (93 * runs),
           "median_ms": statistics.median(latencies), "p95_ms": _pct(latencies, 0.95), "p99_ms": _pct(latencies, 0.99)}
    if errors:  # a command that was not acked says why (fallback, no ack after retries)
        row["not_acked"] = "; ".join(f"{n}× {e[:60]}" for e, n in errors.most_common(2))
    rows = [row]
    for name in STAGES:  # where the time went: each stage's time since the request, over the runs
        if v := stages[name]:
            rows.append({"case": f"  dim stage: {name}", "runs": len(v), "median_ms": statistics.median(v),
                         "p95_ms": _pct(v, 0.95), "p99_ms": _pct(v, 0.99)})
    return rows


def _client(port: int, path: str, token: str, stop: float, lat: list[float]) -> None:
    """A minimal keep-alive HTTP/1.1 client: an httpx client tops out near the server's own rate here,
    so it would measure itself."""
    req = f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    with socket.create_connection((LOOPBACK, port)) as sock, sock.makefile("rb") as f:
        while time.perf_counter() < stop:
            t = time.perf_counter()
            sock.sendall(req)
            status = f.readline()
            length = 0
            while (header := f.readline()) not in (b"\r\n", b""):
                if header.lower().startswith(b"content-length:"):
                    length = int(header.split(b":", 1)[1])
            f.read(length)
            if b" 200 " not in status:
                raise RuntimeError(f"GET {path}: {status!r}")
            lat.append((time.perf_counter() - t) * 1000)


def _reads(port: int, token: str, path: str, clients: int, seconds: float) -> dict[str, Any]:
    lat: list[float] = []
    stop = time.perf_counter() + seconds
    threads = [threading.Thread(target=_client, args=(port, path, token, stop, lat)) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return {"case": f"GET {path} × {clients} clients", "requests": len(lat), "req_per_s": len(lat) / elapsed,
            "median_ms": statistics.median(lat), "p99_ms": _pct(lat, 0.99)}


def _measure(stack: str, port: int, token: str, quick: bool, mqtt_url: str | None = None,
             dims_only: bool = False) -> list[dict[str, Any]]:
    url = f"http://{LOOPBACK}:{port}"
    _wait_http(url)
    rows = []
    wire = _Wire(mqtt_url) if mqtt_url else None
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            if mqtt_url:
                _wait_online(client)
            rows += _road_dim(client, 5 if quick else 40, wire)
    finally:
        if wire is not None:
            wire.close()
    if dims_only:
        return [{"case": r.pop("case"), "stack": stack, **r} for r in rows]
    seconds = 1.0 if quick else 5.0
    base = _reads(port, token, "/api/v1/whoami", 4, seconds)
    base["vs_whoami"] = 1.0
    rows.append(base)
    for clients in ((1, 8) if quick else (1, 4, 16)):
        row = _reads(port, token, "/api/v1/poles", clients, seconds)
        row["vs_whoami"] = row["req_per_s"] / base["req_per_s"]
        rows.append(row)
    return [{"case": r.pop("case"), "stack": stack, **r} for r in rows]


def _ratios(live: list[dict[str, Any]], memory: list[dict[str, Any]]) -> None:
    """Each live row against the in-memory row of the same case: latency × (median) and rate ×."""
    base = {r["case"]: r for r in memory}
    for r in memory:
        if "req_per_s" in r:
            r["rate_vs_memory"] = 1.0
        else:
            r["median_vs_memory"] = 1.0
    for r in live:
        m = base.get(r["case"])
        if m is None:
            continue
        if "req_per_s" in r:
            r["rate_vs_memory"] = r["req_per_s"] / m["req_per_s"]
        else:
            r["median_vs_memory"] = r["median_ms"] / m["median_ms"]


def live_dims(quick: bool = False) -> list[dict[str, Any]]:
    """Only the live stack's road dims and their stages (to compare two trees back to back)."""
    port = free_port()
    with _child(_live_child, port) as hello, _child(_sim_child, hello["mqtt_url"], LIVE_SPEED):
        return _measure(f"live, road ×{LIVE_SPEED:g}", port, hello["token"], quick, hello["mqtt_url"], dims_only=True)


def run(quick: bool) -> list[dict[str, Any]]:
    port = free_port()
    with _child(_memory_child, port) as hello:
        memory = _measure("in-memory", port, hello["token"], quick)
    port = free_port()
    with _child(_live_child, port) as hello, _child(_sim_child, hello["mqtt_url"], LIVE_SPEED):
        live = _measure(f"live, road ×{LIVE_SPEED:g}", port, hello["token"], quick, hello["mqtt_url"])
    _ratios(live, memory)
    return memory + live
