"""``streetlight bench ingest``: MQTT to confirmed InfluxDB rows, messages per second.

Every case runs in this one invocation, on servers started here, so the figures compare:

* the broker's own ceiling (a raw-socket QoS 1 publisher to ``mosquitto_sub -q 1``);
* InfluxDB's own ceiling for each road: a bare writer posting the lines the gateway would write
  for the same messages (same series, same fields), built and batched beforehand, over httpx as
  the gateway's writer does: one writer of 5,000-point batches, and two at once of 2,500 each;
* a naive pipeline: a paho callback that parses JSON and writes each message in its own request;
* the same callback batching 1,000 points per write;
* the gateway (validation, deduplication, durable hand-off, acks after storage), one process
  posting each batch in one request (the default) and in two parts at once, and two
  processes on one MQTT 5 shared subscription; for 93 and for 10,000 poles;
* a soak: the gateway under steady load, its memory sampled (10 minutes; 15 s with ``quick``);
* line protocol alone (no servers): the same 100,000 parsed telemetry messages serialized by
  ``telemetry.lineproto`` and by influxdb-client's ``Point``, rounds alternating, median of each.

Method: each consumer connects once to create its persistent session, disconnects, the broker
is loaded with N messages, then the consumer comes back and the rate is read from the database
(points its shards took, from InfluxDB's own counters, not PUBACKs) between 10 % and 90 % of N,
which leaves out process start-up; at the end the rows are counted once to check that all N are
there. (Polling ``SELECT count()`` instead, as this bench first did, costs the database about a
second per poll at 10,000 series and slowed what it measured two- to fourfold.)
CPU is the consumer processes' CPU time over that window (100 % = one core); memory is the
largest resident set seen.
"""

from __future__ import annotations

import gzip as gz
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from ops.servers import InfluxServer, MosquittoServer, find_binary, start_influxd, start_mosquitto
from streetlight.protocol import TELEMETRY_FIELDS, Telemetry, parse_telemetry
from streetlight.registry import Pole, load_road
from telemetry import InfluxQL, ensure_schema
from telemetry.lineproto import INT_FIELDS, point_time_ns, tag_set, telemetry_line

from .loadgen import RawPublisher, telemetry_messages

T0 = 1_795_000_000_000
ROOT = Path(__file__).resolve().parents[1]  # the consumers import the project from here


