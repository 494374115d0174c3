"""``streetlight bench api``: an operator's road dim to the last pole's ack, and pole-list reads.

The API runs in a child process (uvicorn on loopback, one worker) over the in-memory road with
acks as fast as it produces them, so the figures are the API's own cost; pointing ``_child`` at
the live platform gives the end-to-end figures. Clients run in this process; the baseline row is
``/api/v1/whoami`` (authentication and routing, no road data).
"""

from __future__ import annotations

import multiprocessing as mp
import socket
import statistics
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from streetlight.servers import LOOPBACK, free_port


def _child(conn: Connection, port: int) -> None:
    import uvicorn

    from api.app import ApiOptions, create_app
    from api.memory_platform import MemoryPlatform
    from streetlight.registry import load_road
    from streetlight.settings import Settings

    folder = Path(tempfile.mkdtemp(prefix="sl-bench-api-"))
    platform = MemoryPlatform(load_road("nanhuan-1"), ack_delay_s=0.0)
    app = create_app(platform, Settings(data_dir=folder), folder / "api.sqlite3",
                     ApiOptions(commands_per_minute=1e9, command_burst=10**9))
    conn.send(app.state.ctx.tokens.create("admin", "bench")[0])
    uvicorn.run(app, host=LOOPBACK, port=port, log_level="warning", access_log=False)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _road_dim(client: httpx.Client, runs: int) -> dict[str, Any]:
    latencies = []
    for i in range(runs):
        t0 = time.perf_counter()
        r = client.post("/api/v1/roads/nanhuan-1/dim", json={"level": 30 + i % 50, "confirm": True})
        ids = r.json()["command_ids"]
        while not client.get("/api/v1/commands", params={"ids": ",".join(ids)}).json()["done"]:
            time.sleep(0.002)
        latencies.append((time.perf_counter() - t0) * 1000)
    return {"case": "road dim → last ack (93 poles)", "runs": runs,
            "median_ms": statistics.median(latencies), "p99_ms": _pct(latencies, 0.99)}


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


def run(quick: bool) -> list[dict[str, Any]]:
    port = free_port()
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(child, port), daemon=True)
    proc.start()
    try:
        token = parent.recv() if parent.poll(60) else ""
        url = f"http://{LOOPBACK}:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the API did not start for the benchmark") from None
                time.sleep(0.05)
        rows = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            rows.append(_road_dim(client, 5 if quick else 40))
        seconds = 1.0 if quick else 5.0
        base = _reads(port, token, "/api/v1/whoami", 4, seconds)
        base["vs_whoami"] = 1.0
        rows.append(base)
        for clients in ((1, 8) if quick else (1, 4, 16)):
            row = _reads(port, token, "/api/v1/poles", clients, seconds)
            row["vs_whoami"] = row["req_per_s"] / base["req_per_s"]
            rows.append(row)
        return rows
    finally:
        proc.terminate()
        proc.join(timeout=5)
