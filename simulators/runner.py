"""Run a scenario against a broker: the road steps in report intervals of simulated time.

Within a step, in this order: physics and traffic over the interval, the poles' events and
telemetry, the faults due, the configs and heartbeats received since the last step, the
fallback check, and State where it changed. Without commands the same scenario and seed give the
same message stream at any speed.

Commands are acted on as they arrive, between steps: a command thread gives each one the road
time of its arrival (wall time mapped through the pace) plus a delay drawn from the road's link
model (from a generator seeded by the scenario), waits until that road time is due, and then
executes it, sending its Ack and the new State at once (ts = that road time). At speed ``max``
there is no road clock between steps, so commands act at the last step's time without delay.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .device import DeviceLogic, Inbound, LinkModel, fixed_link, link_model
from .encode import Encoder, Outgoing
from .engine import RoadSim
from .faults import FAULT_TYPES, Fault, FaultSchedule, FaultState
from .recording import Recorder
from .scenario import Scenario
from .traffic import TrafficModel
from .transport import POLE_KEEPALIVE_S, CabinetTransport, ConcentratorTransport, Credentials, PerPoleTransport
from .truth import TruthRecorder, truth_path

log = logging.getLogger(__name__)


@dataclass
class RunStats:
    scenario: str
    poles: int
    steps: int = 0
    pole_steps: int = 0
    sim_start_ms: int = 0
    sim_end_ms: int = 0
    wall_s: float = 0.0
    messages: Counter[str] = field(default_factory=Counter)  # published, by topic kind
    inbound: Counter[str] = field(default_factory=Counter)
    recorded: int = 0
    stopped_early: bool = False

    @property
    def published(self) -> int:
        return sum(self.messages.values())


class Simulation:
    """A scenario's road connected to a broker, advanced one report interval per ``step()``."""

    def __init__(self, scenario: Scenario, *, mqtt_url: str, speed: float | None = None,
                 record: Path | None = None, concentrator: bool = False,
                 credentials: Credentials | None = None, heartbeat_required: bool = True,
                 vehicle_events: bool = True, stop: threading.Event | None = None,
                 disconnect: str | None = None, link: LinkModel | None = None) -> None:
        self.scenario = sc = scenario
        self.disconnect = disconnect or sc.disconnect
        self.link = link or (link_model(sc.link) if sc.link else fixed_link(0))
        self.mqtt_url = mqtt_url
        self.concentrator = concentrator
        self.credentials = credentials
        road = sc.road
        offset = _utc_offset_s(road.timezone, sc.start_ms)
        traffic = TrafficModel(road, seed=sc.seed, utc_offset_s=offset, scale=sc.traffic_scale, surges=list(sc.surges))
        self.sim = RoadSim(road, sc.start_ms, sc.seed, sc.report_interval_s, heartbeat_required, offset, traffic)
        self.encoder = Encoder(self.sim, vehicle_events=vehicle_events)
        self.device = DeviceLogic(self.sim)
        self.faults = FaultSchedule(FaultState(self.sim), list(sc.faults))
        self.speed = speed  # None: as fast as the broker takes it
        self.recorder = Recorder(record) if record else None
        # the road's ground truth, for judges: in memory always, beside the recording when recording
        self.truth = TruthRecorder(road, truth_path(record) if record else None)
        self.stats = RunStats(sc.name, len(road.poles), sim_start_ms=sc.start_ms, sim_end_ms=sc.start_ms)
        self.transport: PerPoleTransport | ConcentratorTransport | None = None
        self.cabinets: CabinetTransport | None = None
        self.stop = stop or threading.Event()
        self._last_key = self.sim.state_key()
        self._wall0 = self._pace0 = 0.0
        self._lock = threading.RLock()  # the road is changed by the step and by the command thread
        self._link_rng = np.random.default_rng([sc.seed, 7])
        self._will_due: dict[int, int] = {}  # silently dead poles: when the recording gets their will
        self._cmd_stop = threading.Event()
        self._cmd_thread: threading.Thread | None = None

    @property
    def now_ms(self) -> int:
        return self.sim.t_ms

    @property
    def done(self) -> bool:
        return self.sim.t_ms >= self.scenario.end_ms

    def _make_transport(self) -> PerPoleTransport | ConcentratorTransport:
        """The poles' connections (a mixed road adds its LwM2M controllers: ``simulators.lwm2m_mode``)."""
        road = self.scenario.road
        cls = ConcentratorTransport if self.concentrator else PerPoleTransport
        return cls(self.mqtt_url, road.id, road.pole_ids, self.credentials, disconnect=self.disconnect)

    def start(self) -> Simulation:
        """Connect every pole, then publish ``online`` and State for each; then the cabinets."""
        road = self.scenario.road
        self.transport = self._make_transport()
        self._wall0 = time.monotonic()
        everyone = list(range(len(road.pole_ids)))
        self.transport.connect(everyone)
        self._announce(everyone, self.sim.t_ms)
        self.transport.flush()
        cabs = self.sim.cabinets
        self.cabinets = CabinetTransport(self.mqtt_url, road.id, cabs.ids, self.credentials)
        for k in range(len(cabs.ids)):
            self.cabinets.connect(k)
            self._cabinet_out(k, self.sim.t_ms, cabs.status_topic(k), b"online", retain=True)
        self.cabinets.flush()
        self._cab_silent = cabs.silent.copy()
        self._pace0 = time.monotonic()
        self._cmd_thread = threading.Thread(target=self._command_loop, name="sim-commands", daemon=True)
        self._cmd_thread.start()
        return self

    def inject(self, type: str, pole: str) -> None:
        """Start a fault of ``type`` (``simulators.faults.FAULT_TYPES``, one naming a pole) on ``pole``
        at the next step, as if the scenario had it; the ground truth records it the same way."""
        kind = FAULT_TYPES.get(type)
        if kind is None or kind[0] != "pole":
            raise ValueError(f"fault type {type!r} does not name a pole; pole faults: "
                             f"{', '.join(t for t, (what, _) in FAULT_TYPES.items() if what == 'pole')}")
        index = self.scenario.road.pole(pole).index
        with self._lock:
            self.faults.add(Fault(type, self.sim.t_ms + 1, (index,), label=pole))

    def step(self) -> bool:
        """Advance one report interval; ``False`` once the scenario's end is reached."""
        assert self.transport is not None, "call start() first"
        sim, sc = self.sim, self.scenario
        if self.done:
            return False
        t1 = min(sim.t_ms + sc.report_interval_s * 1000, sc.end_ms)
        self._pace(t1)
        with self._lock:
            self._step(t1)
        self.transport.flush(pipelined=True)  # the broker's acks are the backpressure
        return True

    def _step(self, t1: int) -> None:
        sim = self.sim
        assert self.transport is not None
        out = sim.step(t1)
        self.truth.add(out.truth)
        self._send_all(self.encoder.step(out))
        before = sim.alive.copy()
        self._send_cabinets(t1)
        self.truth.faults(self.faults.due(t1), t1)
        self._connectivity(before, t1)
        self._record_wills(t1)
        acks = self.device.handle(self.transport.inbox.drain(), t1)
        self._send_all([self.encoder.ack(i, t1, payload) for i, payload in acks])
        sim.apply_targets(t1)
        forced = self.transport.reconnected()
        self._send_all([self.encoder.status(i, t1, True) for i in forced])
        key = sim.state_key()
        changed = np.any(key != self._last_key, axis=1) & sim.alive
        changed[forced] = True
        self._send_all([self.encoder.state(i, t1) for i in np.flatnonzero(changed).tolist()])
        self._last_key[changed] = key[changed]
        self.stats.steps += 1
        self.stats.pole_steps += sim.n
        self.stats.sim_end_ms = t1

    def close(self) -> RunStats:
        self._cmd_stop.set()
        if self._cmd_thread is not None:
            self._cmd_thread.join(10)
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        if self.cabinets is not None:
            self.cabinets.close()
            self.cabinets = None
        if self.recorder is not None:
            self.recorder.close()
            self.stats.recorded = self.recorder.count
        self.truth.close()
        self.stats.inbound = Counter(self.device.counts)
        self.stats.wall_s = round(time.monotonic() - self._wall0, 3)
        return self.stats

    # --- helpers --------------------------------------------------------------------------
    def _send_cabinets(self, t_ms: int) -> None:
        """The cabinets' reports of this step; a cabinet that fell silent drops its connection."""
        cabs, tr = self.sim.cabinets, self.cabinets
        assert tr is not None
        for k in range(len(cabs.ids)):
            if cabs.silent[k] and not self._cab_silent[k]:
                tr.drop(k)
            elif not cabs.silent[k] and self._cab_silent[k]:
                tr.connect(k)
                self._cabinet_out(k, t_ms, cabs.status_topic(k), b"online", retain=True)
        self._cab_silent = cabs.silent.copy()
        for k, topic, payload in cabs.step(t_ms):
            self._cabinet_out(k, t_ms, topic, payload)
        tr.flush()

    def _cabinet_out(self, k: int, t_ms: int, topic: str, payload: bytes, retain: bool = False) -> None:
        assert self.cabinets is not None
        self.cabinets.publish(k, topic, payload, retain)
        self.stats.messages["cabinet"] += 1
        if self.recorder is not None:
            self.recorder.write(t_ms, topic, payload)

    def _pace(self, t_ms: int) -> None:
        """Wait until simulated ``t_ms`` is due at this speed; a stop request cuts the wait short."""
        if self.speed is not None:
            due = self._pace0 + (t_ms - self.scenario.start_ms) / 1000.0 / self.speed
            self.stop.wait(max(0.0, due - time.monotonic()))
    def _announce(self, poles: list[int], t_ms: int) -> None:
        self._send_all([self.encoder.status(i, t_ms, True) for i in poles])
        self._send_all([self.encoder.state(i, t_ms) for i in poles])
        key = self.sim.state_key()
        self._last_key[poles] = key[poles]

    def _connectivity(self, before: np.ndarray, t_ms: int) -> None:
        assert self.transport is not None
        after = self.sim.alive
        lost = np.flatnonzero(before & ~after).tolist()
        gained = np.flatnonzero(~before & after).tolist()
        if lost:
            self.transport.drop(lost)
            if not self.concentrator and self.recorder is not None:
                # the broker publishes the will; the recording keeps it for replay: at once after
                # a clean close, after 1.5 × keep-alive of road time after a silent death
                for i in lost:
                    if self.disconnect == "clean":
                        m = self.encoder.status(i, t_ms, False)
                        self.recorder.write(m.ts, m.topic, m.payload)
                    else:
                        self._will_due[i] = t_ms + int(1.5 * POLE_KEEPALIVE_S * 1000)
        if gained:
            if self.recorder is not None:
                for i in gained:  # back before the keep-alive ran out: the takeover ends the mute connection
                    if self._will_due.pop(i, None) is not None:
                        m = self.encoder.status(i, t_ms, False)
                        self.recorder.write(m.ts, m.topic, m.payload)
            self.transport.connect(gained)
            self._announce(gained, t_ms)

    def _record_wills(self, t_ms: int) -> None:
        """Wills of silently dead poles whose keep-alive ran out by ``t_ms`` of road time."""
        if not self._will_due or self.recorder is None:
            return
        for i, due in sorted(self._will_due.items()):
            if due <= t_ms:
                m = self.encoder.status(i, due, False)
                self.recorder.write(m.ts, m.topic, m.payload)
                del self._will_due[i]

    # --- commands, as they arrive ------------------------------------------------------
    def _road_now(self) -> int:
        """Road time now: the pace's mapping of wall time, within the step under way."""
        sim, sc = self.sim, self.scenario
        if self.speed is None:
            return sim.t_ms
        t = sc.start_ms + int((time.monotonic() - self._pace0) * self.speed * 1000)
        return max(sim.t_ms, min(t, sim.t_ms + sc.report_interval_s * 1000, sc.end_ms))

    def _wall_until(self, t_ms: int) -> float:
        if self.speed is None:
            return 0.0
        return self._pace0 + (t_ms - self.scenario.start_ms) / 1000.0 / self.speed - time.monotonic()

    def _command_loop(self) -> None:
        assert self.transport is not None
        inbox = self.transport.inbox.commands
        waiting: list[tuple[int, int, Inbound]] = []  # (due road ms, arrival, command)
        while not self._cmd_stop.is_set():
            timeout = 0.2 if not waiting else min(0.2, max(0.0, self._wall_until(waiting[0][0])))
            try:
                items = [inbox.get(timeout=timeout)]
            except queue.Empty:
                items = []
            while True:
                try:
                    items.append(inbox.get_nowait())
                except queue.Empty:
                    break
            with self._lock:
                now = self._road_now()
                for item in items:
                    delay = self.link.draw(self._link_rng) if self.speed is not None else 0
                    heapq.heappush(waiting, (now + delay, item.arrival, item))
            due = []
            while waiting and (self.speed is None or self._wall_until(waiting[0][0]) <= 0):
                due.append(heapq.heappop(waiting))
            if due:
                try:
                    self._execute(due)
                except Exception:  # a command must never take the road down
                    log.exception("commands could not be executed")

    def _execute(self, due: list[tuple[int, int, Inbound]]) -> None:
        with self._lock:
            if self.transport is None:
                return
            sim = self.sim
            out: list[Outgoing] = []
            energy_t = -1
            for t_due, _, item in due:
                t = max(sim.t_ms, min(t_due, self._road_now()))
                if t != energy_t:
                    sim.integrate_energy(t)
                    energy_t = t
                acks = self.device.handle([item], t)
                out += [self.encoder.ack(i, t, payload) for i, payload in acks]
                for i in {i for i, _ in acks}:
                    row = sim.state_row(i)
                    if sim.alive[i] and np.any(row != self._last_key[i]):
                        out.append(self.encoder.state(i, t))
                        self._last_key[i] = row
            self._send_all(out)  # each pole's ack and new state in one write, the poles' writes back to back

    def _send(self, m: Outgoing) -> None:
        self._send_all([m])

    def _send_all(self, msgs: list[Outgoing]) -> None:
        assert self.transport is not None
        if not msgs:
            return
        self.transport.publish_many(msgs)
        counts = self.stats.messages
        rec = self.recorder
        for m in msgs:
            counts[m.kind] += 1
            if rec is not None:
                rec.write(m.ts, m.topic, m.payload)


