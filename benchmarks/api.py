"""``streetlight bench api``: an operator's road dim to the last pole's ack, and pole-list reads.

Two stacks in one run, each API in its own child process (uvicorn on loopback, one worker):

- **in-memory** (the baseline): the in-memory road, whose poles ack as fast as it produces
  acks, so the figures are the API's own cost;
- **live**: what ``streetlight serve`` runs (``LivePlatform``: gateway + controller + InfluxDB)
  behind the same API, against a real Mosquitto and InfluxDB, with the 93 simulated poles of
  the reference road in a third process, at :data:`LIVE_SPEED` × real time. The poles act on a
  command the moment it arrives, with no link delay (``--device-latency-ms 0``), so the dim
  latency is the platform's own: API, controller, broker, gateway and back.

The last rows (:func:`run_split`) measure ``streetlight serve`` as operators run it, the API in
its own process: the same road dim at ×1 (:func:`split_dims`), then reads and the live stream with
the road at ×60.

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
        while True:
            t0 = time.time()  # wall time: the platform's command times are wall times, in another process
            p0 = time.perf_counter()
            r = client.post(f"/api/v1/roads/{ROAD}/dim", json={"level": 30 + i % 50, "confirm": True})
            if r.status_code != 429:
                break
            # the operator's command rate limit (api.app.ApiOptions): wait as told, as a client would;
            # the wait is not part of any dim's latency
            time.sleep(float(r.headers.get("Retry-After", "1")))
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
             dims_only: bool = False, dims: int | None = None) -> list[dict[str, Any]]:
    url = f"http://{LOOPBACK}:{port}"
    _wait_http(url)
    rows = []
    wire = _Wire(mqtt_url) if mqtt_url else None
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            if mqtt_url:
                _wait_online(client)
            rows += _road_dim(client, dims or (5 if quick else 40), wire)
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


def live_dims(quick: bool = False, dims: int | None = None) -> list[dict[str, Any]]:
    """Only the live stack's road dims and their stages (to compare two trees back to back)."""
    port = free_port()
    with _child(_live_child, port) as hello, _child(_sim_child, hello["mqtt_url"], LIVE_SPEED):
        return _measure(f"live, road ×{LIVE_SPEED:g}", port, hello["token"], quick, hello["mqtt_url"],
                        dims_only=True, dims=dims)


def run(quick: bool) -> list[dict[str, Any]]:
    port = free_port()
    with _child(_memory_child, port) as hello:
        memory = _measure("in-memory", port, hello["token"], quick)
    port = free_port()
    with _child(_live_child, port) as hello, _child(_sim_child, hello["mqtt_url"], LIVE_SPEED):
        live = _measure(f"live, road ×{LIVE_SPEED:g}", port, hello["token"], quick, hello["mqtt_url"])
    _ratios(live, memory)
    return memory + live + run_split(quick)


# -- the API in its own process: reads and the live stream while the road is ingested at ×60 ----------
SPLIT_SPEED = 60.0
STREAM_POLE = "NH-050"


