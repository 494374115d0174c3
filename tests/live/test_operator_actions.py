"""What operators and crews do, on the real stack: one dim sends exactly one command to each pole
it names (counted where the pole listens); a fault moves along its lifecycle and nowhere else."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest

from controller.faults import lifecycle
from streetlight.protocol import pole_topic

from .conftest import LiveApi, wait_until

pytestmark = pytest.mark.servers

ROAD, POLE = "nanhuan-1", "NH-033"


class CommandTap:
    """A subscriber on one pole's command topic: every command the broker delivers to that pole."""

    def __init__(self, port: int, road: str, pole: str) -> None:
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"tap-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv311, clean_session=True)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.subscribe(pole_topic(road, pole, "cmd"), qos=1)
        self.client.loop_start()
        assert self._subscribed.wait(10), "the broker did not confirm the subscription"

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append(orjson.loads(msg.payload))

    def commands(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_one_operator_dim_is_one_command_per_pole(live: LiveApi) -> None:
    wait_until(lambda: live.get(f"/api/v1/poles/{POLE}").json().get("online"), 60, f"{POLE} online")
    tap = CommandTap(live.platform.settings.mqtt_port, ROAD, POLE)
    try:
        # a level the pole is not at now, so the controller's own tick has a change to send
        commanded, _ = live.platform.control.level_of(ROAD, POLE)
        level = 100 if commanded < 99 else 20
        resp = live.post(f"/api/v1/poles/{POLE}/dim", json={"level": level, "ramp_ms": 0, "expires_in_s": 600})
        assert resp.status_code == 202, resp.text
        ids = resp.json()["command_ids"]
        assert len(ids) == 1
        done = wait_until(lambda: (c := live.get(f"/api/v1/commands/{ids[0]}").json())["done"] and c,
                          30, "the pole to answer")
        sent_level = done["level"]
        # stored once its command has left, so that a restart takes it up again
        stored = live.platform.store.active_overrides(ROAD, live.platform.control.now_ms(ROAD))
        assert any(o.scope == "pole" and o.target == POLE and o.level == level for o in stored), stored

        # commands to one pole leave on one connection in order, so once a later command has
        # arrived every earlier one has too
        marker = live.post(f"/api/v1/poles/{POLE}/identify", json={"seconds": 1})
        assert marker.status_code == 202, marker.text
        marker_id = marker.json()["command_ids"][0]
        wait_until(lambda: any(c["cmd_id"] == marker_id for c in tap.commands()), 30, "the marker command")

        got = tap.commands()
        upto = next(i for i, c in enumerate(got) if c["cmd_id"] == marker_id)
        # the controller may have re-levelled the pole on its own just before; that was another level
        dims = {c["cmd_id"] for c in got[:upto] if c.get("type") == "dim" and c["level"] == sent_level}
        assert dims == set(ids), f"{POLE} received {sorted(dims)} for one operator dim answered with {ids}"
    finally:
        tap.close()


def test_a_fault_moves_only_as_its_lifecycle_allows(live: LiveApi) -> None:
    def lamp_fault() -> dict[str, Any] | None:
        faults = live.get("/api/v1/faults", params={"state": "open"}).json()["faults"]
        return next((f for f in faults if f["type"] == "lamp_failure"), None)

    fid = wait_until(lamp_fault, 90, "the scenario's lamp failure")["fault_id"]
    book = live.platform.control.roads[ROAD].ctl.faults
    steps = [("ack", 200, lifecycle.ACKNOWLEDGED), ("ack", 409, lifecycle.ACKNOWLEDGED),
             ("resolve", 200, lifecycle.RESOLVED), ("resolve", 409, lifecycle.RESOLVED),
             ("ack", 409, lifecycle.RESOLVED)]
    for action, status, state in steps:
        r = live.post(f"/api/v1/faults/{fid}/{action}", role="maintenance", json={"note": action})
        assert r.status_code == status, (action, r.text)
        assert live.get(f"/api/v1/faults/{fid}").json()["state"] == state
        assert book.by_id[fid].state == state  # the controller follows the store, step by step
    assert "is resolved; it cannot become acknowledged" in r.json()["detail"]
    logged = [e["state"] for e in live.platform.store.fault_log(fid)]
    assert logged == ["open", "acknowledged", "resolved"]
