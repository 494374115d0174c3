"""Run a scenario against a broker: the road steps in report intervals of simulated time.

Within a step, in this order: physics and traffic over the interval, the poles' events and
telemetry, the faults due, the platform's messages received since the last step (commands,
configs, heartbeats; acks go out at the step's time), the fallback check, and State where it
changed. Inbound messages are handled only at step boundaries, so the same scenario, seed and
commands give the same message stream at any speed.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .device import DeviceLogic
from .encode import Encoder, Outgoing
from .engine import RoadSim
from .faults import FaultSchedule, FaultState
from .recording import Recorder
from .scenario import Scenario
from .traffic import TrafficModel
from .transport import ConcentratorTransport, Credentials, PerPoleTransport
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
                 vehicle_events: bool = True, stop: threading.Event | None = None) -> None:
        self.scenario = sc = scenario
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
        self.stop = stop or threading.Event()
        self._last_key = self.sim.state_key()
        self._wall0 = self._pace0 = 0.0

    @property
    def now_ms(self) -> int:
        return self.sim.t_ms

    @property
    def done(self) -> bool:
        return self.sim.t_ms >= self.scenario.end_ms

    def start(self) -> Simulation:
        """Connect every pole, then publish ``online`` and State for each."""
        road = self.scenario.road
        ids = road.pole_ids
        cls = ConcentratorTransport if self.concentrator else PerPoleTransport
        self.transport = cls(self.mqtt_url, road.id, ids, self.credentials)
        self._wall0 = time.monotonic()
        everyone = list(range(len(ids)))
        self.transport.connect(everyone)
        self._announce(everyone, self.sim.t_ms)
        self.transport.flush()
        self._pace0 = time.monotonic()
        return self

    def step(self) -> bool:
        """Advance one report interval; ``False`` once the scenario's end is reached."""
        assert self.transport is not None, "call start() first"
        sim, sc = self.sim, self.scenario
        if self.done:
            return False
        t1 = min(sim.t_ms + sc.report_interval_s * 1000, sc.end_ms)
        self._pace(t1)
        out = sim.step(t1)
        self.truth.add(out.truth)
        self._send_all(self.encoder.step(out))
        before = sim.alive.copy()
        self.truth.faults(self.faults.due(t1), t1)
        self._connectivity(before, t1)
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
        self.transport.flush(pipelined=True)  # the broker's acks are the backpressure
        self.stats.steps += 1
        self.stats.pole_steps += sim.n
        self.stats.sim_end_ms = t1
        return True

    def close(self) -> RunStats:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        if self.recorder is not None:
            self.recorder.close()
            self.stats.recorded = self.recorder.count
        self.truth.close()
        self.stats.inbound = Counter(self.device.counts)
        self.stats.wall_s = round(time.monotonic() - self._wall0, 3)
        return self.stats

    # --- helpers --------------------------------------------------------------------------
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
                for i in lost:  # the broker publishes the will; the recording keeps it for replay
                    m = self.encoder.status(i, t_ms, False)
                    self.recorder.write(m.ts, m.topic, m.payload)
        if gained:
            self.transport.connect(gained)
            self._announce(gained, t_ms)

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
                   heartbeat_required: bool = True) -> RunStats:
    """Run ``scenario`` to its end (or until ``stop`` is set); ``speed`` None = as fast as possible."""
    sim = Simulation(scenario, mqtt_url=mqtt_url, speed=speed, record=record, concentrator=concentrator,
                     credentials=credentials, heartbeat_required=heartbeat_required, stop=stop)
    bar = None
    try:
        sim.start()
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=scenario.duration_s // 60, unit="sim-min", desc=scenario.name)
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