@contextmanager
def _split_stack(speed: float) -> Iterator[dict[str, Any]]:
    """Broker and database, ``streetlight serve`` as it runs by default (a core process and an API
    process it supervises) and the simulated road at ``speed``; yields the API's port, a token and
    the broker's address."""
    import os
    import shutil
    import signal
    import subprocess
    import sys

    from api.auth import TokenStore
    from api.store import Store
    from ops.servers import InfluxServer, MosquittoServer

    tmp = Path(tempfile.mkdtemp(prefix="sl-bench-api-split-"))
    mq = MosquittoServer(name="mosquitto", port=free_port(), data_dir=tmp / "mosquitto").start()
    db = InfluxServer(name="influxd", port=free_port(), data_dir=tmp / "influxd").start()
    port = free_port()
    env = {**os.environ, "STREETLIGHT_MQTT_URL": mq.url, "STREETLIGHT_INFLUX_URL": db.url,
           "STREETLIGHT_INFLUX_DB": "bench", "STREETLIGHT_DATA_DIR": str(tmp / "state"),
           "STREETLIGHT_API_PORT": str(port), "STREETLIGHT_LOG_LEVEL": "WARNING"}
    serve = subprocess.Popen([sys.executable, "-m", "streetlight", "serve", "--road", ROAD], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        token = TokenStore(Store(tmp / "state" / "api.sqlite3")).create("admin", "bench")[0]
        with _child(_sim_child, mq.url, speed):
            yield {"port": port, "token": token, "mqtt_url": mq.url, "serve_pid": serve.pid}
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
        mq.stop()
        db.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _stream_latency(port: int, token: str, mqtt_url: str, samples: int, timeout_s: float = 10.0) -> dict[str, Any]:
    """A pole's change from its publish to a dashboard's live stream: the bench publishes the pole's
    status, offline then online in turn (what a pole's will and its return look like), and times
    the ``twin`` event saying so on ``GET /api/v1/stream`` (Server-Sent Events)."""
    import json
    from urllib.parse import urlsplit

    import paho.mqtt.client as mqtt

    from streetlight.protocol import pole_topic

    seen: list[tuple[float, bool]] = []
    cond = threading.Condition()
    stop = threading.Event()

    def listen() -> None:
        try:
            with httpx.Client(base_url=f"http://{LOOPBACK}:{port}", timeout=None) as client, \
                    client.stream("GET", "/api/v1/stream", headers={"Authorization": f"Bearer {token}"}) as r:
                kind = ""
                for line in r.iter_lines():
                    if stop.is_set():
                        return
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:") and kind == "twin":
                        t = time.perf_counter()
                        d = json.loads(line[5:])
                        if d.get("pole") == STREAM_POLE:
                            with cond:
                                seen.append((t, bool(d.get("online"))))
                                cond.notify_all()
        except httpx.HTTPError:
            if not stop.is_set():  # the stack stopping ends the stream; anything else is a finding
                raise

    reader = threading.Thread(target=listen, name="bench-stream", daemon=True)
    reader.start()
    time.sleep(1.0)  # the stream open before the first change
    url = urlsplit(mqtt_url)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-stream-pole", protocol=mqtt.MQTTv5)
    pub.connect(url.hostname or LOOPBACK, url.port or 1883)
    pub.loop_start()
    latencies: list[float] = []
    lost = 0
    topic = pole_topic(ROAD, STREAM_POLE, "status")
    try:
        for i in range(samples):
            online = i % 2 == 1
            with cond:
                start = len(seen)
            t0 = time.perf_counter()
            pub.publish(topic, b"online" if online else b"offline", qos=1).wait_for_publish(5)
            def arrived(want: bool = online, n: int = start) -> bool:
                return any(o == want for _, o in seen[n:])

            with cond:
                got = cond.wait_for(arrived, timeout_s)
                if got:
                    latencies.append((next(t for t, o in seen[start:] if o == online) - t0) * 1000)
                else:
                    lost += 1
            time.sleep(0.05)
    finally:
        stop.set()
        pub.loop_stop()
        pub.disconnect()
    if not latencies:
        raise RuntimeError(f"no change of {STREAM_POLE} reached the live stream within {timeout_s:.0f} s")
    return {"case": f"live stream: a pole's status, publish → SSE client ({samples} changes)",
            "events": len(latencies), "lost": lost, "median_ms": statistics.median(latencies),
            "p99_ms": _pct(latencies, 0.99), "max_ms": max(latencies)}


def _cpu_s(pid: int) -> float:
    import psutil

    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def _reads_cpu(pid: int, port: int, token: str, clients: int, seconds: float) -> dict[str, Any]:
    """``GET /api/v1/poles`` reads, with the CPU time the API's process spent per request: what
    the API itself costs, whatever else the machine is doing."""
    before = _cpu_s(pid)
    r = _reads(port, token, "/api/v1/poles", clients, seconds)
    r["api_cpu_ms_per_req"] = (_cpu_s(pid) - before) * 1000 / max(1, r["requests"])
    return r


def _api_pid(serve_pid: int) -> int:
    import psutil

    for c in psutil.Process(serve_pid).children():
        argv = c.cmdline()
        if ["--only", "api"] in [argv[i:i + 2] for i in range(len(argv) - 1)]:
            return int(c.pid)
    raise RuntimeError("serve runs no API process")


def split_dims(quick: bool = False, dims: int | None = None) -> list[dict[str, Any]]:
    """The operator's road dim and its stages on ``streetlight serve`` as operators run it: the API
    process hands the dim to the core process over the control channel, the road at ×1 and its
    poles answering on arrival (``--device-latency-ms 0``)."""
    label = f"serve, API in its own process, road ×{LIVE_SPEED:g}"
    with _split_stack(LIVE_SPEED) as stack:
        url = f"http://{LOOPBACK}:{stack['port']}"
        _wait_http(url, 90)
        wire = _Wire(stack["mqtt_url"])
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {stack['token']}"}, timeout=30) as c:
                _wait_online(c)
                rows = _road_dim(c, dims or (5 if quick else 40), wire)
        finally:
            wire.close()
    return [{"case": r.pop("case"), "stack": label, **r} for r in rows]


def run_split(quick: bool) -> list[dict[str, Any]]:
    """``GET /api/v1/poles`` with 4 and 16 clients on the in-memory platform, then on ``streetlight
    serve`` (the API in its own process) with the road ingested at ×60, and the live stream's delay;
    first the road dim on the same stack at ×1 (:func:`split_dims`)."""
    seconds = 2.0 if quick else 5.0
    port = free_port()
    memory = []
    import psutil

    with _child(_memory_child, port) as hello:
        _wait_http(f"http://{LOOPBACK}:{port}")
        pid = max(psutil.Process().children(), key=lambda c: c.create_time()).pid
        for clients in (4, 16):
            memory.append(_reads_cpu(pid, port, hello["token"], clients, seconds))
    for r in memory:
        r["stack"], r["rate_vs_memory"] = "in-memory (split baseline)", 1.0
    rows = []
    with _split_stack(SPLIT_SPEED) as stack:
        url = f"http://{LOOPBACK}:{stack['port']}"
        _wait_http(url, 90)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {stack['token']}"}, timeout=30) as c:
            _wait_online(c)
        label = f"serve, API in its own process, road ×{SPLIT_SPEED:g}"
        pid = _api_pid(stack["serve_pid"])
        for m, clients in zip(memory, (4, 16), strict=True):
            r = _reads_cpu(pid, stack["port"], stack["token"], clients, seconds)
            r["stack"], r["rate_vs_memory"] = label, r["req_per_s"] / m["req_per_s"]
            rows.append(r)
        stream = _stream_latency(stack["port"], stack["token"], stack["mqtt_url"], 20 if quick else 200)
        stream["stack"] = label
        rows.append(stream)
    return split_dims(quick) + [{"case": r.pop("case"), "stack": r.pop("stack"), **r} for r in memory + rows]
