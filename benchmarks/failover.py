"""``streetlight bench failover``: a synthetic city run as processes by role, one of each role
killed in turn (SIGKILL), and what the platform lost, doubled or took to recover.

The city: ``roads`` synthetic roads of ``poles`` poles each (``synthetic:N:city-01`` …), every pole
reporting every ``report_s`` seconds at road speed 1, each pole on its own MQTT connection.
The platform: ``streetlight serve --processes`` (two gateways on one shared subscription, two
controllers sharing the roads by lease, two API processes on one port), on real Mosquitto,
InfluxDB and PostgreSQL started on free loopback ports; its supervisor restarts what is killed.

Order: a gateway, then the controller holding the leases, then an API process, ``between_s``
apart. A lamp failure is injected on one road just after each kill (and one before the first).
Judged from outside the platform, against what the simulated poles did:

* **readings**: every telemetry message the poles published (QoS 1, acknowledged by the broker)
  is counted in InfluxDB, road by road;
* **commands**: a watcher on ``sl/v1/+/+/cmd`` and ``…/ack`` sees every command answered by its
  pole, and, per pole, the senders (a process's command ids carry its prefix) never interleave:
  once a controller has taken a road over, the one before it sends nothing more;
* **faults**: each injected lamp failure raised exactly once in the state database;
* **operator**: a dim of a whole road through the API's one port after the last kill, acked by
  every pole;
* **dashboard**: the page and the pole list asked for through the port twice a second all along;
  failures counted, the longest gap measured.

Recovery times: gateway = kill until every reading published before the kill is stored
(the killed gateway's session is taken back by its restarted process); controller = kill until
the other controller holds the leases (lease epoch one higher); API = kill until the port answers
again (the other process, on the same port, takes the new connections at once).

:func:`run_city` is also what ``tests/live/test_city_failover.py`` runs, on a smaller city.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import yaml

from ops.servers import InfluxServer, MosquittoServer, PostgresServer, free_port
from runtime.serve import lease_s
from simulators.runner import Simulation, drive
from simulators.scenario import load_scenario
from streetlight.clock import wall_ms

LAMP = "lamp_failure"


@dataclass(frozen=True)
class CityPlan:
    roads: int = 10
    poles: int = 100
    report_s: int = 10
    warm_s: float = 45.0  # from the poles' start to the first kill: every pole commanded, road time known
    between_s: float = 60.0  # from one kill to the next
    tail_s: float = 45.0  # after the operator's dim, before the poles stop
    gateways: int = 2
    controllers: int = 2
    apis: int = 2

    def road_ids(self) -> list[str]:
        return [f"city-{i:02d}" for i in range(1, self.roads + 1)]


@dataclass
class Kill:
    role: str
    process: str
    killed_ms: int
    recovered_s: float | None = None  # None: not within the wait
    restarted_s: float | None = None  # until the supervisor's new process for it started
    detail: str = ""


@dataclass
class CityReport:
    plan: CityPlan
    published: dict[str, int] = field(default_factory=dict)  # telemetry per road, as the poles sent it
    stored: dict[str, int] = field(default_factory=dict)  # telemetry per road, in InfluxDB at the end
    commands: int = 0
    commands_unanswered: list[str] = field(default_factory=list)
    senders: list[str] = field(default_factory=list)  # command-id prefixes, in the order they first sent
    interleaved_poles: list[str] = field(default_factory=list)  # poles an older sender commanded after a newer
    injected: list[tuple[str, str]] = field(default_factory=list)
    raised: dict[str, int] = field(default_factory=dict)  # "road/pole" -> lamp faults stored
    other_faults: dict[str, int] = field(default_factory=dict)  # type -> count, for the record
    dim_poles: int = 0
    dim_acked: int = 0
    dim_s: float | None = None
    probes: int = 0
    probe_failures: int = 0
    longest_gap_s: float = 0.0
    kills: list[Kill] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def missing(self) -> int:
        return sum(max(0, n - self.stored.get(r, 0)) for r, n in self.published.items())

    @property
    def faults_exactly_once(self) -> bool:
        return all(self.raised.get(f"{r}/{p}", 0) == 1 for r, p in self.injected)

    def problems(self) -> list[str]:
        """What broke the run's promises; empty when none did."""
        out = []
        if self.missing:
            out.append(f"{self.missing} acknowledged readings missing in InfluxDB "
                       f"(published {self.published}, stored {self.stored})")
        if self.commands_unanswered:
            out.append(f"{len(self.commands_unanswered)} command(s) never acked: {self.commands_unanswered[:5]}")
        if self.interleaved_poles:
            out.append(f"poles commanded by two controllers at once: {self.interleaved_poles[:5]}")
        if not self.faults_exactly_once:
            out.append(f"injected lamp failures not raised exactly once: "
                       f"{ {f'{r}/{p}': self.raised.get(f'{r}/{p}', 0) for r, p in self.injected} }")
        if self.dim_acked != self.dim_poles or not self.dim_poles:
            out.append(f"operator's dim acked by {self.dim_acked} of {self.dim_poles} poles")
        for k in self.kills:
            if k.recovered_s is None:
                out.append(f"{k.role} ({k.process}) did not recover: {k.detail}")
        return out

    def rows(self) -> list[dict[str, Any]]:
        """The benchmark's table: one row per kill, then the totals."""
        rows: list[dict[str, Any]] = [
            {"case": f"kill -9 {k.role} ({k.process})", "recovered_s": k.recovered_s,
             "restarted_s": k.restarted_s, "measure": k.detail} for k in self.kills]
        rows.append({"case": "readings (telemetry)", "published": sum(self.published.values()),
                     "stored": sum(self.stored.values()), "missing": self.missing})
        rows.append({"case": "commands", "sent": self.commands, "unanswered": len(self.commands_unanswered),
                     "senders": len(self.senders), "poles_commanded_by_two_at_once": len(self.interleaved_poles)})
        rows.append({"case": "injected lamp failures", "injected": len(self.injected),
                     "raised_exactly_once": sum(self.raised.get(f"{r}/{p}", 0) == 1 for r, p in self.injected),
                     "other_faults": dict(self.other_faults)})
        rows.append({"case": "operator's road dim after the kills", "poles": self.dim_poles,
                     "acked": self.dim_acked, "seconds": self.dim_s})
        rows.append({"case": "dashboard and pole list through the one port", "requests": self.probes,
                     "failed": self.probe_failures, "longest_gap_s": round(self.longest_gap_s, 2)})
        return rows


