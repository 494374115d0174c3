"""Checking what the platform reported against a scenario's ``expected`` list.

An expectation is met by an Alert of the same type, at the same pole (or span), first seen no
earlier than the fault and no later than ``within_reports`` report intervals after it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from streetlight.errors import ProtocolError
from streetlight.protocol import Alert, parse_alert, road_topic

from .runner import RunStats
from .scenario import Expected, Scenario
from .transport import Connection, Inbox


def meets(alert: Alert, exp: Expected, report_interval_s: int) -> bool:
    if alert.type != exp.type:
        return False
    if exp.pole is not None and alert.pole != exp.pole:
        return False
    if exp.span is not None and tuple(alert.span or ()) != exp.span:
        return False
    if exp.feeder is not None and (alert.feeder != exp.feeder or alert.pole is not None):
        return False
    deadline = exp.after_ms + exp.within_reports * report_interval_s * 1000
    return exp.after_ms <= alert.first_seen_ts <= deadline


@dataclass
class SimulationReport:
    """What a run produced and what the platform said about it."""

    scenario: Scenario
    stats: RunStats | None
    alerts: list[Alert] = field(default_factory=list)
    invalid_alerts: list[bytes] = field(default_factory=list)

    def unmet(self) -> list[Expected]:
        """Expectations no alert satisfied (empty when the platform found every fault in time)."""
        return [e for e in self.scenario.expected
                if not any(meets(a, e, self.scenario.report_interval_s) for a in self.alerts)]

    def unexpected(self) -> list[Alert]:
        """Opened alerts that match no expectation (false alarms)."""
        return [a for a in self.alerts if a.state == "open" and not any(
            meets(a, e, self.scenario.report_interval_s) for e in self.scenario.expected)]

    def summary(self) -> dict[str, Any]:
        return {"alerts": len(self.alerts), "unmet": [e.__dict__ for e in self.unmet()],
                "unexpected": [a.fault_id for a in self.unexpected()]}


class AlertCollector:
    """Subscribes to a road's ``alerts`` topic and keeps every Alert (invalid ones apart)."""

    def __init__(self, mqtt_url: str, road_id: str, credentials: tuple[str, str] | None = None) -> None:
        self.inbox = Inbox()
        self._lock = threading.Lock()
        self.alerts: list[Alert] = []
        self.invalid: list[bytes] = []
        self.conn = Connection(mqtt_url, f"sl-alerts-{road_id}-{id(self)}", credentials,
                               [road_topic(road_id, "alerts")], self.inbox, None)
        self.conn.start()
        self.conn.wait()

    def collect(self) -> list[Alert]:
        for m in self.inbox.drain():
            try:
                self.alerts.append(parse_alert(m.payload))
            except ProtocolError:
                self.invalid.append(m.payload)
        return self.alerts

    def close(self) -> None:
        self.collect()
        self.conn.close()
