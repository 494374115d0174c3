"""What the platform reported during a run, as any subscriber hears it, and its verdict.

``AlertCollector`` is the one alert subscriber (the pytest plugin and ``streetlight scenario run
--check`` both use it); ``SimulationReport`` hands the alerts to the one scenario judge,
``simulators.judge.judge_faults``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from streetlight.errors import ProtocolError
from streetlight.protocol import Alert, parse_alert, road_topic

from .errors import BrokerConnectError
from .judge import Verdict, judge_faults, timeline_of
from .runner import RunStats
from .scenario import Expected, Scenario
from .transport import Connection, Inbox
from .truth import FaultSpan


@dataclass
class SimulationReport:
    """What a run produced and what the platform said about it."""

    scenario: Scenario
    stats: RunStats | None
    alerts: list[Alert] = field(default_factory=list)
    invalid_alerts: list[bytes] = field(default_factory=list)
    timeline: list[FaultSpan] | None = None  # the run's fault timeline (default: the scenario's plan)

    def verdict(self) -> Verdict:
        sc = self.scenario
        timeline = self.timeline if self.timeline is not None else timeline_of(sc.faults)
        return judge_faults(sc.expected, self.alerts, sc.report_interval_s, timeline)

    def unmet(self) -> list[Expected]:
        """Expectations not met: missed, late, only opened early, or opened as several faults."""
        return list(self.verdict().unmet)

    def unexpected(self) -> list[Alert]:
        """Opened alerts that match no expectation, or opened before the fault's first evidence."""
        ids = {fa.opening.fault_id for fa in self.verdict().false_alarms}
        return [a for a in self.alerts if a.state == "open" and a.fault_id in ids]

    def summary(self) -> dict[str, Any]:
        v = self.verdict()
        return {"alerts": len(self.alerts), "unmet": [e.__dict__ for e in v.unmet],
                "unexpected": [fa.opening.fault_id for fa in v.false_alarms]}


class AlertCollector:
    """Subscribes to a road's ``alerts`` topic, as a crew's system would, and keeps every Alert
    (payloads that are not valid Alerts apart, in ``invalid``)."""

    def __init__(self, mqtt_url: str, road_id: str, credentials: tuple[str, str] | None = None) -> None:
        self.inbox = Inbox()
        self._lock = threading.Lock()
        self.alerts: list[Alert] = []
        self.invalid: list[bytes] = []
        self.conn = Connection(mqtt_url, f"sl-alerts-{road_id}-{id(self)}", credentials,
                               [road_topic(road_id, "alerts")], self.inbox, None)
        self.conn.start()
        try:
            self.conn.wait()  # subscribed before the run starts: no alert is missed
        except BrokerConnectError:
            self.conn.close()
            raise

    def collect(self) -> list[Alert]:
        """Everything heard so far (drains the inbox); safe to call from any thread."""
        with self._lock:
            for m in self.inbox.drain():
                try:
                    self.alerts.append(parse_alert(m.payload))
                except ProtocolError:
                    self.invalid.append(m.payload)
            return list(self.alerts)

    def close(self) -> None:
        self.collect()
        self.conn.close()
