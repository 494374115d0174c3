"""MQTT connections of the simulated poles: one per pole, or one concentrator for all.

Both publish through :class:`~simulators.rawmqtt.RawMqtt` (a step's packets in one write). One
reader thread serves all of a road's pole connections (:class:`~simulators.rawmqtt.SharedReader`)
and only queues what arrives (bounded): commands for the runner's command thread, which acts on
them as they arrive, configs and heartbeats for the next step boundary. ``drop`` ends a pole's connection as the scenario's ``disconnect`` says: ``silent``
(the default, as in the field) stops every write and leaves the socket open, so the broker
publishes the pole's will (``offline``) only when the keep-alive runs out, or when the pole comes
back first and its new connection takes the client id over (``offline`` then at once ``online``); ``clean`` closes the socket without a DISCONNECT, so the will goes out at once.
:class:`Connection` is a plain paho client for listeners (alerts) that only subscribe.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from streetlight.protocol import cabinet_topic, pole_topic, road_topic, subscription

from .device import Inbound
from .encode import Outgoing
from .errors import BrokerConnectError
from .rawmqtt import RawMqtt, SharedReader

log = logging.getLogger(__name__)
Credentials = Callable[[str], tuple[str, str]]
INBOUND_LIMIT = 200_000
CONNECT_TIMEOUT_S = 15.0
POLE_KEEPALIVE_S = 30  # wall seconds; the broker gives up on a silent pole after 1.5 × this
DISCONNECT_MODES = ("silent", "clean")


def concentrator_id(road_id: str) -> str:
    """The concentrator's client id and username (its account is limited to the road's poles)."""
    return f"{road_id}-concentrator"


class Inbox:
    """What the broker delivered: commands (acted on as they arrive) apart from the rest
    (configs, heartbeats: handled at step boundaries)."""

    def __init__(self) -> None:
        self.q: queue.Queue[Inbound] = queue.Queue(maxsize=INBOUND_LIMIT)
        self.commands: queue.Queue[Inbound] = queue.Queue(maxsize=INBOUND_LIMIT)
        self.counter = itertools.count()
        self.dropped = 0

    def put(self, pole: int | None, topic: str, payload: bytes) -> None:
        q = self.commands if topic.endswith("/cmd") else self.q
        try:
            q.put_nowait(Inbound(next(self.counter), pole, topic, payload))
        except queue.Full:
            self.dropped += 1

    def drain(self) -> list[Inbound]:
        out = []
        while True:
            try:
                out.append(self.q.get_nowait())
            except queue.Empty:
                return out


def _host_port(url: str) -> tuple[str, int]:
    p = urlsplit(url)
    return p.hostname or "127.0.0.1", p.port or (8883 if p.scheme in ("mqtts", "ssl") else 1883)


class Connection:
    """A paho connection that only listens (e.g. to a road's alerts), queueing what it hears."""

    def __init__(self, url: str, client_id: str, creds: tuple[str, str] | None, subs: list[str],
                 inbox: Inbox, pole: int | None = None) -> None:
        self.url = url
        self.subs = subs
        self.ready = threading.Event()
        self.failed: str | None = None
        c = self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if creds:
            c.username_pw_set(*creds)
        if urlsplit(url).scheme in ("mqtts", "ssl"):
            c.tls_set()
        c.on_connect = self._on_connect
        c.on_subscribe = lambda *a: self.ready.set()
        c.on_message = lambda _c, _u, m: inbox.put(pole, m.topic, bytes(m.payload))

    def _on_connect(self, c: mqtt.Client, _u: object, _f: object, rc: mqtt.ReasonCode, _p: object) -> None:
        if rc.is_failure:
            self.failed = str(rc)
            self.ready.set()
            return
        if self.subs:
            c.subscribe([(s, 1) for s in self.subs])  # again after a reconnect
        else:
            self.ready.set()

    def start(self) -> None:
        host, port = _host_port(self.url)
        try:
            self.client.connect(host, port, keepalive=30)
        except OSError as err:
            raise BrokerConnectError(self.url, str(err)) from err
        self.client.loop_start()

    def wait(self) -> None:
        if not self.ready.wait(CONNECT_TIMEOUT_S):
            raise BrokerConnectError(self.url, "no CONNACK/SUBACK in time")
        if self.failed:
            raise BrokerConnectError(self.url, f"refused: {self.failed}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class PerPoleTransport:
    """A connection per pole, each with its own credentials and its ``offline`` will."""

    def __init__(self, url: str, road_id: str, pole_ids: list[str], credentials: Credentials | None,
                 disconnect: str = "silent", keepalive_s: int = POLE_KEEPALIVE_S) -> None:
        if disconnect not in DISCONNECT_MODES:
            raise ValueError(f"disconnect must be one of {DISCONNECT_MODES}, got {disconnect!r}")
        self.url, self.road_id, self.pole_ids, self.credentials = url, road_id, pole_ids, credentials
        self.disconnect, self.keepalive_s = disconnect, keepalive_s
        self.inbox = Inbox()
        self.reader = SharedReader(f"mqtt-{road_id}-poles")  # one thread reads every pole's connection
        self.conns: dict[int, RawMqtt] = {}
        self.silent: dict[int, RawMqtt] = {}  # dead poles' open, mute sockets
        # messages sent on a connection that died with its pole's supply before the broker
        # acknowledged them: lost with the device, as in the field (a run's accounting needs them)
        self.lost_unacked = 0

    def _open(self, i: int) -> RawMqtt:
        pid = self.pole_ids[i]
        creds = self.credentials(pid) if self.credentials else None
        host, port = _host_port(self.url)
        conn = RawMqtt(host, port, f"sl-{self.road_id}-{pid}", username=creds[0] if creds else None,
                       password=creds[1] if creds else None, tls=urlsplit(self.url).scheme in ("mqtts", "ssl"),
                       will=(pole_topic(self.road_id, pid, "status"), b"offline"), keepalive=self.keepalive_s,
                       on_message=lambda topic, payload: self.inbox.put(i, topic, payload), shared=self.reader)
        conn.connect(CONNECT_TIMEOUT_S)
        conn.subscribe([pole_topic(self.road_id, pid, "cmd"), pole_topic(self.road_id, pid, "config"),
                        road_topic(self.road_id, "heartbeat")], CONNECT_TIMEOUT_S)
        return conn

    def connect(self, poles: list[int]) -> None:
        for i in poles:
            # the same client id takes over: the broker ends the mute connection (publishing its will)
            self.silent.pop(i, None)
            self.conns[i] = self._open(i)

    def drop(self, poles: list[int]) -> None:
        for i in poles:
            c = self.conns.pop(i, None)
            if c is None:
                continue
            if self.disconnect == "silent":
                c.go_silent()
                self.silent[i] = c
            else:
                c.kill()
                self.lost_unacked += c.sent - c.acked

    def publish_many(self, msgs: list[Outgoing]) -> None:
        by_pole: dict[int, list[tuple[str, bytes, bool]]] = {}
        for m in msgs:
            by_pole.setdefault(m.pole, []).append((m.topic, m.payload, m.retain))
        for i, batch in by_pole.items():
            c = self.conns.get(i)
            if c is not None and c.connected:
                try:
                    c.publish_many(batch)
                except OSError as err:
                    log.warning("pole %s lost its connection: %s", self.pole_ids[i], err)

    def reconnected(self) -> list[int]:
        """Poles whose connection broke (broker restart) and is open again."""
        back = []
        for i, c in list(self.conns.items()):
            if not c.connected:
                try:
                    self.conns[i] = self._open(i)
                except BrokerConnectError:
                    continue
                back.append(i)
        return back

    def flush(self, timeout: float = 60.0, pipelined: bool = False) -> None:
        """Wait for the broker's acks: of everything, or (``pipelined``) of what was sent
        before the previous call, so one step's messages are in flight while the next is built."""
        deadline = time.monotonic() + timeout
        for c in self.conns.values():
            c.flush(max(0.0, deadline - time.monotonic()), upto=c.mark if pipelined else None)
            c.mark = c.sent

    def close(self) -> None:
        for c in self.conns.values():
            c.flush(10.0)
            c.close()
        self.conns.clear()
        for c in self.silent.values():
            c.kill()
        self.silent.clear()
        self.reader.close()


class ConcentratorTransport:
    """One connection carrying every pole of the road (topics stay per pole).

    It publishes through :class:`RawMqtt` (a step's messages in one write); if the broker goes
    away it reconnects at the next step and the runner announces every live pole again.
    """

    def __init__(self, url: str, road_id: str, pole_ids: list[str], credentials: Credentials | None,
                 disconnect: str = "silent", keepalive_s: int = POLE_KEEPALIVE_S) -> None:
        self.url = url
        self.keepalive_s = keepalive_s  # a dead pole behind a concentrator only falls silent
        self.inbox = Inbox()
        self.live: set[int] = set()
        self.cid = concentrator_id(road_id)
        self.creds = credentials(self.cid) if credentials else None
        self.subs = [subscription(road_id, "cmd"), subscription(road_id, "config"), road_topic(road_id, "heartbeat")]
        self.conn = self._open()

    def _open(self) -> RawMqtt:
        host, port = _host_port(self.url)
        conn = RawMqtt(host, port, self.cid, username=self.creds[0] if self.creds else None,
                       password=self.creds[1] if self.creds else None, tls=urlsplit(self.url).scheme in ("mqtts", "ssl"),
                       keepalive=self.keepalive_s, on_message=lambda topic, payload: self.inbox.put(None, topic, payload))
        conn.connect(CONNECT_TIMEOUT_S)
        conn.subscribe(self.subs, CONNECT_TIMEOUT_S)
        return conn

    def connect(self, poles: list[int]) -> None:
        self.live.update(poles)

    def drop(self, poles: list[int]) -> None:
        self.live.difference_update(poles)  # the platform only sees silence

    def publish_many(self, msgs: list[Outgoing]) -> None:
        if not self.conn.connected:
            return  # lost until the reconnect at the next step; the runner counts what it sent
        live = self.live
        try:
            self.conn.publish_many([(m.topic, m.payload, m.retain) for m in msgs if m.pole in live])
        except OSError as err:
            log.warning("concentrator lost its connection: %s", err)

    def reconnected(self) -> list[int]:
        if self.conn.connected:
            return []
        try:
            self.conn = self._open()
        except BrokerConnectError as err:
            log.warning("concentrator cannot reconnect yet: %s", err)
            return []
        return sorted(self.live)

    def flush(self, timeout: float = 60.0, pipelined: bool = False) -> None:
        """As :meth:`PerPoleTransport.flush`."""
        self.conn.flush(timeout, upto=self.conn.mark if pipelined else None)
        self.conn.mark = self.conn.sent

    def close(self) -> None:
        self.conn.flush(10.0)
        self.conn.close()


class CabinetTransport:
    """A connection per distribution cabinet (protocol 1.1), with its account and ``offline`` will.

    A cabinet only publishes. ``drop`` makes it fall silent as a dead modem does (the broker
    publishes the will when the keep-alive runs out); ``connect`` brings it back.
    """

    def __init__(self, url: str, road_id: str, cabinets: list[str], credentials: Credentials | None,
                 keepalive_s: int = POLE_KEEPALIVE_S) -> None:
        from ops.broker_security import cabinet_user

        self.url, self.road_id, self.cabinets = url, road_id, cabinets
        self.users = [cabinet_user(road_id, c) for c in cabinets]
        self.credentials, self.keepalive_s = credentials, keepalive_s
        self.conns: dict[int, RawMqtt] = {}
        self.silent: list[RawMqtt] = []

    def connect(self, k: int) -> None:
        user = self.users[k]
        creds = self.credentials(user) if self.credentials else None
        host, port = _host_port(self.url)
        conn = RawMqtt(host, port, user, username=creds[0] if creds else None,
                       password=creds[1] if creds else None, tls=urlsplit(self.url).scheme in ("mqtts", "ssl"),
                       will=(cabinet_topic(self.road_id, self.cabinets[k], "status"), b"offline"),
                       keepalive=self.keepalive_s)
        conn.connect(CONNECT_TIMEOUT_S)
        self.conns[k] = conn  # the runner publishes its ``online`` (and records it)

    def drop(self, k: int) -> None:
        c = self.conns.pop(k, None)
        if c is not None:
            c.go_silent()
            self.silent.append(c)

    def publish(self, k: int, topic: str, payload: bytes, retain: bool = False) -> None:
        c = self.conns.get(k)
        if c is None:
            return
        if not c.connected:
            try:
                self.connect(k)
            except BrokerConnectError as err:
                log.warning("cabinet %s cannot reconnect yet: %s", self.cabinets[k], err)
                return
            c = self.conns[k]
        try:
            c.publish_many([(topic, payload, retain)])
        except OSError as err:
            log.warning("cabinet %s lost its connection: %s", self.cabinets[k], err)

    def flush(self, timeout: float = 60.0) -> None:
        for c in self.conns.values():
            c.flush(timeout)

    def close(self) -> None:
        for c in self.conns.values():
            c.flush(10.0)
            c.close()
        self.conns.clear()
        for c in self.silent:
            c.kill()
        self.silent.clear()
