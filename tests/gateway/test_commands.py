"""Commands: acked by every pole, held for an offline pole, retried without executing twice."""

from __future__ import annotations

import uuid

import pytest

from gateway.errors import UnknownPoleError
from gateway.service import GatewayService
from ops.servers import MosquittoServer
from streetlight.protocol import Ack, Config
from streetlight.registry import Road
from streetlight.settings import Settings

from .helpers import wait_for
from .poles import Responder

pytestmark = pytest.mark.servers


@pytest.fixture
def gw(settings: Settings, road: Road) -> GatewayService:
    g = GatewayService(settings, [road], client_id=f"gw-{uuid.uuid4().hex[:6]}", ack_timeout_s=0.3, max_attempts=4)
    g.start()
    wait_for(lambda: g.connected, what="gateway connected")
    yield g  # type: ignore[misc]
    g.stop()


def test_every_pole_acks_and_offline_pole_gets_it_on_return(gw: GatewayService, road: Road,
                                                            mosquitto: MosquittoServer) -> None:
    poles = Responder(mosquitto.port, road.id)
    try:
        for p in road.poles:
            poles.status(p.id, "online")
        wait_for(lambda: all(t.online for t in gw.twins.all(road.id)), what="all twins online")
        recs = [gw.commands.dim(road.id, p.id, 40.0) for p in road.poles]
        wait_for(lambda: all(gw.commands.get(r.cmd_id).status == "acked" for r in recs), what="93 acks")  # type: ignore[union-attr]
        done = [gw.commands.get(r.cmd_id) for r in recs]
        assert all(d is not None and d.result_dim == 40.0 and d.attempts >= 1 and d.acked_ms is not None
                   and d.sent_ms is not None and d.acked_ms >= d.sent_ms for d in done)
        assert sum(poles.executed.values()) == 93

        # NH-050 goes away (its will): the command is held, then applied when it returns
        poles.deaf.add("NH-050")
        poles.status("NH-050", "offline")
        wait_for(lambda: gw.twins.get(road.id, "NH-050").online is False, what="NH-050 offline")  # type: ignore[union-attr]
        held = gw.commands.dim(road.id, "NH-050", 20.0, reason="schedule", source="controller")
        newer = gw.commands.dim(road.id, "NH-050", 25.0, reason="schedule", source="controller")
        assert held.attempts == 0 and held.status == "pending"
        assert gw.commands.get(held.cmd_id).status == "expired"  # type: ignore[union-attr]  # superseded
        poles.deaf.discard("NH-050")
        poles.status("NH-050", "online")
        wait_for(lambda: gw.commands.get(newer.cmd_id).status == "acked", what="held command acked")  # type: ignore[union-attr]
        assert poles.executed[newer.cmd_id] == 1 and held.cmd_id not in poles.received

        # the first ack is lost: the retry carries the same cmd_id and the pole does not run it twice
        poles.drop_first_ack.add("NH-007")
        rec = gw.commands.identify(road.id, "NH-007", 30)
        wait_for(lambda: gw.commands.get(rec.cmd_id).status == "acked", what="retried command acked")  # type: ignore[union-attr]
        final = gw.commands.get(rec.cmd_id)
        assert final is not None and final.attempts >= 2
        assert poles.received[rec.cmd_id] >= 2 and poles.executed[rec.cmd_id] == 1
        # a duplicate ack changes nothing
        assert gw.commands.on_ack(road.id, "NH-007", Ack(cmd_id=rec.cmd_id, ts=1, ok=False, dim=0.0)) is None
        assert gw.commands.get(rec.cmd_id).status == "acked"  # type: ignore[union-attr]

        # a refusal ends as failed, with the pole's reason
        poles.refuse.add("NH-008")
        bad = gw.commands.dim(road.id, "NH-008", 10.0)
        wait_for(lambda: gw.commands.get(bad.cmd_id).status == "failed", what="failed command")  # type: ignore[union-attr]
        assert gw.commands.get(bad.cmd_id).error == "relay stuck"  # type: ignore[union-attr]

        # nobody answers: expired after the bounded retries
        poles.deaf.add("NH-009")
        lost = gw.commands.dim(road.id, "NH-009", 10.0)
        wait_for(lambda: gw.commands.get(lost.cmd_id).status == "expired", timeout=30, what="expiry")  # type: ignore[union-attr]
        assert gw.commands.get(lost.cmd_id).attempts == 4  # type: ignore[union-attr]
        assert gw.metrics.command_latency.collect()[0].samples  # latency observed
    finally:
        poles.close()


def test_bad_requests_raise_clear_errors(gw: GatewayService, road: Road) -> None:
    with pytest.raises(UnknownPoleError, match="NH-999"):
        gw.commands.dim(road.id, "NH-999", 50)
    with pytest.raises(ValueError, match="0 … 100"):
        gw.commands.dim(road.id, "NH-001", 150)


def test_config_versions_only_grow_and_are_retained(gw: GatewayService, road: Road, mosquitto: MosquittoServer) -> None:
    import paho.mqtt.subscribe as subscribe

    from streetlight.protocol import parse_config, parse_heartbeat

    first = gw.publish_config(road.id, Config(version=1, report_interval_s=15))
    second = gw.publish_config(road.id, Config(version=1, report_interval_s=20))
    assert second.version == first.version + 1
    assert gw.twins.get(road.id, "NH-093").config_version_desired == second.version  # type: ignore[union-attr]
    def retained_version() -> int:
        msg = subscribe.simple(f"sl/v1/{road.id}/NH-093/config", hostname="127.0.0.1", port=mosquitto.port, qos=1)
        return parse_config(msg.payload).version if msg.retain else -1

    wait_for(lambda: retained_version() == second.version, what="retained config of the new version")
    hb = subscribe.simple(f"sl/v1/{road.id}/heartbeat", hostname="127.0.0.1", port=mosquitto.port, qos=1)
    assert parse_heartbeat(hb.payload).ts > 0
