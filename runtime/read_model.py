"""An API process's own view of the road, fed by the broker: twins and road time.

It subscribes to the served roads' uplink topics (status, state, telemetry, event, ack) and to
their mirror (``sl/mirror/v1/…``: what the core's gateway was handed by another edge, the LwM2M
poles, which never reach the broker otherwise) on a session that ends with the connection, and
reads both alike, as the gateway reads its input, with the gateway's
own parts: the validator (:mod:`gateway.validate`), road time (:func:`gateway.pipeline.on_road_time`
over :class:`streetlight.clock.RoadClocks`) and the twins (:class:`gateway.twins.TwinStore`). It
stores nothing: the gateway does. The receiving thread only cuts packets and queues them; a
worker thread applies them and acknowledges them.
"""

from __future__ import annotations

import logging
import os
import queue
import ssl
import threading
from collections.abc import Callable

from gateway.cabinets import Cabinets
from gateway.inbound import Inbound, Raw
from gateway.pipeline import on_road_time
from gateway.rejected import RejectedStore
from gateway.twins import TwinStore
from gateway.validate import Validator
from gateway.wire import IngestConnection
from streetlight.clock import ClockPolicy, RoadClocks
from streetlight.errors import ProtocolError
from streetlight.protocol import (
    CABINET_KINDS,
    UPLINK_KINDS,
    cabinet_subscription,
    mirror_subscription,
    subscription,
    unmirror,
)
from streetlight.registry import Road
from streetlight.settings import Settings

log = logging.getLogger(__name__)


class ReadModel:
    def __init__(self, settings: Settings, roads: list[Road], *, client_id: str | None = None,
                 report_interval_s: float = 10.0, receive_maximum: int = 5000) -> None:
        self.roads = roads
        self.clock = RoadClocks({r.id: r.pole_ids for r in roads}, ClockPolicy(
            settings.road_clock, int(settings.clock_tolerance_s * 1000)))
        self.twins = TwinStore(roads, report_interval_s)
        self.validator = Validator(roads)
        # the cabinets' twins, for a controller that stores nothing (protocol 1.1); what they send
        # that cannot be kept is counted here, and recorded with its reason by the gateway that stores
        self.cabinet_refusals = RejectedStore(None, keep=100)
        self.cabinets = Cabinets(roads, self.cabinet_refusals, self.clock)
        self.listeners: list[Callable[[Inbound], None]] = []  # on the worker thread
        self.online_listeners: list[Callable[[str, str], None]] = []  # (road, pole) come (back) online
        self.applied = 0  # also the read model's version: a view built at the same count is current
        self.refused = 0  # invalid messages: the gateway records why; here they are only counted
        self._inbox: queue.Queue[list[Raw]] = queue.Queue(maxsize=2 * receive_maximum)
        tls = None
        if settings.mqtt_tls:
            tls = ssl.create_default_context(cafile=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None)
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        filters = [f(road=r.id, kind=k) for f in (subscription, mirror_subscription) for r in roads
                   for k in UPLINK_KINDS] + [cabinet_subscription(road=r.id, kind=k) for r in roads
                                             for k in CABINET_KINDS]
        client_id = client_id or f"streetlight-api-{os.getpid()}"
        self.conn = IngestConnection(settings.mqtt_host, settings.mqtt_port, client_id, filters, self._inbox.put,
                                     username=settings.mqtt_username, password=password, tls=tls,
                                     session_expiry_s=0, receive_maximum=receive_maximum)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def add_listener(self, fn: Callable[[Inbound], None]) -> None:
        """``fn(inbound)`` for every message applied, on the worker thread."""
        self.listeners.append(fn)

    @property
    def connected(self) -> bool:
        return self.conn.subscribed.is_set()

    def start(self, timeout_s: float = 10.0) -> ReadModel:
        self._stop.clear()
        self._threads = [threading.Thread(target=self._run, name="api-read-model", daemon=True),
                         threading.Thread(target=self._sweep, name="api-read-model-sweep", daemon=True)]
        for t in self._threads:
            t.start()
        self.conn.start()
        if not self.conn.subscribed.wait(timeout_s):
            log.warning("broker not reachable yet for the API's read model; retrying in the background")
        return self

    def stop(self) -> None:
        self._stop.set()
        self.conn.stop()
        for t in self._threads:
            t.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            for raw in batch:
                try:
                    self.apply(raw)
                except Exception:  # a bug must not stop the read model; the message is lost here only
                    log.exception("read model could not apply a message on %s", raw.topic[:200])
            self.conn.ack(batch)

    def apply(self, raw: Raw) -> None:
        topic = unmirror(raw.topic) or raw.topic
        if topic.count("/") == 5:  # of the protocol's own topics only a cabinet's has six levels
            self._apply_cabinet(raw)
            return
        try:
            road, pole, kind = self.validator.topic(topic)
            inb = self.validator.message(road, pole, kind, raw.payload, 0)
        except ProtocolError:
            self.refused += 1
            return
        inb = on_road_time(self.clock, inb)
        came_online = self.twins.apply(inb)
        self.applied += 1
        for fn in self.listeners:
            fn(inb)
        if came_online:
            for back in self.online_listeners:
                back(inb.road, inb.pole)

    def _apply_cabinet(self, raw: Raw) -> None:
        try:
            inb, _lines = self.cabinets.take(raw.topic, raw.payload)
        except ProtocolError:
            self.refused += 1
            return
        self.cabinets.apply(inb)
        self.applied += 1
        for fn in self.listeners:
            fn(inb)

    def _sweep(self) -> None:
        while not self._stop.wait(0.5):
            self.twins.sweep(self.clock.now_ms)
