"""Where one gateway process spends its CPU at ingest, and the gateway against the batched naive
pipeline in alternating pairs.

    python -m benchmarks.ingest_profile profile [N] [ROAD]     # cProfile of every gateway thread
    python -m benchmarks.ingest_profile prepare [N] [ROAD]     # CPU of Pipeline.prepare per message
    python -m benchmarks.ingest_profile pairs [ROUNDS] [ROOT]  # gateway vs batched naive, 93 poles

``profile`` runs a :class:`~gateway.service.GatewayService` in this process against its own
Mosquitto and InfluxDB: the gateway's persistent session is made, the broker loaded with N
messages, then the gateway drains them while every thread it starts is profiled (one cProfile
per thread, merged), and the top functions by own time are printed. ``prepare`` times the
pipeline's per-message work alone (validation, dedup, road time, line protocol) over N pre-cut
messages, best of several rounds, no servers. ``pairs`` runs ``Bench.run_case`` with "batched" and
"gateway" on nanhuan-1, turning the order each round, and prints each round's ratio, the medians
and the load average; with ROOT also a gateway process running the project found there (an export
of another commit, e.g. ``git archive main | tar -x -C ROOT``), to compare two versions in one run.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ops.servers import start_influxd, start_mosquitto
from streetlight.registry import load_road
from streetlight.settings import Settings

from .loadgen import RawPublisher, telemetry_messages

T0 = 1_795_000_000_000
WAITS = ("acquire", "'recv'", "select", "sleep", "'wait'", "'sendall'", "'send'", "poll")


def profile(n: int = 60_000, road_id: str = "nanhuan-1", top: int = 30) -> str:
    from gateway.service import GatewayService

    road = load_road(road_id)
    with tempfile.TemporaryDirectory(prefix="sl-profile-") as tmp:
        work = Path(tmp)
        broker, influx = start_mosquitto(work / "mosquitto"), start_influxd(work / "influxd")
        try:
            s = Settings(mqtt_url=f"mqtt://127.0.0.1:{broker.port}", influx_url=influx.url, influx_db="profile",
                         data_dir=str(work / "data"))
            gw = GatewayService(s, [road], client_id="profile")
            gw.start()
            gw.link.subscribed.wait(30)
            gw.stop()  # the session stays on the broker and queues the load
            pub = RawPublisher("127.0.0.1", broker.port)
            pub.publish_all(telemetry_messages(road.id, road.pole_ids, n, T0))
            pub.close()
            profiles: list[cProfile.Profile] = []
            run = threading.Thread.run

            def profiled(self: threading.Thread) -> None:
                p = cProfile.Profile()
                profiles.append(p)
                p.runcall(run, self)

            threading.Thread.run = profiled  # type: ignore[method-assign]
            try:
                gw = GatewayService(s, [road], client_id="profile")
                t0 = time.perf_counter()
                cpu0 = time.process_time()
                gw.start()
                while gw.metrics.messages_done < n and time.perf_counter() - t0 < 600:
                    time.sleep(0.01)
                elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                gw.stop()
            finally:
                threading.Thread.run = run  # type: ignore[method-assign]
        finally:
            broker.stop()
            influx.stop()
    out = io.StringIO()
    stats = pstats.Stats(profiles[0], stream=out)
    for p in profiles[1:]:
        stats.add(p)
    print(f"{n:,} messages of {road_id} in {elapsed:.1f} s ({n / elapsed:,.0f} msg/s under the profiler), "
          f"process CPU {cpu:.1f} s, load {os.getloadavg()[0]:.1f}", file=out)
    # waiting (locks, sockets, select) is not CPU: leave it out and give each function's share of the rest
    own = {f: v[2] for f, v in stats.stats.items()  # type: ignore[attr-defined]
           if not any(w in f[2] for w in WAITS)}
    total = sum(own.values())
    cum = {f: v[3] for f, v in stats.stats.items()}  # type: ignore[attr-defined]
    print(f"CPU under the profiler (waits left out): {total:.2f} s; own time, cumulative time, share of own", file=out)
    for f, t in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        name = f"{Path(f[0]).name}:{f[1]}({f[2]})" if f[0] != "~" else f[2]
        print(f"  {t:6.3f} s  {cum[f]:6.3f} s  {100 * t / total:5.1f} %  {name}", file=out)
    return out.getvalue()


def prepare(n: int = 60_000, road_id: str = "nanhuan-1", rounds: int = 5) -> dict[str, Any]:
    """CPU per message of ``Pipeline.prepare`` on ``n`` telemetry messages (no I/O: the writer and
    queues are never touched), best of ``rounds`` fresh pipelines."""
    import queue

    from gateway.inbound import Raw
    from gateway.metrics import GatewayMetrics
    from gateway.pipeline import Pipeline
    from gateway.rejected import RejectedStore
    from streetlight.clock import ClockPolicy, RoadClocks

    road = load_road(road_id)
    msgs = telemetry_messages(road.id, road.pole_ids, n, T0)
    raws = [Raw(t, b, i % 65535 + 1, 1, 1) for i, (t, b) in enumerate(msgs)]
    best = float("inf")
    with tempfile.TemporaryDirectory(prefix="sl-prepare-") as tmp:
        for r in range(rounds):
            rejected = RejectedStore(Path(tmp) / f"rejected-{r}.jsonl")
            clock = RoadClocks({road.id: road.pole_ids}, ClockPolicy("devices"))
            p = Pipeline([road], queue.Queue(), None, rejected, GatewayMetrics(rejected), clock,  # type: ignore[arg-type]
                         lambda _: None, lambda _: None)
            t = time.process_time()
            for i in range(0, n, 5000):
                p.prepare(raws[i:i + 5000])
            best = min(best, time.process_time() - t)
            rejected.close()
    return {"case": f"Pipeline.prepare, {n:,} telemetry of {road_id} (best of {rounds})",
            "us_per_msg": round(1e6 * best / n, 2), "msg_per_s": round(n / best)}


def pairs(count: int = 5, before: str | None = None, n_gw: int = 60_000,
          n_batched: int = 30_000) -> list[dict[str, Any]]:
    """``count`` rounds of the batched naive pipeline and the gateway at 93 poles, the order turning
    each round; with ``before`` (the root of an export of another commit) also that commit's
    gateway, so that two versions are compared in the same run on the same servers."""
    from . import ingest

    here = ingest.ROOT
    modes = ["batched", "gateway"] + (["before"] if before else [])
    rows = []
    with tempfile.TemporaryDirectory(prefix="sl-pairs-") as tmp:
        b = ingest.Bench(Path(tmp))
        try:
            for i in range(count):
                order = modes[i % len(modes):] + modes[:i % len(modes)]
                got = {}
                for mode in order:
                    # where the consumer process imports the project from
                    ingest.ROOT = Path(before) if mode == "before" and before else here
                    n = n_batched if mode == "batched" else n_gw
                    got[mode] = b.run_case(mode, "batched" if mode == "batched" else "gateway", "nanhuan-1", n)
                ingest.ROOT = here
                row: dict[str, Any] = {"round": i + 1, "order": " ".join(order)}
                for mode in modes:
                    row[mode] = got[mode]["msg_per_s"]
                    if mode != "batched":
                        ratio = got[mode]["msg_per_s"] / max(got["batched"]["msg_per_s"], 1)
                        row[f"{mode}_x_batched"] = round(ratio, 2)
                        row[f"{mode}_cpu_pct"] = got[mode]["cpu_pct"]
                row["complete"] = all(g["complete"] for g in got.values())
                row["load"] = round(os.getloadavg()[0], 1)
                rows.append(row)
                print(row, file=sys.stderr, flush=True)
        finally:
            ingest.ROOT = here
            b.close()
    for mode in modes[1:]:
        print(f"{mode}: median {statistics.median(r[mode] for r in rows):,.0f} msg/s, "
              f"median x batched {statistics.median(r[f'{mode}_x_batched'] for r in rows):.2f} over {len(rows)} rounds",
              file=sys.stderr)
    return rows


if __name__ == "__main__":
    what, args = sys.argv[1], sys.argv[2:]
    if what == "profile":
        print(profile(int(args[0]) if args else 60_000, args[1] if len(args) > 1 else "nanhuan-1"))
    elif what == "prepare":
        print(prepare(int(args[0]) if args else 60_000, args[1] if len(args) > 1 else "nanhuan-1"))
    else:
        pairs(int(args[0]) if args else 5, args[1] if len(args) > 1 else None)