def _utc_offset_s(tz: str, t_ms: int) -> int:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    off = datetime.fromtimestamp(t_ms / 1000, ZoneInfo(tz)).utcoffset()
    return int(off.total_seconds()) if off else 0


def run_simulation(scenario: Scenario, *, mqtt_url: str, speed: float | None, record: Path | None = None,
                   concentrator: bool = False, credentials: Credentials | None = None,
                   stop: threading.Event | None = None, progress: bool = False,
                   heartbeat_required: bool = True, disconnect: str | None = None,
                   link: LinkModel | None = None) -> RunStats:
    """Run ``scenario`` to its end (or until ``stop`` is set); ``speed`` None = as fast as possible.

    ``disconnect`` (``silent``/``clean``) and ``link`` override the scenario's."""
    sim = Simulation(scenario, mqtt_url=mqtt_url, speed=speed, record=record, concentrator=concentrator,
                     credentials=credentials, heartbeat_required=heartbeat_required, stop=stop,
                     disconnect=disconnect, link=link)
    return drive(sim, progress=progress, stop=stop)


def drive(sim: Simulation, *, progress: bool = False, stop: threading.Event | None = None,
          label: str | None = None) -> RunStats:
    """Start ``sim`` and step it to its scenario's end (or until ``stop`` is set), with a progress
    bar in simulated minutes when asked; returns its RunStats."""
    scenario = sim.scenario
    bar = None
    try:
        sim.start()
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=scenario.duration_s // 60, unit="sim-min", desc=label or scenario.name)
        done_min = 0
        while sim.step():
            if stop is not None and stop.is_set():
                sim.stats.stopped_early = not sim.done
                break
            if bar is not None:
                now_min = (sim.now_ms - scenario.start_ms) // 60_000
                bar.update(now_min - done_min)
                done_min = now_min
    finally:
        if bar is not None:
            bar.close()
        stats = sim.close()
    return stats


