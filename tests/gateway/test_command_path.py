"""The command path without I/O: a dim of many poles leaves in one hand-over, and an Ack settles
its command as it arrives, ahead of (and without) the ingest pipeline's batch and storage."""

from __future__ import annotations

import orjson
import pytest

from gateway.acks import AckDesk
from gateway.commands import CommandDispatcher, DimOrder
from gateway.errors import UnknownPoleError
from gateway.inbound import Raw
from gateway.twins import TwinStore
from gateway.validate import Validator
from streetlight.protocol import pole_topic
from streetlight.registry import Road

from .helpers import wait_for


@pytest.fixture
def sent() -> list[list[tuple[str, bytes]]]:
    return []


@pytest.fixture
def dispatcher(road: Road, sent: list[list[tuple[str, bytes]]]) -> CommandDispatcher:
    def one(topic: str, payload: bytes, qos: int, retain: bool) -> None:
        sent.append([(topic, payload)])

    return CommandDispatcher([road], TwinStore([road]), one, now_issued=lambda _road: 1_764_000_000_000,
                             publish_many=sent.append)


def test_a_road_dim_leaves_in_one_hand_over(dispatcher: CommandDispatcher, road: Road,
                                            sent: list[list[tuple[str, bytes]]]) -> None:
    recs = dispatcher.dim_many(road.id, [DimOrder(p.id, 40.0, 0, "operator", "alice") for p in road.poles])
    assert len(sent) == 1 and len(sent[0]) == len(road.poles)
    assert [t for t, _ in sent[0]] == [pole_topic(road.id, p.id, "cmd") for p in road.poles]
    bodies = [orjson.loads(b) for _, b in sent[0]]
    assert [b["cmd_id"] for b in bodies] == [r.cmd_id for r in recs]
    assert len({r.cmd_id for r in recs}) == len(recs)  # ids unique
    assert {(b["type"], b["level"], b["issued_ts"]) for b in bodies} == {("dim", 40.0, 1_764_000_000_000)}
    assert all(r.status == "pending" and r.attempts == 1 and r.source == "alice" for r in recs)
    # one bad order issues none of them
    with pytest.raises(UnknownPoleError):
        dispatcher.dim_many(road.id, [DimOrder("NH-001", 50.0), DimOrder("NH-999", 50.0)])
    with pytest.raises(ValueError):
        dispatcher.dim_many(road.id, [DimOrder("NH-001", 50.0), DimOrder("NH-002", 150.0)])
    assert len(sent) == 1 and len(dispatcher.list(limit=1000)) == len(road.poles)


def _ack(road: Road, pole: str, cmd_id: str, ok: bool = True) -> Raw:
    body = {"cmd_id": cmd_id, "ts": 1_764_000_000_500, "ok": ok, "dim": 40.0, "error": None if ok else "refused"}
    return Raw(pole_topic(road.id, pole, "ack"), orjson.dumps(body), 1, 1, 1)


def test_an_ack_settles_its_command_on_arrival(dispatcher: CommandDispatcher, road: Road) -> None:
    desk = AckDesk(Validator([road]), dispatcher)
    desk.start()
    try:
        a, b, c = (dispatcher.dim(road.id, p, 40.0) for p in ("NH-001", "NH-002", "NH-003"))
        telemetry = Raw(pole_topic(road.id, "NH-004", "telemetry"), b"{}", 2, 1, 1)
        desk.offer([telemetry, _ack(road, "NH-001", a.cmd_id), _ack(road, "NH-002", b.cmd_id, ok=False),
                    _ack(road, "NH-004", c.cmd_id),  # another pole's answer: not NH-003's ack
                    Raw(pole_topic(road.id, "NH-003", "ack"), b"{not json", 3, 1, 1)])  # left to the pipeline
        wait_for(lambda: desk.settled == 2, what="two commands settled by the desk")
        assert dispatcher.get(a.cmd_id).status == "acked"  # type: ignore[union-attr]
        assert dispatcher.get(b.cmd_id).error == "refused"  # type: ignore[union-attr]
        assert dispatcher.get(c.cmd_id).status == "pending"  # type: ignore[union-attr]
        # the pipeline's later answer for the same Ack changes nothing
        desk.offer([_ack(road, "NH-001", a.cmd_id)])
        desk.offer([_ack(road, "NH-003", c.cmd_id)])
        wait_for(lambda: desk.settled == 3, what="the third command settled")
        assert dispatcher.get(a.cmd_id).status == "acked"  # type: ignore[union-attr]
    finally:
        desk.stop()
