"""``streetlight scenario run NAME --check``: a scenario against the whole platform, judged.

Starts a real Mosquitto and InfluxDB in a temporary folder (or uses the configured ones), the
platform (gateway and controller) and the simulated road, runs the scenario as fast as the
platform keeps up (the simulator steps when the platform has seen the previous step, so the
result does not depend on the machine's speed), collects the alerts the platform publishes on
``sl/v1/{road}/alerts`` like any subscriber would, and compares them with the scenario's
expected outcome.
"""

from __future__ import annotations

import logging
import queue
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ops.servers import start_influxd, start_mosquitto
from simulators.runner import Simulation
from simulators.scenario import Scenario, load_scenario
from streetlight.protocol import road_topic
from streetlight.settings import Settings

from .live_platform import LivePlatform
from .outcome import Outcome, OutcomeRow, compare

log = logging.getLogger(__name__)


@dataclass
class CheckResult:
    scenario: Scenario
    outcome: Outcome
    alerts: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    wall_s: float = 0.0
    messages_in: int = 0
    rejected: int = 0
    energy: dict[str, Any] = field(default_factory=dict)


class AlertListener:
    """A plain MQTT subscriber on the road's alerts topic, as a crew's system would be."""

    def __init__(self, settings: Settings, road: str) -> None:
        self.alerts: queue.Queue[dict[str, Any]] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"check-{uuid.uuid4().hex[:8]}")
        if settings.mqtt_username:
            pw = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
            self.client.username_pw_set(settings.mqtt_username, pw)
        self.client.on_message = lambda c, u, m: self.alerts.put(orjson.loads(m.payload))
        self._ready = queue.Queue[bool]()
        self.client.on_subscribe = lambda *a: self._ready.put(True)
        self.client.connect(settings.mqtt_host, settings.mqtt_port)
        self.client.subscribe(road_topic(road, "alerts"), qos=1)
        self.client.loop_start()
        self._ready.get(timeout=10)

    def drain(self) -> list[dict[str, Any]]:
        out = []
        while True:
            try:
                out.append(self.alerts.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def run_check(ref: str, *, settings: Settings | None = None, progress: Callable[[int, int], None] | None = None,
              keep_up_s: float = 10.0, lead_reports: int = 5, concentrator: bool = False) -> CheckResult:
    """Run scenario ``ref`` against the whole platform; servers are started here unless
    ``settings`` points at running ones. The simulated road runs at most ``lead_reports``
    report intervals ahead of what the platform has seen."""
    scenario = load_scenario(ref)
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
        platform = LivePlatform(settings, [road], client_id=f"check-{uuid.uuid4().hex[:6]}",
                                report_interval_s=scenario.report_interval_s)
        platform.start()
        stack.callback(platform.stop)
        listener = AlertListener(settings, road.id)
        stack.callback(listener.close)
        _wait(lambda: platform.gateway.connected, 10)
        sim = Simulation(scenario, mqtt_url=settings.mqtt_url, speed=None, concentrator=concentrator)
        sim.start()
        stack.callback(sim.close)
        interval = scenario.report_interval_s * 1000
        total = max(1, (scenario.end_ms - scenario.start_ms) // interval)
        steps = 0
        while sim.step():
            steps += 1
            # the road may run a few reports ahead of the platform (never near the poles'
            # fallback time), so the two pipelines overlap instead of waiting on each other
            target = sim.now_ms - lead_reports * interval
            _wait(lambda t=target: (platform.gateway.clock.now_ms() or 0) >= t, keep_up_s)
            if progress:
                progress(steps, total)
        # the last reports, then the controller's last tick, then the alerts' way back
        _wait(lambda: (platform.gateway.clock.now_ms() or 0) >= sim.now_ms, keep_up_s)
        time.sleep(1.0)
        alerts = listener.drain()
        rep = platform.control.roads[road.id].ctl.energy_report()
        outcome = compare(scenario.expected, alerts, scenario.report_interval_s)
        lost = int(getattr(sim.transport, "lost_unacked", 0))
        outcome.rows.append(_accounting(platform, road.id, sim.stats.messages, lost, keep_up_s))
        result = CheckResult(
            scenario, outcome, alerts, steps,
            time.monotonic() - t0, platform.gateway.metrics.messages_in,
            int(sum(platform.gateway.metrics.rejected.values())), rep.to_dict(),
        )
    return result


def _accounting(platform: LivePlatform, road: str, published: Any, lost: int, timeout_s: float) -> OutcomeRow:
    """Every reading the road published is stored in InfluxDB or counted as rejected, but for
    those a pole sent into a connection that died with its supply before the broker acknowledged
    them (``lost``, any kind of message: an upper bound on the readings among them)."""
    sent = int(published.get("telemetry", 0) + published.get("event", 0))
    rejected = int(sum(platform.gateway.metrics.rejected.values()))

    def stored() -> int:
        try:
            return sum(platform.gateway.store.count_readings(road).values())
        except Exception:  # the database may answer a moment later
            return -1

    _wait(lambda: stored() + rejected >= sent, timeout_s)
    n = stored()
    m = platform.gateway.metrics
    ok = sent - lost <= n + rejected <= sent
    gap = sent - n - rejected
    died = "" if gap <= 0 else f", {gap:,} died with their pole's supply" if ok else f", {gap:,} missing"
    return OutcomeRow("readings", f"{sent:,} published",
                      f"{n:,} stored + {rejected:,} rejected{died} ({m.restarts_total} unannounced restarts)", None,
                      ok, f"{gap:,} readings neither stored nor counted ({lost:,} messages were "
                          "unacknowledged when their pole lost its supply)")


def _wait(cond: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True
