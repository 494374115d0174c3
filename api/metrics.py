"""Prometheus metrics of the API and, read on each scrape, of the platform behind it."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .platform import PlatformPort


class _PlatformCollector(Collector):
    """``PlatformPort.stats()`` as metrics: names ending in ``_total`` are counters."""

    def __init__(self, platform: PlatformPort) -> None:
        self.platform = platform

    def collect(self) -> Iterator[Metric]:
        try:
            stats = self.platform.stats()
        except Exception:  # a scrape must not fail because one source is away
            stats = {}
        for name, value in sorted(stats.items()):
            if name.endswith("_total"):
                m: Metric = CounterMetricFamily(f"streetlight_{name[:-6]}", f"platform {name}")
            else:
                m = GaugeMetricFamily(f"streetlight_{name}", f"platform {name}")
            m.add_metric([], float(value))
            yield m


class ApiMetrics:
    def __init__(self, platform: PlatformPort) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("streetlight_api_requests", "HTTP requests", ["method", "route", "status"], registry=r)
        self.latency = Histogram("streetlight_api_request_seconds", "HTTP request latency", ["route"], registry=r,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.commands = Counter("streetlight_api_commands", "control requests accepted", ["target"], registry=r)
        self.rate_limited = Counter("streetlight_api_rate_limited", "command requests refused by the rate limit",
                                    registry=r)
        self.stream_clients = Gauge("streetlight_api_stream_clients", "connected live-stream clients", registry=r)
        self.stream_dropped = Counter("streetlight_api_stream_dropped", "live events dropped for a slow client",
                                      registry=r)
        self.webhook_deliveries = Counter("streetlight_webhook_deliveries", "webhook delivery attempts",
                                          ["kind", "result"], registry=r)
        self.auth_failures = Counter("streetlight_api_auth_failures", "requests refused for a missing, unknown, "
                                     "revoked or expired token", ["reason"], registry=r)
        self.auth_throttled = Counter("streetlight_api_auth_throttled", "requests refused because their address "
                                      "failed authentication too often", registry=r)
        self.body_too_large = Counter("streetlight_api_body_too_large", "requests refused for a body over the cap",
                                      registry=r)
        self.streams_closed = Counter("streetlight_api_streams_closed", "live streams closed by the server",
                                      ["reason"], registry=r)
        r.register(_PlatformCollector(platform))
