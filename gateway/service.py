"""``GatewayService``: the MQTT edge of the platform, startable and stoppable from Python.

    gw = GatewayService(settings, roads, client_id="streetlight-gateway", shared_group=None)
    gw.start(); …; gw.stop()

It subscribes to every uplink topic (``sl/v1/+/+/{telemetry,event,state,status,ack}``, on an
MQTT 5 shared subscription when ``shared_group`` is given), stores telemetry and events through
:mod:`telemetry`, keeps the pole twins, dispatches commands, publishes desired config, alerts and
the heartbeat on platform time. What another edge (LwM2M) hands over with :meth:`GatewayService.submit`
is also published on the mirror (``sl/mirror/v1/{road}/{pole}/{kind}``), where API processes,
which read the road from the broker, see it as they see the MQTT poles' own topics.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from streetlight.clock import ClockPolicy, RoadClocks
from streetlight.errors import ProtocolError
from streetlight.protocol import (
    CABINET_KINDS,
    UPLINK_KINDS,
    Ack,
    Alert,
    Config,
    cabinet_subscription,
    mirror_topic,
    parse_topic,
    shared,
    subscription,
)
from streetlight.registry import Road
from streetlight.settings import Settings
from telemetry import TelemetryStore

from .acks import AckDesk
from .cabinets import CABINET_STATUS, CABINET_TELEMETRY, Cabinets
from .commands import CommandDispatcher, Publish
from .downlink import ConfigPublisher, publish_alert, publish_heartbeat
from .inbound import Inbound, Raw
from .metrics import GatewayMetrics
from .mqtt import MqttLink
from .pipeline import Pipeline
from .rejected import RejectedStore
from .twins import TwinStore

log = logging.getLogger(__name__)
GC_THRESHOLD = (10_000, 10, 10)  # allocations before a young collection; Python's default is 700


def settle_garbage_collector() -> None:
    """For a process that ingests, called once it has started: what start-up built is moved out of
    the collector's sight (``gc.freeze``) and young collections run ~14 × less often. Ingest builds
    about ten tracked objects per message and holds a batch until it is stored, so with Python's
    defaults a collection ran every ~70 messages (measured: 13.9 → 12.4 µs per message prepared,
    ``benchmarks/ingest_profile.py``)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


HEARTBEAT_EVERY_MS = 10_000  # platform time; the page asks for at least every 30 s