class CommandWatch:
    """Every command the broker delivers on ``sl/v1/+/+/cmd`` (arrival, road/pole, cmd_id), and
    every ``cmd_id`` a pole acked."""

    def __init__(self, port: int) -> None:
        self.sent: list[tuple[int, str, str]] = []
        self.acked: set[str] = set()
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"watch-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv311, clean_session=True)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.subscribe([("sl/v1/+/+/cmd", 1), ("sl/v1/+/+/ack", 1)])
        self.client.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError("the broker did not confirm the command watcher's subscription")

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        try:
            cmd_id = str(orjson.loads(msg.payload)["cmd_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        with self._lock:
            if parts[4] == "cmd":
                self.sent.append((wall_ms(), f"{parts[2]}/{parts[3]}", cmd_id))
            else:
                self.acked.add(cmd_id)

    def snapshot(self) -> tuple[list[tuple[int, str, str]], set[str]]:
        with self._lock:
            return list(self.sent), set(self.acked)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def sender(cmd_id: str) -> str:
    """The process that sent a command: a gateway's command ids share a prefix drawn once per process."""
    return cmd_id.rsplit("-", 1)[0]


def interleaved(sent: list[tuple[int, str, str]]) -> tuple[list[str], list[str]]:
    """The senders in the order they first sent, and the poles that got a command from a sender
    after one from a sender that started later (two controllers deciding for one pole)."""
    order: list[str] = []
    for _, _, c in sorted(sent):
        if sender(c) not in order:
            order.append(sender(c))
    rank = {s: i for i, s in enumerate(order)}
    bad = []
    newest: dict[str, int] = {}
    for _, pole, c in sorted(sent):
        r = rank[sender(c)]
        if r < newest.get(pole, -1):
            bad.append(pole)
        newest[pole] = max(newest.get(pole, -1), r)
    return order, sorted(set(bad))


class Supervisor:
    """``streetlight serve --processes`` as a child: its output read for the pid of each process."""

    STARTED = re.compile(r"started the (\S+) process .*pid (\d+)")

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.pids: dict[str, int] = {}
        self.starts: dict[str, list[int]] = {}  # process name -> wall ms of each start
        self.log_path = log_path
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._reader = threading.Thread(target=self._read, name="city-supervisor-out", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace")
            self._log.write(line)
            self._log.flush()
            if m := self.STARTED.search(line):
                self.pids[m[1]] = int(m[2])
                self.starts.setdefault(m[1], []).append(wall_ms())

    def kill(self, name: str) -> int:
        pid = self.pids[name]
        os.kill(pid, signal.SIGKILL)
        return wall_ms()

    def restarted_after(self, name: str, ms: int) -> int | None:
        return next((t for t in self.starts.get(name, []) if t > ms), None)

    def wait_restart(self, name: str, ms: int, timeout_s: float = 30.0) -> int | None:
        """When the supervisor started ``name`` again after ``ms`` (it waits a second or more first)."""
        try:
            return int(wait_for(f"{name} restarted", lambda: self.restarted_after(name, ms), timeout_s, 0.1))
        except TimeoutError:
            return None

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._reader.join(10)
        self._log.close()
        return self.proc.returncode

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Probe:
    """The dashboard and a road's pole list through the API's one port, twice a second."""

    def __init__(self, client: httpx.Client, road: str, every_s: float = 0.5) -> None:
        self.client, self.road, self.every_s = client, road, every_s
        self.results: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="city-probe", daemon=True)

    def start(self) -> Probe:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            ok = True
            for path in ("/", f"/api/v1/poles?road={self.road}"):
                try:
                    ok = ok and self.client.get(path, timeout=5).status_code == 200
                except httpx.HTTPError:
                    ok = False
            self.results.append((time.monotonic(), ok))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def first_ok_after(self, t: float) -> float | None:
        return next((at for at, ok in self.results if at > t and ok), None)

    def longest_gap(self) -> float:
        """The longest time between two answered probes with only failures between them."""
        gap, last_ok = 0.0, None
        for at, ok in self.results:
            if ok:
                if last_ok is not None:
                    gap = max(gap, at - last_ok - self.every_s)
                last_ok = at
        return max(0.0, gap)


def wait_for(what: str, fn: Callable[[], Any], timeout_s: float, every_s: float = 0.25) -> Any:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            v = fn()
        except (httpx.HTTPError, OSError, KeyError, ValueError):
            v = None
        if v:
            return v
        time.sleep(every_s)
    raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")


def _say(msg: str) -> None:
    print(f"  [failover] {msg}", file=sys.stderr, flush=True)


def run_city(plan: CityPlan, work: Path, say: Callable[[str], None] = _say) -> CityReport:
    """Run the city, kill one process of each role in turn, and judge what happened."""
    from api.auth import TokenStore
    from api.store import Store
    from runtime.leases import LeaseStore
    from runtime.state import ControllerStore
    from streetlight.statedb import Database
    from telemetry import InfluxQL, TelemetryQueries

    t0 = time.monotonic()
    report = CityReport(plan)
    roads = plan.road_ids()
    refs = [f"synthetic:{plan.poles}:{r}" for r in roads]
    mq = MosquittoServer(name="mosquitto", port=free_port(), data_dir=work / "mosquitto").start()
    influx = InfluxServer(name="influxd", port=free_port(), data_dir=work / "influxd").start()
    pg = PostgresServer(name="postgres", port=free_port(), data_dir=work / "postgres").start()
    state_url = pg.create_database("city")
    port = free_port()
    env = {**os.environ, "STREETLIGHT_MQTT_URL": mq.url, "STREETLIGHT_INFLUX_URL": influx.url,
           "STREETLIGHT_INFLUX_DB": "city", "STREETLIGHT_DATA_DIR": str(work / "var"),
           "STREETLIGHT_STATE_URL": state_url, "STREETLIGHT_LOG_LEVEL": "WARNING"}
    argv = [sys.executable, "-m", "streetlight", "serve", "--processes", "--port", str(port),
            "--gateways", str(plan.gateways), "--controllers", str(plan.controllers), "--apis", str(plan.apis),
            "--report-interval-s", str(plan.report_s)] + [a for ref in refs for a in ("--road", ref)]
    watch = CommandWatch(mq.port)
    sup = Supervisor(argv, env, work / "serve.log")
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15)
    sims: list[Simulation] = []
    threads: list[threading.Thread] = []
    stop_sims = threading.Event()
    probe: Probe | None = None
    db = Database(state_url)
    leases = LeaseStore(db)
    queries = TelemetryQueries(InfluxQL(influx.url, "city"))
    try:
        say(f"{plan.roads} roads x {plan.poles} poles, report every {plan.report_s} s; platform on port {port}")
        wait_for("the platform's API", lambda: api.get("/healthz").status_code == 200, 90)
        store = Store(state_url)
        token = TokenStore(store).create("operator", "city-failover")[0]
        store.close()
        api.headers["Authorization"] = f"Bearer {token}"

        for road, ref in zip(roads, refs, strict=True):
            spec = {"name": f"city-{road}", "description": "A quiet night in the synthetic city.", "road": ref,
                    "start": "2026-11-24 01:00", "duration": "3h", "speed": 1, "seed": len(sims) + 1,
                    "report_interval_s": plan.report_s, "faults": [], "expected": []}
            path = work / f"{road}.yaml"
            path.write_text(yaml.safe_dump(spec))
            sim = Simulation(load_scenario(str(path)), mqtt_url=mq.url, speed=1, stop=stop_sims)
            sims.append(sim)
            threads.append(threading.Thread(target=drive, kwargs={"sim": sim, "stop": stop_sims},
                                            name=f"sim-{road}", daemon=True))
        for t in threads:
            t.start()
        sim_of = dict(zip(roads, sims, strict=True))
        wait_for("the platform ready (road time known on every road)",
                 lambda: api.get("/readyz").status_code == 200, 120, 1.0)
        n_poles = plan.roads * plan.poles
        wait_for("a command to every pole", lambda: len({p for _, p, _ in watch.snapshot()[0]}) == n_poles,
                 plan.warm_s + 60, 1.0)
        probe = Probe(api, roads[0]).start()

        def inject(k: int) -> None:
            road = roads[k % len(roads)]
            pole = sim_of[road].scenario.road.poles[(7 * k + 3) % plan.poles].id
            sim_of[road].inject(LAMP, pole)
            report.injected.append((road, pole))

        inject(0)
        time.sleep(max(0.0, plan.warm_s - (time.monotonic() - t0) + 10))

        # -- a gateway ------------------------------------------------------------------------
        # killed as a step's readings pour in, so that some are in its hands, unacknowledged
        before_step = sum(sim.stats.messages["telemetry"] for sim in sims)
        wait_for("the poles' next step", lambda: sum(sim.stats.messages["telemetry"] for sim in sims) > before_step,
                 3 * plan.report_s, 0.001)
        published_then = {r: sim.stats.messages["telemetry"] for r, sim in sim_of.items()}
        kill = Kill("gateway", "gateway-1", sup.kill("gateway-1"))
        say(f"killed gateway-1 (pid {sup.pids['gateway-1']}) with SIGKILL")
        inject(1)
        stored_then: dict[str, int] = {}
        history: list[tuple[int, int]] = []  # (ms after the kill, stored - published)

        def stored_before_kill() -> bool:
            # stored first, published after: "stored >= published" then holds only when every reading
            # published up to the query is in the database (it holds nothing the poles did not send)
            for r in roads:
                stored_then[r] = queries.count_readings(r)["telemetry"]
            published = sum(sim.stats.messages["telemetry"] for sim in sims)
            history.append((wall_ms() - kill.killed_ms, sum(stored_then.values()) - published))
            return sum(stored_then.values()) >= published

        try:
            wait_for("every reading published before the kill stored", stored_before_kill, plan.between_s, 0.25)
            kill.recovered_s = (wall_ms() - kill.killed_ms) / 1000
        except TimeoutError as err:
            kill.detail = f"{err} (stored {stored_then}, behind by {history[-1][1] if history else '?'})"
        restarted = sup.wait_restart("gateway-1", kill.killed_ms)
        kill.restarted_s = (restarted - kill.killed_ms) / 1000 if restarted else None
        kill.detail = kill.detail or ("kill → every reading published so far stored again (the killed "
                                      f"gateway's session taken back; {sum(published_then.values())} published "
                                      f"before the kill; most behind: {-min(h[1] for h in history)} readings)")
        report.kills.append(kill)
        say(f"gateway: readings caught up {kill.recovered_s} s after the kill")
        time.sleep(max(0.0, plan.between_s - (wall_ms() - kill.killed_ms) / 1000))

        # -- the controller holding the roads -------------------------------------------------
        before = {r: leases.get(r) for r in roads}
        holder = Counter(lease.holder for lease in before.values() if lease is not None).most_common(1)[0][0]
        name = next(p for p in sup.pids if p.startswith("controller-") and holder.endswith(p))
        kill = Kill("controller", name, sup.kill(name))
        held = sum(1 for x in before.values() if x and x.holder == holder)
        say(f"killed {name} (pid {sup.pids[name]}, holding {held} roads) with SIGKILL")
        inject(2)

        def taken_over() -> bool:
            now = {r: leases.get(r) for r in roads}
            return all(lease is not None and lease.holder != holder for r, lease in now.items()
                       if before[r] is not None and before[r].holder == holder)  # type: ignore[union-attr]

        try:
            wait_for("the other controller to take the roads over", taken_over, 4 * plan.report_s + 10, 0.1)
            taken = max(lease.taken_ms for r in roads if (lease := leases.get(r)) is not None
                        and before[r] is not None and before[r].holder == holder)  # type: ignore[union-attr]
            kill.recovered_s = (taken - kill.killed_ms) / 1000
            kill.detail = (f"kill → the other controller holds every road (report interval {plan.report_s} s, "
                           f"lease {lease_s(plan.report_s):g} s; "
                           f"epoch {min(x.epoch for x in before.values() if x)} → "
                           f"{min(x.epoch for r in roads if (x := leases.get(r)))})")
        except TimeoutError as err:
            kill.detail = str(err)
        restarted = sup.wait_restart(name, kill.killed_ms)
        kill.restarted_s = (restarted - kill.killed_ms) / 1000 if restarted else None
        report.kills.append(kill)
        say(f"controller: roads taken over {kill.recovered_s} s after the kill")
        time.sleep(max(0.0, plan.between_s - (wall_ms() - kill.killed_ms) / 1000))

        # -- an API process ------------------------------------------------------------------
        kill = Kill("api", "api-1", sup.kill("api-1"))
        killed_at = time.monotonic()
        say(f"killed api-1 (pid {sup.pids['api-1']}) with SIGKILL")
        inject(3)
        try:
            ok_at = wait_for("the port to answer again", lambda: probe.first_ok_after(killed_at), 30, 0.1)
            kill.recovered_s = round(ok_at - killed_at, 2)
            kill.detail = "kill → the dashboard and the pole list answered again on the same port"
        except TimeoutError as err:
            kill.detail = str(err)
        restarted = sup.wait_restart("api-1", kill.killed_ms)
        kill.restarted_s = (restarted - kill.killed_ms) / 1000 if restarted else None
        report.kills.append(kill)
        say(f"api: port answered {kill.recovered_s} s after the kill")

        # -- the operator's dim through the port ------------------------------------------------
        target = roads[-1]

        def dim() -> list[str] | None:
            r = api.post(f"/api/v1/roads/{target}/dim",
                         json={"level": 40, "ramp_ms": 0, "expires_in_s": 900, "confirm": True})
            return r.json()["command_ids"] if r.status_code == 202 else None

        t_dim = time.monotonic()
        ids: list[str] = wait_for("the API to take an operator's road dim", dim, 30, 0.5)
        report.dim_poles = len(ids)

        def acked() -> bool:
            r = api.get("/api/v1/commands", params={"ids": ",".join(ids)})
            report.dim_acked = int(r.json()["summary"]["acked"]) if r.status_code == 200 else report.dim_acked
            return r.status_code == 200 and bool(r.json()["done"])

        try:
            wait_for("every pole's ack of the operator's dim", acked, 60, 0.5)
            report.dim_s = round(time.monotonic() - t_dim, 2)
        except TimeoutError:
            pass
        say(f"operator's dim of {target}: {report.dim_acked}/{report.dim_poles} acked in {report.dim_s} s")
        time.sleep(plan.tail_s)

        # faults are judged while the poles still report: once they stop, every feeder falls silent
        cs = ControllerStore(state_url)
        try:
            for road in roads:
                for f in cs.faults(road):
                    if f.type == LAMP:
                        key = f"{road}/{f.pole}"
                        report.raised[key] = report.raised.get(key, 0) + 1
                    else:
                        report.other_faults[f.type] = report.other_faults.get(f.type, 0) + 1
            for (road, pole) in report.injected:
                report.raised.setdefault(f"{road}/{pole}", 0)
            extra = {k: n for k, n in report.raised.items() if tuple(k.split("/")) not in report.injected}
            if extra:
                report.other_faults["lamp_failure (not injected)"] = sum(extra.values())
        finally:
            cs.close()

        # -- the end: poles stop, the platform finishes what it took in ---------------------------
        stopped_ms = wall_ms()
        stop_sims.set()
        for t in threads:
            t.join(60)
        probe.stop()
        report.published = {r: s.stats.messages["telemetry"] for r, s in sim_of.items()}

        def all_stored() -> bool:
            report.stored = {r: queries.count_readings(r)["telemetry"] for r in roads}
            return report.missing == 0

        try:
            wait_for("every published reading stored", all_stored, 60, 1.0)
        except TimeoutError:
            pass
        sent, acks = watch.snapshot()
        # a pole answers a command at its next step: those sent in the last two report intervals
        # before the poles stopped may have had no step left to be answered in
        judged_until = stopped_ms - 2000 * plan.report_s
        report.commands = len({c for _, _, c in sent})
        report.commands_unanswered = sorted({c for at, _, c in sent if c not in acks and at < judged_until})
        report.senders, report.interleaved_poles = interleaved(sent)
        report.probes = len(probe.results)
        report.probe_failures = sum(1 for _, ok in probe.results if not ok)
        report.longest_gap_s = probe.longest_gap()
    except Exception:
        say(f"the platform's output, last lines:\n{sup.tail()}")
        raise
    finally:
        stop_sims.set()
        if probe is not None:
            probe.stop()
        for t in threads:
            t.join(30)
        api.close()
        watch.close()
        rc = sup.stop()
        if rc not in (0, None):
            say(f"serve exited with {rc}")
        queries.client.close()
        db.close()
        for server in (pg, influx, mq):
            server.stop()
    report.wall_s = round(time.monotonic() - t0, 1)
    return report


def run(quick: bool = False) -> list[dict[str, Any]]:
    plan = CityPlan(roads=4, poles=25, report_s=5, warm_s=30, between_s=30, tail_s=15) if quick else CityPlan()
    with tempfile.TemporaryDirectory(prefix="sl-bench-failover-") as tmp:
        report = run_city(plan, Path(tmp))
    rows = report.rows()
    rows.append({"case": "plan", **asdict(plan), "wall_s": report.wall_s,
                 "problems": "; ".join(report.problems()) or "none"})
    return rows
