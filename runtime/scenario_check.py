"""``streetlight scenario run NAME --check``: a scenario against the whole platform, judged.

Starts a real Mosquitto and InfluxDB in a temporary folder (or uses the configured ones), the
platform (gateway and controller) and the simulated road, runs the scenario as fast as the
platform keeps up (the simulator steps when the platform has seen the previous step, so the
result does not depend on the machine's speed), collects the alerts the platform publishes on
``sl/v1/{road}/alerts`` like any subscriber would (``simulators.expect.AlertCollector``), judges
them against the scenario's expected outcome and the run's fault timeline
(``simulators.judge.judge_faults``), and accounts for every reading the road published: stored in
InfluxDB, dropped as a duplicate, or rejected with a reason.

With ``lwm2m_share`` the road is mixed (``simulators.lwm2m_mode``): the lamp controllers of that
share of the poles speak LwM2M to the platform's LwM2M server on a free loopback UDP port. Their
readings are accounted for where they enter the pipeline: what the LwM2M server handed to the
gateway is counted as published, beside what the devices were given (``Readings.lwm2m``).
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lwm2m.adapter import Lwm2mAdapter
from ops.servers import start_influxd, start_mosquitto
from simulators.expect import AlertCollector
from simulators.judge import Verdict, judge_faults
from simulators.lwm2m_mode import MixedSimulation, with_lwm2m
from simulators.runner import Simulation
from simulators.scenario import Scenario, load_scenario
from streetlight.errors import ProtocolError
from streetlight.net import LOOPBACK, free_udp_port
from streetlight.protocol import parse_topic
from streetlight.settings import Settings

from .live_platform import LivePlatform

log = logging.getLogger(__name__)

READING_KINDS = ("telemetry", "event")  # the measurements every reading lands in
LWM2M_LEAD_REPORTS = 1


@dataclass
class Readings:
    """Every telemetry and event reading the road published, and where each one went."""

    published: dict[str, int] = field(default_factory=dict)  # by measurement
    stored: dict[str, int] = field(default_factory=dict)  # count(seq) in InfluxDB, by measurement
    duplicates: int = 0  # dropped by the gateway as the same reading again
    rejected: dict[str, int] = field(default_factory=dict)  # refused by the gateway, by reason
    # messages a pole sent into a connection that closed with its supply before the broker
    # acknowledged them (only with `disconnect: clean`): lost with the device, as in the field
    lost_with_supply: int = 0
    unannounced_restarts: int = 0
    # a mixed road: readings the simulation gave its LwM2M devices, and the messages the LwM2M
    # server made of them (counted in ``published``), by measurement
    lwm2m: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def missing(self) -> int:
        """Published but neither stored, nor a counted duplicate, nor a counted rejection (0 = all accounted for)."""
        return (sum(self.published.values()) - sum(self.stored.values()) - self.duplicates
                - sum(self.rejected.values()))

    @property
    def accounted(self) -> bool:
        return (0 <= self.missing <= self.lost_with_supply
                and all(self.stored.get(k, 0) <= n for k, n in self.published.items()))

    def line(self) -> str:
        kinds = ", ".join(f"{k} {self.stored.get(k, 0):,}/{self.published.get(k, 0):,}" for k in READING_KINDS)
        rej = sum(self.rejected.values())
        why = f" ({', '.join(f'{r} {n}' for r, n in sorted(self.rejected.items()))})" if rej else ""
        lost = f", {self.missing:,} died with their pole's supply" if self.accounted and self.missing else ""
        verdict = "all accounted for" if self.accounted else f"MISMATCH: {self.missing:+,} unaccounted"
        over = ""
        if self.lwm2m:
            given, handed = self.lwm2m.get("given", {}), self.lwm2m.get("handed_on", {})
            over = "; over LwM2M (handed on/given to devices): " + ", ".join(
                f"{k} {handed.get(k, 0):,}/{given.get(k, 0):,}" for k in READING_KINDS)
        return (f"readings stored/published: {kinds}; {self.duplicates:,} duplicates, {rej:,} rejected{why}{lost}, "
                f"{self.unannounced_restarts:,} unannounced restarts{over}; {verdict}")

    def to_dict(self) -> dict[str, Any]:
        return {"published": self.published, "stored": self.stored, "duplicates": self.duplicates,
                "rejected": self.rejected, "missing": self.missing, "lost_with_supply": self.lost_with_supply,
                "unannounced_restarts": self.unannounced_restarts, "lwm2m": self.lwm2m, "accounted": self.accounted}


@dataclass
class CheckResult:
    scenario: Scenario
    verdict: Verdict
    alerts: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    wall_s: float = 0.0
    messages_in: int = 0
    rejected: int = 0
    energy: dict[str, Any] = field(default_factory=dict)
    readings: Readings = field(default_factory=Readings)

    @property
    def passed(self) -> bool:
        """Every fault found in time at its place, no false alarm, every reading accounted for."""
        return self.verdict.passed and self.readings.accounted


def run_check(ref: str, *, settings: Settings | None = None, progress: Callable[[int, int], None] | None = None,
              keep_up_s: float = 10.0, lead_reports: int = 5, concentrator: bool = False,
              lwm2m_share: float = 0.0) -> CheckResult:
    """Run scenario ``ref`` against the whole platform; servers are started here unless
    ``settings`` points at running ones (then the database must hold no other run of the road
    over the scenario's hours, or the reading count is off). The simulated road runs at most
    ``lead_reports`` report intervals ahead of what the platform has seen. ``lwm2m_share`` (0 … 1)
    puts that share of the lamp controllers on LwM2M."""
    scenario = load_scenario(ref)
    if lwm2m_share > 0:
        scenario = with_lwm2m(scenario, lwm2m_share)
    road = scenario.road
    t0 = time.monotonic()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="streetlight-check-")))
        if settings is None:
            mq = start_mosquitto(tmp / "mosquitto")
            stack.callback(mq.stop)
            db = start_influxd(tmp / "influxd")
            stack.callback(db.stop)
            settings = Settings(mqtt_url=mq.url, influx_url=db.url, influx_db="scenario_check", data_dir=tmp / "state",
                                roads=[road.id])
        else:
            settings = settings.with_overrides(data_dir=str(tmp / "state"))
        if lwm2m_share > 0:
            settings = settings.with_overrides(lwm2m_enabled=True, lwm2m_host=LOOPBACK, lwm2m_port=free_udp_port())
        platform = LivePlatform(settings, [road], client_id=f"check-{uuid.uuid4().hex[:6]}",
                                report_interval_s=scenario.report_interval_s)
        platform.start()
        stack.callback(platform.stop)
        adapter = None
        if lwm2m_share > 0:
            adapter = Lwm2mAdapter(platform.gateway, settings, [road])
            adapter.start()
            stack.callback(adapter.stop)
        creds = None
        if settings.mqtt_username:
            pw = settings.mqtt_password.get_secret_value() if settings.mqtt_password else ""
            creds = (settings.mqtt_username, pw)
        collector = AlertCollector(settings.mqtt_url, road.id, creds)
        stack.callback(collector.close)
        _wait(lambda: platform.gateway.connected, 10)
        sim: Simulation
        if adapter is not None:
            sim = MixedSimulation(scenario, mqtt_url=settings.mqtt_url, speed=None, concentrator=concentrator,
                                  lwm2m_server=(settings.lwm2m_host, settings.lwm2m_port),
                                  road_time=lambda: platform.gateway.clock.now_ms(road.id))
        else:
            sim = Simulation(scenario, mqtt_url=settings.mqtt_url, speed=None, concentrator=concentrator)
        sim.start()
        stack.callback(sim.close)
        interval = scenario.report_interval_s * 1000
        if adapter is not None:
            # an LwM2M flag reaches its device once road time reaches it (simulators.lwm2m_mode); the
            # MQTT half's queue may then carry road time on by as many reports as the road runs ahead,
            # so on a mixed road it runs less far ahead, or the flag's fault opens late
            lead_reports = min(lead_reports, LWM2M_LEAD_REPORTS)
        total = max(1, (scenario.end_ms - scenario.start_ms) // interval)
        steps = 0
        while sim.step():
            steps += 1
            # the road may run a few reports ahead of the platform (never near the poles'
            # fallback time), so the two pipelines overlap instead of waiting on each other
            target = sim.now_ms - lead_reports * interval
            _wait(lambda t=target: (platform.gateway.clock.now_ms() or 0) >= t, keep_up_s)
            if adapter is not None:  # the LwM2M edge is paced the same way
                _wait(lambda t=target, a=adapter: _lwm2m_caught_up(a, t), keep_up_s)
            if progress:
                progress(steps, total)
        # the last reports, then the controller's last tick, then the alerts' way back
        _wait(lambda: (platform.gateway.clock.now_ms() or 0) >= sim.now_ms, keep_up_s)
        # road time moves as messages are taken in; the controller hears them once stored
        _wait(lambda: platform.gateway.idle, keep_up_s)
        lost = int(getattr(sim.transport, "lost_unacked", 0))
        fleet = getattr(sim.transport, "fleet", None)
        stats = sim.close()
        time.sleep(1.0)
        alerts = collector.collect()
        published = dict(stats.messages)
        over: dict[str, dict[str, int]] = {}
        if adapter is not None and fleet is not None:
            over = {"given": {k: fleet.taken[k] for k in READING_KINDS},
                    "handed_on": {k: adapter.handed_on[k] for k in READING_KINDS}}
            for k in READING_KINDS:
                published[k] = published.get(k, 0) - over["given"][k] + over["handed_on"][k]
        readings = _account(platform, published, road.id, scenario, keep_up_s, lost)
        readings.lwm2m = over
        rep = platform.control.roads[road.id].ctl.energy_report()
        verdict = judge_faults(scenario.expected, alerts, scenario.report_interval_s, sim.truth.truth().faults)
        result = CheckResult(
            scenario, verdict, [a.to_dict() for a in alerts], steps,
            time.monotonic() - t0, platform.gateway.metrics.messages_in,
            int(sum(platform.gateway.metrics.rejected.values())), rep.to_dict(), readings,
        )
    return result


def _account(platform: LivePlatform, published: Any, road: str, scenario: Scenario, timeout_s: float,
             lost: int = 0) -> Readings:
    """Published readings against those stored (``count(seq)`` per measurement), counted as
    duplicates, or rejected with a reason; waits up to ``timeout_s`` for the last batches to land."""
    r = Readings(published={k: int(published.get(k, 0)) for k in READING_KINDS}, lost_with_supply=lost)
    metrics = platform.gateway.metrics
    deadline = time.monotonic() + timeout_s
    # readings of the run are stored at road time, within the scenario's hours (a pole whose clock
    # is off is stored at road time too); an hour either side takes in any edge
    window = (scenario.start_ms - 3_600_000, scenario.end_ms + 3_600_000)
    while True:
        r.duplicates = metrics.duplicates
        r.unannounced_restarts = metrics.restarts_total
        r.rejected = _rejected_readings(platform, road)
        r.stored = platform.gateway.store.count_readings(road, *window)
        if r.accounted or time.monotonic() > deadline:
            return r
        time.sleep(0.25)


def _rejected_readings(platform: LivePlatform, road: str) -> dict[str, int]:
    """The gateway's rejections of this road's telemetry and events, by reason."""
    out: dict[str, int] = {}
    for m in platform.gateway.metrics.rejected_store.list(0):
        try:
            t = parse_topic(m.topic)
        except ProtocolError:  # a topic outside the grammar is no reading of this road
            continue
        if t.road == road and t.kind in READING_KINDS:
            out[m.reason] = out.get(m.reason, 0) + 1
    return out


def _lwm2m_caught_up(adapter: Lwm2mAdapter, t: int) -> bool:
    """Two thirds of the LwM2M poles' readings have reached road time ``t``."""
    return sum(ts >= t for ts in adapter.last_reading_ms.values()) * 3 >= 2 * len(adapter.registrations)


def _wait(cond: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True