class Bench:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.broker: MosquittoServer = start_mosquitto(work / "mosquitto")
        self.influx: InfluxServer = start_influxd(work / "influxd")
        self.http = httpx.Client(base_url=self.influx.url, timeout=60)
        self._n = 0
        self.count_rows = False  # poll with SELECT count() instead of the shard counters (the old method)

    def close(self) -> None:
        self.http.close()
        self.broker.stop()
        self.influx.stop()

    def new_db(self) -> str:
        self._n += 1
        db = f"bench{self._n}"
        self.http.post("/query", data={"q": f"CREATE DATABASE {db}"})
        return db

    def count(self, db: str) -> int:
        try:
            r = self.http.get("/query", params={"db": db, "q": "SELECT count(seq) FROM telemetry"}).json()
            return int(r["results"][0]["series"][0]["values"][0][1])
        except (KeyError, IndexError, ValueError, httpx.HTTPError):
            return 0

    def points(self, db: str) -> int:
        """Points ``db``'s shards have taken (written to the WAL and cache), from InfluxDB's own
        counters: a cheap read, unlike counting rows, which scans every series and at 10,000 series
        took about a second of the database's CPU per poll, time taken from the writes measured."""
        try:
            r = self.http.get("/query", params={"q": "SHOW STATS FOR 'shard'"}).json()
            return sum(int(dict(zip(s["columns"], s["values"][0], strict=True))["writePointsOk"])
                       for s in r["results"][0].get("series", []) if s.get("tags", {}).get("database") == db)
        except (KeyError, IndexError, ValueError, httpx.HTTPError):
            return 0

    # -- consumers -------------------------------------------------------------------------------
    def _spawn(self, argv: list[str]) -> subprocess.Popen[str]:
        p = subprocess.Popen([sys.executable, "-m", "benchmarks.ingest_consumer", *argv], stdout=subprocess.PIPE,
                             stdin=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        self._expect(p, "loaded")
        return p

    @staticmethod
    def _expect(p: subprocess.Popen[str], word: str) -> None:
        line = p.stdout.readline() if p.stdout else ""
        if line.strip() != word:
            p.kill()
            raise RuntimeError(f"bench consumer did not say {word!r} (got {line!r})")

    def _go(self, procs: list[subprocess.Popen[str]]) -> None:
        """Start every consumer at the same moment (they are loaded and waiting)."""
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            self._expect(p, "ready")

    def _forget(self, client_ids: list[str]) -> None:
        """Delete the consumers' persistent sessions, or they would queue every later case's load."""
        for cid in client_ids:
            RawPublisher("127.0.0.1", self.broker.port, client_id=cid, clean=True).close()

    @staticmethod
    def _stop(procs: list[subprocess.Popen[str]]) -> None:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()

    def run_case(self, case: str, mode: str, road_id: str, n: int, processes: int = 1,
                 timeout_s: float = 300, writers: int = 1) -> dict[str, Any]:
        db = self.new_db()
        road = load_road(road_id)
        group = "bench" if processes > 1 else ""
        argvs = []
        for i in range(processes):
            cid = f"{mode}-{db}-{i}"
            if mode == "gateway":
                argvs.append([mode, str(self.broker.port), self.influx.url, db, cid, road_id, group,
                              str(self.work / "data" / db), str(writers)])
            else:
                argvs.append([mode, str(self.broker.port), self.influx.url, db, cid])
        first = [self._spawn(a) for a in argvs]
        self._go(first)
        self._stop(first)  # the sessions now exist on the broker and queue what comes
        pub = RawPublisher("127.0.0.1", self.broker.port)
        pub.publish_all(telemetry_messages(road.id, road.pole_ids, n, T0))
        pub.close()
        procs: list[subprocess.Popen[str]] = []
        ps: list[psutil.Process] = []

        def start() -> None:
            procs.extend(self._spawn(a) for a in argvs)
            ps.extend(psutil.Process(p.pid) for p in procs)

        samples, rss = self._watch(db, n, start, lambda: self._go(procs), ps, timeout_s)
        self._stop(procs)
        self._forget([a[4] for a in argvs])
        return {"case": case, "poles": len(road.poles), "messages": n, **_rates(samples, n),
                "rss_mib": round(rss / 2**20), "complete": self.count(db) == n}

    def _watch(self, db: str, n: int, start: Callable[[], None], go: Callable[[], None], ps: list[psutil.Process],
               timeout_s: float) -> tuple[list[tuple[float, int, float]], int]:
        """Points stored in ``db`` (and the CPU of ``ps``) from before ``go()`` until ``n`` or the timeout."""
        count = self.count if self.count_rows else self.points
        samples: list[tuple[float, int, float]] = []  # (time, rows, cpu seconds)
        rss = 0
        done = threading.Event()

        def sample() -> None:  # from before the writers start, so no row goes unseen
            nonlocal rss
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and not done.is_set():
                rows = count(db)
                try:
                    cpu = sum(sum(x.cpu_times()[:2]) for x in list(ps))
                    rss = max(rss, sum(x.memory_info().rss for x in list(ps)))
                except psutil.Error:
                    cpu = samples[-1][2] if samples else 0.0
                samples.append((time.monotonic(), rows, cpu))
                if rows >= n:
                    break
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        start()
        sampler.start()
        go()
        sampler.join(timeout_s + 5)
        done.set()
        return samples, rss

    # -- the database alone ----------------------------------------------------------------------
    def influx_ceiling(self, road_id: str, n: int, *, batch: int = 5000, writers: int = 1, sort: bool = False,
                       gzip: bool = False, timeout_s: float = 300) -> dict[str, Any]:
        """InfluxDB's own write rate for the case: the lines the gateway would write for the same ``n``
        messages of ``road_id`` (same series, same fields), built and cut into batches beforehand,
        posted by ``writers`` threads over one httpx client (as :class:`telemetry.InfluxWriter`
        does), into a database with the gateway's schema; points counted as for the gateway."""
        db = self.new_db()
        client = InfluxQL(self.influx.url, db)
        try:
            ensure_schema(client)
        finally:
            client.close()
        road = load_road(road_id)
        tags = {p.id: tag_set(road.id, p, p.id) for p in road.poles}
        lines = [telemetry_line(tags[topic.split("/")[3]], parse_telemetry(body))
                 for topic, body in telemetry_messages(road.id, road.pole_ids, n, T0)]
        chunks = [lines[i:i + batch] for i in range(0, n, batch)]
        if sort:
            chunks = [sorted(c) for c in chunks]  # a line starts with its series key
        bodies = [gz.compress("\n".join(c).encode(), 1) if gzip else "\n".join(c).encode() for c in chunks]
        headers = {"Content-Encoding": "gzip"} if gzip else {}
        todo = iter(bodies)
        lock = threading.Lock()
        retried: list[int] = []
        refused: list[str] = []

        def post() -> None:
            while True:
                with lock:
                    body = next(todo, None)
                if body is None:
                    return
                # InfluxDB answers 500 "timeout" when a write waits too long on a loaded machine: post again,
                # as the gateway's writer would (points are idempotent)
                while (r := self.http.post("/write", params={"db": db, "precision": "n"}, content=body,
                                           headers=headers)).status_code != 204:
                    if r.status_code < 500:
                        refused.append(f"{r.status_code} {r.text[:200]}")
                        return
                    retried.append(r.status_code)

        threads = [threading.Thread(target=post, daemon=True) for _ in range(writers)]

        def go() -> None:
            for t in threads:
                t.start()

        samples, _ = self._watch(db, n, lambda: None, go, [], timeout_s)
        for t in threads:
            t.join(timeout_s)
        if refused:
            raise RuntimeError(f"InfluxDB refused a bare write: {refused[0]}")
        how = ", ".join(x for x in (f"{writers} writers" if writers > 1 else "", "sorted" if sort else "",
                                    "gzip" if gzip else "") if x)
        rates = _rates(samples, n)
        return {"case": f"InfluxDB ceiling: bare writer, {batch:,} points per write" + (f" ({how})" if how else ""),
                "poles": len(road.poles), "messages": n, "msg_per_s": rates["msg_per_s"],
                "complete": self.count(db) == n, "retried_writes": len(retried)}

    # -- the broker alone ------------------------------------------------------------------------
    def ceiling(self, n: int) -> dict[str, Any]:
        road = load_road("nanhuan-1")
        sub = subprocess.Popen([find_binary("mosquitto_sub"), "-p", str(self.broker.port), "-q", "1", "-C", str(n),
                                "-t", f"sl/v1/{road.id}/+/telemetry", "-i", "ceiling"], stdout=subprocess.DEVNULL)
        time.sleep(0.5)  # mosquitto_sub has no readiness signal; it subscribes right after connecting
        msgs = list(telemetry_messages(road.id, road.pole_ids, n, T0))
        pub = RawPublisher("127.0.0.1", self.broker.port)
        t = time.perf_counter()
        pub.publish_all(iter(msgs))
        sub.wait(120)
        elapsed = time.perf_counter() - t
        pub.close()
        return {"case": "broker ceiling (QoS 1, one publisher to mosquitto_sub)", "poles": 93, "messages": n,
                "msg_per_s": round(n / elapsed)}

    # -- memory over a long run ------------------------------------------------------------------
    def soak(self, seconds: float, rate: float) -> dict[str, Any]:
        db = self.new_db()
        road = load_road("nanhuan-1")
        proc = self._spawn(["gateway", str(self.broker.port), self.influx.url, db, f"soak-{db}", road.id, "",
                            str(self.work / "data" / db), "1"])
        self._go([proc])
        ps = psutil.Process(proc.pid)
        total = int(seconds * rate)
        pub = RawPublisher("127.0.0.1", self.broker.port)
        t = threading.Thread(target=pub.publish_all, args=(telemetry_messages(road.id, road.pole_ids, total, T0),),
                             kwargs={"rate": rate, "window": 5000}, daemon=True)
        start = time.monotonic()
        cpu0 = sum(ps.cpu_times()[:2])
        t.start()
        rss: list[tuple[float, int]] = []
        while t.is_alive():
            rss.append((time.monotonic() - start, ps.memory_info().rss))
            t.join(max(1.0, seconds / 60))
        elapsed = time.monotonic() - start
        cpu = sum(ps.cpu_times()[:2]) - cpu0
        pub.close()
        deadline = time.monotonic() + 60
        while self.count(db) < total and time.monotonic() < deadline:
            time.sleep(0.25)
        stored = self.count(db)
        self._stop([proc])
        self._forget([f"soak-{db}"])
        settled = [r for s, r in rss if s >= elapsed * 0.2] or [r for _, r in rss]
        return {"case": f"gateway soak, {elapsed / 60:.1f} min at {rate:,.0f} msg/s", "poles": 93, "messages": total,
                "msg_per_s": round(stored / elapsed), "cpu_pct": round(100 * cpu / elapsed),
                "rss_mib": round(max(r for _, r in rss) / 2**20),
                "rss_growth_pct": round(100 * (settled[-1] - settled[0]) / settled[0], 1),
                "stored_all": stored == total}


def _point_line(road: str, pole: Pole, t: Telemetry) -> str:
    """The line influxdb-client writes for a telemetry message (what :func:`telemetry_line` matches)."""
    p = (Point("telemetry").tag("road", road).tag("pole", pole.id).tag("segment", pole.segment)
         .tag("feeder", pole.feeder).tag("side", pole.side).field("seq", t.seq))
    for name in TELEMETRY_FIELDS:
        v = getattr(t, name)
        if v is not None:
            p.field(name, int(v) if name in INT_FIELDS else float(v))
    return str(p.time(point_time_ns(t.ts, t.seq), WritePrecision.NS).to_line_protocol())


def serializers(n: int = 100_000, rounds: int = 3) -> dict[str, Any]:
    """Line protocol for ``n`` parsed telemetry messages, hand-written vs influxdb-client's ``Point``.

    The hand-written side is what the gateway runs: each pole's tag set escaped once, a line per
    message. Rounds alternate so that load from other processes falls on both sides alike."""
    road = load_road("nanhuan-1")
    poles = {p.id: p for p in road.poles}
    msgs = [(poles[topic.split("/")[3]], parse_telemetry(body))
            for topic, body in telemetry_messages(road.id, road.pole_ids, n, T0)]
    tags = {p.id: tag_set(road.id, p, p.id) for p in road.poles}
    hand: list[float] = []
    client: list[float] = []
    for _ in range(rounds):
        t = time.perf_counter()
        ours = [telemetry_line(tags[pole.id], m) for pole, m in msgs]
        hand.append(time.perf_counter() - t)
        t = time.perf_counter()
        theirs = [_point_line(road.id, pole, m) for pole, m in msgs]
        client.append(time.perf_counter() - t)
        if ours != theirs:
            raise AssertionError("telemetry_line and influxdb-client's Point wrote different lines")
    h, c = sorted(hand)[rounds // 2], sorted(client)[rounds // 2]
    return {"case": f"line protocol only, {n:,} telemetry messages (median of {rounds} alternating rounds)",
            "messages": n, "lineproto_msg_per_s": round(n / h), "point_msg_per_s": round(n / c),
            "lineproto_x_point": round(c / h, 1)}


def _rates(samples: list[tuple[float, int, float]], n: int) -> dict[str, Any]:
    """Rows per second and CPU between 10 % and 90 % of ``n`` rows (interpolated)."""

    def at(level: float) -> tuple[float, float] | None:
        for (t0, r0, c0), (t1, r1, c1) in zip(samples, samples[1:], strict=False):
            if r0 <= level <= r1 and r1 > r0:
                f = (level - r0) / (r1 - r0)
                return t0 + f * (t1 - t0), c0 + f * (c1 - c0)
        return None

    lo, hi = at(0.1 * n), at(0.9 * n)
    if lo is None or hi is None or hi[0] <= lo[0]:
        return {"msg_per_s": 0, "cpu_pct": 0, "complete": samples[-1][1] >= n if samples else False}
    dt = hi[0] - lo[0]
    return {"msg_per_s": round(0.8 * n / dt), "cpu_pct": round(100 * (hi[1] - lo[1]) / dt),
            "complete": samples[-1][1] >= n}


def run(quick: bool = False) -> list[dict[str, Any]]:
    big = f"synthetic:{10_000}"
    n_gw, n_naive, n_batched = (60_000, 800, 30_000) if quick else (300_000, 4_000, 100_000)
    with tempfile.TemporaryDirectory(prefix="sl-bench-ingest-") as tmp:
        b = Bench(Path(tmp))
        try:
            steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
                ("broker ceiling", lambda: b.ceiling(n_gw)),
                *_database_steps(b, "nanhuan-1", n_gw),
                ("naive", lambda: b.run_case("naive: one HTTP write per message", "naive", "nanhuan-1", n_naive)),
                ("batched", lambda: b.run_case("naive batched: 1,000 points per write", "batched", "nanhuan-1",
                                               n_batched)),
                *_gateway_steps(b, "nanhuan-1", n_gw),
                ("gateway x2", lambda: b.run_case("gateway, 2 processes (shared subscription)", "gateway", "nanhuan-1",
                                                  n_gw, 2)),
                *_database_steps(b, big, n_gw),
                ("batched 10k", lambda: b.run_case("naive batched: 1,000 points per write", "batched", big, n_batched)),
                *_gateway_steps(b, big, n_gw),
                ("gateway x2 10k", lambda: b.run_case("gateway, 2 processes (shared subscription)", "gateway", big,
                                                      n_gw, 2)),
                ("soak", lambda: b.soak(8 if quick else 600, 2_000)),
                ("line protocol", serializers),
            ]
            rows = []
            for name, step in steps:
                t = time.perf_counter()
                rows.append(step())
                rate = rows[-1].get("msg_per_s", rows[-1].get("lineproto_msg_per_s"))
                print(f"  {name}: {rate} msg/s ({time.perf_counter() - t:.0f} s, load {os.getloadavg()[0]:.1f})",
                      file=sys.stderr, flush=True)
        finally:
            b.close()
    _ratios(rows)
    return rows


def _database_steps(b: Bench, road: str, n: int) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
    """InfluxDB's own ceiling for the case: one writer of 5,000-point batches, and two at once of
    2,500 each (the shape of the gateway's writes); the better of the two is the ceiling."""
    return [(f"InfluxDB ceiling {road}", lambda: b.influx_ceiling(road, n)),
            (f"InfluxDB ceiling {road}, 2 writers", lambda: b.influx_ceiling(road, n, batch=2500, writers=2))]


def _gateway_steps(b: Bench, road: str, n: int) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
    """One gateway process writing each batch in one request (the default) and in two parts at once."""
    return [(f"gateway {road}", lambda: b.run_case("gateway, 1 process (1 request per batch)", "gateway", road, n)),
            (f"gateway {road}, 2 parts", lambda: b.run_case(
                "gateway, 1 process, each batch in 2 parts at once", "gateway", road, n, writers=2))]


def _ratios(rows: list[dict[str, Any]]) -> None:
    """Each row against the baselines of its road measured in the same run: the per-message naive
    pipeline (93 poles), the batched naive pipeline, and InfluxDB's own ceiling (the better bare writer)."""
    naive = next((r["msg_per_s"] for r in rows if r["case"].startswith("naive:") and r["msg_per_s"]), 0)
    for poles in {r["poles"] for r in rows if "poles" in r}:
        batched = next((r["msg_per_s"] for r in rows if r["case"].startswith("naive batched") and r["poles"] == poles
                        and r["msg_per_s"]), 0)
        ceiling = max((r["msg_per_s"] for r in rows if r["case"].startswith("InfluxDB ceiling")
                       and r["poles"] == poles), default=0)
        for r in rows:
            if r.get("poles") == poles and r.get("msg_per_s"):
                r["x_naive"] = round(r["msg_per_s"] / naive, 1) if naive else ""
                r["x_batched"] = round(r["msg_per_s"] / batched, 2) if batched else ""
                r["x_db_ceiling"] = round(r["msg_per_s"] / ceiling, 2) if ceiling else ""
