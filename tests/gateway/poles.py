"""A minimal pole responder for command tests: answers every ``cmd`` of its poles per the
protocol page (one Ack per command; a ``cmd_id`` already executed is acknowledged again with the
same result and not executed twice)."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import orjson
import paho.mqtt.client as mqtt

from streetlight.protocol import Ack, parse_command, pole_topic


class Responder:
    def __init__(self, port: int, road: str) -> None:
        self.road = road
        self.executed: Counter[str] = Counter()  # cmd_id -> times executed
        self.received: Counter[str] = Counter()  # cmd_id -> times delivered
        self.results: dict[str, Ack] = {}
        self.deaf: set[str] = set()  # poles that are away: their commands are not answered
        self.drop_first_ack: set[str] = set()  # poles whose first ack is lost on the way
        self.refuse: set[str] = set()  # poles that answer ok: false
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"poles-{uuid.uuid4().hex[:6]}")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"sl/v1/{road}/+/cmd", qos=1)
        self.client.loop_start()

    def status(self, pole: str, value: str) -> None:
        self.client.publish(pole_topic(self.road, pole, "status"), value.encode(), qos=1, retain=True)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        pole = msg.topic.split("/")[3]
        if pole in self.deaf:
            return
        cmd = parse_command(msg.payload)
        with self._lock:
            self.received[cmd.cmd_id] += 1
            if cmd.cmd_id not in self.results:
                self.executed[cmd.cmd_id] += 1
                ok = pole not in self.refuse
                level = float(getattr(cmd, "level", 100.0))
                self.results[cmd.cmd_id] = Ack(cmd_id=cmd.cmd_id, ts=cmd.issued_ts, ok=ok, dim=level if ok else 100.0,
                                               error=None if ok else "relay stuck")
            ack = self.results[cmd.cmd_id]
            if pole in self.drop_first_ack:
                self.drop_first_ack.discard(pole)
                return
        client.publish(pole_topic(self.road, pole, "ack"), orjson.dumps(ack.to_dict()), qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
