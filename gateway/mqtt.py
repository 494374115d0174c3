"""The MQTT edge: a fast receive-only connection for ingest, paho-mqtt for publishing.

Ingest (:class:`~.wire.IngestConnection`): an MQTT 5 persistent session (fixed client id,
clean start off, long session expiry) with manual acknowledgement: PUBACKs are sent by the
pipeline only after the messages are stored or spooled, so what the broker sent and never saw
acknowledged comes again after a crash. Receive Maximum bounds the messages in flight, which
bounds the queue. The receiving thread only cuts packets and queues them, a list per read.

Publishing (config, heartbeat, alerts) goes through a paho client of its own (client id
``{client_id}-pub``), which queues QoS 1 messages while disconnected. Commands leave in batches on
the ingest connection, in one write (paho when that connection cannot take them).
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties

from streetlight.settings import Settings

from .errors import NotConnected
from .inbound import Raw
from .wire import IngestConnection

log = logging.getLogger(__name__)
SESSION_EXPIRY_S = 7 * 24 * 3600
# QoS 1 messages the publishing client keeps in flight. paho's default, 20, queues the rest until
# PUBACKs return: a road's 93 commands left in five round trips. It cannot change once connected.
PUBLISH_WINDOW = 1000


class MqttLink:
    def __init__(self, settings: Settings, client_id: str, filters: list[str], deliver: Callable[[list[Raw]], None],
                 *, receive_maximum: int = 20_000) -> None:
        self.settings = settings
        self.filters = filters
        tls = None
        if settings.mqtt_tls:
            tls = ssl.create_default_context(cafile=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None)
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        self.ingest = IngestConnection(settings.mqtt_host, settings.mqtt_port, client_id, filters, deliver,
                                       username=settings.mqtt_username, password=password, tls=tls,
                                       session_expiry_s=SESSION_EXPIRY_S, receive_maximum=receive_maximum)
        self.subscribed = self.ingest.subscribed
        self.pub_connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{client_id}-pub", protocol=mqtt.MQTTv5)
        if settings.mqtt_username:
            self.client.username_pw_set(settings.mqtt_username, password)
        if settings.mqtt_tls:
            self.client.tls_set_context(tls)
        self.client.reconnect_delay_set(0.1, 2)
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(PUBLISH_WINDOW)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self.pub_connected.clear()

    @property
    def receiving(self) -> bool:
        """Whether the link subscribes at all: a link with no filters only publishes (a controller
        process, which hears its roads on a read of its own)."""
        return bool(self.filters)

    @property
    def connected(self) -> bool:
        return (self.ingest.subscribed.is_set() or not self.receiving) and self.pub_connected.is_set()

    def start(self, timeout_s: float = 10.0) -> None:
        if self.receiving:
            self.ingest.start()
        self.client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=30, clean_start=True)
        self.client.loop_start()
        if not ((self.ingest.subscribed.wait(timeout_s) or not self.receiving) and self.pub_connected.wait(timeout_s)):
            log.warning("broker at %s not reachable yet; retrying in the background", self.settings.mqtt_url)

    def stop(self) -> None:
        if self.receiving:
            self.ingest.stop()
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                    rc: mqtt.ReasonCode, props: Properties | None) -> None:
        if rc.is_failure:
            log.error("broker refused the publishing connection: %s", rc)
            return
        taken = int(getattr(props, "ReceiveMaximum", 65_535))  # MQTT 5: absent means 65,535
        if taken < PUBLISH_WINDOW:
            log.error("the broker takes %d unacknowledged QoS 1 messages from a client, fewer than the %d the "
                      "gateway may send at once: raise its receive maximum (Mosquitto: max_inflight_messages 0)",
                      taken, PUBLISH_WINDOW)
        self.pub_connected.set()

    # -- used by the pipeline and the dispatcher -------------------------------------------------
    def ack(self, raws: list[Raw]) -> None:
        self.ingest.ack(raws)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == mqtt.MQTT_ERR_NO_CONN and qos == 0:
            raise NotConnected(self.settings.mqtt_url)

    def publish_many(self, messages: list[tuple[str, bytes]]) -> None:
        """QoS 1 messages that belong together (a road's commands): in one write on the ingest
        connection, which is much faster than paho's message at a time through its network thread;
        through paho (which queues while disconnected) when that connection cannot take them."""
        if self.receiving and self.ingest.publish_many(messages):
            return
        for topic, payload in messages:
            self.client.publish(topic, payload, qos=1)
