"""Against an implementation nobody here wrote: lwm2m-node-lib's command-line client as NH-001's
lamp controller, with objects 3, 3416 and 3418, seen through the REST API."""

from __future__ import annotations

from streetlight.net import LOOPBACK
from tests.waiting import wait_until

from .conftest import ENDPOINTS, NodeClient, Platform

LAMP = {1: "50", 3: "50", 5: "false", 7: "false", 9: "false", 10: "false", 11: "false"}
METER = {1: "229.5", 2: "0.38", 4: "84", 5: "0.96", 6: "1000"}


def _connect(client: NodeClient, port: int, pole: str, *, create: bool = True) -> None:
    if create:
        client.send("create /3/0")
        client.send("set /3/0 0 SomeVendor")
        client.send("create /3416/0")
        for rid, value in LAMP.items():
            client.send(f"set /3416/0 {rid} {value}")
        client.send("create /3418/0")
        for rid, value in METER.items():
            client.send(f"set /3418/0 {rid} {value}")
    client.send(f"connect {LOOPBACK} {port} {ENDPOINTS[pole]} /")
    client.expect(r"Device location: rd/")


def _latest(platform: Platform, pole: str) -> dict | None:
    r = platform.get("/api/v1/readings/latest")
    assert r.status_code == 200, r.text
    rows = [row for row in r.json()["readings"] if row.get("pole") == pole]
    return rows[0] if rows else None


def _command(platform: Platform, cmd_id: str) -> dict:
    r = platform.get(f"/api/v1/commands/{cmd_id}")
    assert r.status_code == 200, r.text
    return dict(r.json()["poles"]["NH-001"])


def _fault(platform: Platform, pole: str, type_: str) -> bool:
    r = platform.get("/api/v1/faults", params={"type": type_})
    assert r.status_code == 200, r.text
    return any(f.get("pole") == pole for f in r.json()["faults"])


def test_register_observe_dim_fault_deregister_and_back(platform: Platform, node_client) -> None:
    client = node_client()
    assert platform.pole("NH-001")["online"] is False
    _connect(client, platform.port, "NH-001")
    wait_until(lambda: platform.pole("NH-001")["online"], 20, "NH-001 online through the API")

    # its observed readings are stored like an MQTT pole's
    row = wait_until(lambda: _latest(platform, "NH-001"), 30, "NH-001's readings in InfluxDB")
    assert row["power_w"] == 84 and row["voltage_v"] == 229.5 and row["dim"] == 50

    # a dim becomes a Write of /3416/0/1; acked once the lamp's own level (/3416/0/3) confirms it
    # forced: this road runs on the wall clock, and after dusk its segment's floor would raise
    # the level (the floor has tests of its own; this one follows the command to the device)
    r = platform.post("/api/v1/poles/NH-001/dim", json={"level": 30, "force": True})
    assert r.status_code == 202, r.text
    cmd_id = r.json()["command_ids"][0]
    client.expect(r"ResourceId: 1$")
    client.expect(r"Written value: 30$")
    assert _command(platform, cmd_id)["status"] == "pending"
    client.send("get /3416/0")
    client.expect(r"-> 1: 30$")
    client.send("set /3416/0 3 30")  # the lamp has reached the level
    done = wait_until(lambda: (c := _command(platform, cmd_id))["status"] != "pending" and c, 30, "the dim's ack")
    assert done["status"] == "acked", done
    wait_until(lambda: (_latest(platform, "NH-001") or {}).get("dim") == 30, 30, "the new level stored")

    # the device's own failure flags raise the matching alerts
    client.send("set /3416/0 5 true")
    wait_until(lambda: _fault(platform, "NH-001", "lamp_failure"), 30, "lamp_failure at NH-001")
    client.send("set /3416/0 10 true")  # day burner: on while it should be off
    wait_until(lambda: _fault(platform, "NH-001", "day_burning"), 30, "day_burning at NH-001")
    client.send("set /3416/0 11 true")  # cycling failure: switching on and off too often
    wait_until(lambda: _fault(platform, "NH-001", "cycling"), 30, "cycling at NH-001")

    # de-registering marks it offline; registering again restores the observations
    client.send("disconnect")
    client.expect(r"Disconnected")
    wait_until(lambda: platform.pole("NH-001")["online"] is False, 20, "NH-001 offline after de-registering")
    _connect(client, platform.port, "NH-001", create=False)
    wait_until(lambda: platform.pole("NH-001")["online"], 20, "NH-001 online again")
    client.send("set /3418/0 4 61")
    wait_until(lambda: (_latest(platform, "NH-001") or {}).get("power_w") == 61, 30,
               "a reading after registering again")
    assert platform.adapter.counts["unknown_endpoint"] == 0


def test_lifetime_running_out_marks_offline(platform: Platform, node_client) -> None:
    client = node_client(lifetime_s=3)
    _connect(client, platform.port, "NH-002")
    wait_until(lambda: platform.pole("NH-002")["online"], 20, "NH-002 online")
    # the client never updates its registration: three seconds later it has lapsed
    wait_until(lambda: platform.pole("NH-002")["online"] is False, 20, "NH-002 offline when its lifetime ran out")
    untouched = platform.live.gateway.twins.get("nanhuan-1", "NH-004")
    assert untouched is not None and untouched.online is None  # nothing else disturbed


def test_unknown_endpoint_is_refused_and_counted(platform: Platform, node_client) -> None:
    client = node_client()
    client.send("create /3416/0")
    client.send(f"connect {LOOPBACK} {platform.port} urn:imei:999999999999999 /")
    client.expect(r"(?i)error|fail|4\.03")
    wait_until(lambda: platform.adapter.counts["unknown_endpoint"] == 1, 10, "the refusal counted")
    assert "urn:imei:999999999999999" not in {r.endpoint for r in platform.adapter.registrations.all()}