class GatewayService:
    def __init__(self, settings: Settings, roads: list[Road], *, client_id: str = "streetlight-gateway",
                 shared_group: str | None = None, receive_maximum: int = 20_000, max_batch: int = 5000,
                 ack_timeout_s: float = 2.0, max_attempts: int = 4, create_schema: bool = True,
                 ingest: bool = True, clock: RoadClocks | None = None, twins: TwinStore | None = None,
                 heartbeat: Callable[[str], bool] | None = None) -> None:
        self.settings = settings
        self.roads = roads
        self.client_id = client_id
        # without ingest the service only sends (a controller process): it subscribes to nothing,
        # stores nothing, and takes road time and twins from whoever hears the roads for it
        self.ingest = ingest
        self._heartbeat = heartbeat  # which roads this process beats for (all when not given)
        state = Path(settings.data_dir) / "gateway" / client_id
        state.mkdir(parents=True, exist_ok=True)
        self.clock = clock or RoadClocks({r.id: r.pole_ids for r in roads}, ClockPolicy(
            settings.road_clock, int(settings.clock_tolerance_s * 1000)))
        self.store = TelemetryStore.from_settings(settings.with_overrides(data_dir=str(state)))
        self.rejected = RejectedStore(state / "rejected.jsonl")
        self.metrics = GatewayMetrics(self.rejected, spool_depth_fn=lambda: self.store.writer.spool.depth)
        self.twins = twins or TwinStore(roads)
        # a list of messages per socket read; Receive Maximum bounds what can be in flight
        self._inbox: queue.Queue[list[Raw]] = queue.Queue(maxsize=max(2 * receive_maximum, 10_000))
        filters = [subscription(kind=k) for k in UPLINK_KINDS] + [cabinet_subscription(kind=k) for k in CABINET_KINDS]
        if shared_group:
            filters = [shared(shared_group, f) for f in filters]
        if not ingest:
            filters = []
        self.link = MqttLink(settings, client_id, filters, self._receive, receive_maximum=receive_maximum)
        self._downlinks: dict[tuple[str, str], Publish] = {}  # poles served by another edge (LwM2M)
        self.commands = CommandDispatcher(roads, self.twins, self._publish_command, now_issued=self.clock.now_or_wall,
                                          ack_timeout_s=ack_timeout_s, max_attempts=max_attempts,
                                          on_latency=self.metrics.command_latency.observe,
                                          publish_many=self._publish_commands)
        self.config = ConfigPublisher(roads, self.link.publish, state / "config-versions.json")
        self.pipeline = Pipeline(roads, self._inbox, self.store.writer, self.rejected, self.metrics, self.clock,
                                 self.link.ack, self._on_valid, max_batch=max_batch)
        self.acks = AckDesk(self.pipeline.validator, self.commands)  # settles commands ahead of the batch
        self._listeners: list[Callable[[Inbound], None]] = []
        self._create_schema = create_schema
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._last_heartbeat: dict[str, int] = {}  # road -> road time of its last heartbeat

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self.ingest and self._create_schema:
            try:
                self.store.ensure_schema()
            except Exception as err:  # the database may be away: ingest spools until it is back
                log.warning("could not prepare the InfluxDB schema (will spool until it answers): %s", err)
        if self.ingest:
            self.pipeline.start()
            self.acks.start()
        self.link.start()
        self._stop.clear()
        self._timer = threading.Thread(target=self._timer_loop, name="gateway-timer", daemon=True)
        self._timer.start()

    def stop(self) -> None:
        self._stop.set()
        if self.ingest:
            self.pipeline.stop()  # what is prepared is stored and acknowledged before we disconnect
        self.link.stop()
        if self.ingest:
            self.acks.stop()
        if self._timer is not None:
            self._timer.join(5)
        self.store.close()
        self.rejected.close()

    def __enter__(self) -> GatewayService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- public API ------------------------------------------------------------------------------
    def add_listener(self, fn: Callable[[Inbound], None]) -> None:
        """``fn(inbound)`` for every valid, deduplicated message, on the committer thread, after storage."""
        self._listeners.append(fn)

    def submit(self, raws: list[Raw]) -> None:
        """Hand uplink messages from another edge (LwM2M) to the same pipeline as MQTT: validation,
        rejection counts, dedup, road time, storage, twins, command acks and listeners. They come as
        QoS 0 ``Raw`` on the protocol's own topics, so nothing is acknowledged to the broker for them.
        Blocks while the inbox is full, as the broker's flow control does for MQTT.

        Each is also published on the mirror, at QoS 1 and not retained: a retained ``online`` there
        would outlive the process that said it, while the pole's next notification (at most a report
        interval away) tells a starting API process all it needs."""
        if not raws:
            return
        self._inbox.put(raws)
        for raw in raws:
            try:
                topic = mirror_topic(raw.topic)
            except ProtocolError:
                continue  # not a pole's uplink topic: the pipeline rejects and counts it with its reason
            self.link.publish(topic, raw.payload, 1, False)
            self.metrics.mirrored += 1

    def route_downlink(self, poles: list[tuple[str, str]], publish: Publish) -> None:
        """Commands to these (road, pole) go to ``publish(topic, payload, qos, retain)`` instead of the
        broker: another edge speaks to those poles and answers with an Ack through :meth:`submit`."""
        for key in poles:
            self._downlinks[key] = publish

    def publish_config(self, road: str, config: Config) -> Config:
        cfg = self.config.publish(road, config)
        self.twins.set_desired(road, cfg.version)
        self.twins.report_interval_s[road] = cfg.report_interval_s
        return cfg

    def publish_alert(self, road: str, alert: Alert) -> None:
        publish_alert(self.link.publish, road, alert)

    @property
    def cabinets(self) -> Cabinets:
        """Each cabinet's reported state (protocol 1.1)."""
        return self.pipeline.cabinets

    @property
    def idle(self) -> bool:
        """Nothing taken in waits to be stored and told to the listeners (the broker may still hold more)."""
        return self._inbox.empty() and self.metrics.messages_done == self.metrics.messages_in

    @property
    def connected(self) -> bool:
        return self.link.connected

    # -- internals -------------------------------------------------------------------------------
    def _publish_command(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        other = self._downlink_of(topic)
        if other is not None:
            other(topic, payload, qos, retain)
            return
        self.link.publish(topic, payload, qos, retain)

    def _publish_commands(self, msgs: list[tuple[str, bytes]]) -> None:
        """A road's commands in one write to the broker; those of poles on another edge to it."""
        mqtt = msgs
        if self._downlinks:
            mqtt = []
            for topic, payload in msgs:
                other = self._downlink_of(topic)
                if other is not None:
                    other(topic, payload, 1, False)
                else:
                    mqtt.append((topic, payload))
        if mqtt:
            self.link.publish_many(mqtt)

    def _downlink_of(self, topic: str) -> Publish | None:
        if not self._downlinks:
            return None
        t = parse_topic(topic)
        return self._downlinks.get((t.road, t.pole or ""))

    def _receive(self, raws: list[Raw]) -> None:
        """Each read of the ingest connection: Acks to the desk at once, everything to the pipeline."""
        self.acks.offer(raws)
        self._inbox.put(raws)

    def _on_valid(self, batch: list[Inbound]) -> None:
        for inb in batch:
            if inb.kind in (CABINET_TELEMETRY, CABINET_STATUS):
                self.cabinets.apply(inb)
            elif self.twins.apply(inb):
                self.commands.on_online(inb.road, inb.pole)
            if inb.kind == "ack" and isinstance(inb.message, Ack):
                self.commands.on_ack(inb.road, inb.pole, inb.message)
            for fn in self._listeners:
                try:
                    fn(inb)
                except Exception:
                    self.metrics.listener_errors += 1
                    log.exception("listener %r failed", fn)

    def _timer_loop(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.commands.tick()
                if self.ingest:  # else the twins belong to the read that feeds them, which sweeps them
                    self.twins.sweep(self.clock.now_ms)
                if self.connected:
                    for road in self.roads:
                        if self._heartbeat is not None and not self._heartbeat(road.id):
                            continue
                        now = self.clock.now_or_wall(road.id)
                        last = self._last_heartbeat.get(road.id)
                        if last is None or now - last >= HEARTBEAT_EVERY_MS or now < last:
                            publish_heartbeat(self.link.publish, road.id, now)
                            self._last_heartbeat[road.id] = now
            except Exception:
                log.exception("gateway timer failed")
