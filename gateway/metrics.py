"""Gateway counters: plain integers on the hot path, exported through a prometheus registry."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .rejected import RejectedStore


@dataclass
class GatewayMetrics:
    rejected_store: RejectedStore
    spool_depth_fn: Callable[[], int] = lambda: 0
    messages_in: int = 0
    messages_done: int = 0  # of those, in batches committed: stored or spooled, acknowledged, listeners told
    written: int = 0  # points handed to InfluxDB (written or spooled)
    spooled_batches: int = 0
    duplicates: int = 0
    seq_reused: int = 0  # same seq, different payload and ts: stored as the new reading it is
    restarts: Counter[tuple[str, str]] = field(default_factory=Counter)  # unannounced, by (road, pole)
    listener_errors: int = 0
    clock_corrected: int = 0  # readings stored at road time because the pole's clock was out of tolerance
    mirrored: int = 0  # messages of another edge (LwM2M) published on the mirror for API processes
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.command_latency = Histogram(
            "streetlight_command_latency_seconds", "command sent to ack received",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60), registry=self.registry)
        self.registry.register(_Collector(self))

    @property
    def rejected(self) -> dict[str, int]:
        """Rejections by reason."""
        return dict(self.rejected_store.by_reason)

    @property
    def restarts_total(self) -> int:
        """Unannounced restarts (seq back, ts forward, no reboot event) seen since the gateway started."""
        return sum(self.restarts.values())

    @property
    def spool_depth(self) -> int:
        return self.spool_depth_fn()

    def snapshot(self) -> dict[str, object]:
        return {"messages_in": self.messages_in, "written": self.written, "duplicates": self.duplicates,
                "seq_reused": self.seq_reused, "unannounced_restarts": self.restarts_total,
                "rejected": self.rejected, "spool_depth": self.spool_depth, "spooled_batches": self.spooled_batches,
                "listener_errors": self.listener_errors, "clock_corrected": self.clock_corrected,
                "mirrored": self.mirrored}


class _Collector(Collector):
    def __init__(self, m: GatewayMetrics) -> None:
        self.m = m

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        m = self.m
        for name, value, text in (("messages_in", m.messages_in, "MQTT messages received"),
                                  ("written", m.written, "points handed to storage"),
                                  ("duplicates", m.duplicates, "QoS 1 redeliveries dropped"),
                                  ("unannounced_restarts", m.restarts_total,
                                   "pole restarts found without a reboot event (seq back, ts forward)"),
                                  ("seq_reused", m.seq_reused,
                                   "readings stored whose seq was reused with another payload"),
                                  ("clock_corrected", m.clock_corrected,
                                   "readings stored at road time: the pole's clock was out of tolerance"),
                                  ("mirrored", m.mirrored,
                                   "messages of another edge (LwM2M) published on the mirror for API processes")):
            yield CounterMetricFamily(f"streetlight_gateway_{name}", text, value=value)
        rej = CounterMetricFamily("streetlight_gateway_rejected", "invalid messages", labels=["reason"])
        for reason, n in m.rejected.items():
            rej.add_metric([reason], n)
        yield rej
        yield GaugeMetricFamily("streetlight_gateway_spool_depth", "batches waiting on disk", value=m.spool_depth)