class SimulationThread:
    """``run_simulation`` in a background thread, for a process that also runs the platform."""

    def __init__(self, scenario: Scenario, **kwargs: object) -> None:
        self.stop_event = threading.Event()
        self.stats: RunStats | None = None
        self.error: BaseException | None = None
        self._kwargs = kwargs
        self._scenario = scenario
        self._thread = threading.Thread(target=self._run, name=f"sim-{scenario.name}", daemon=True)

    def _run(self) -> None:
        try:
            self.stats = run_simulation(self._scenario, stop=self.stop_event, **self._kwargs)  # type: ignore[arg-type]
        except BaseException as err:  # reported to the caller of stop()/join()
            self.error = err
            log.exception("simulation %s failed", self._scenario.name)

    def start(self) -> SimulationThread:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> RunStats | None:
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.stats

    def stop(self, timeout: float = 30.0) -> RunStats | None:
        self.stop_event.set()
        return self.join(timeout)


def with_poles(scenario: Scenario, n: int) -> Scenario:
    """The scenario on a synthetic road of ``n`` poles (faults and expectations name real poles, so
    they are dropped; whole-road traffic surges are kept)."""
    if n == len(scenario.road.poles):
        return scenario
    from streetlight.registry import load_road

    road = load_road(f"synthetic:{n}")
    return dataclasses.replace(scenario, road=road, faults=[], expected=[],
                               surges=[s for s in scenario.surges if s.segment is None])
