"""The stores shared by several writers at once (each with its own connections, as separate
processes have) and the API's rows on both back-ends."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from api.audit import AuditLog
from api.auth import TokenStore
from api.notify import Notifier, UnknownWebhook
from api.store import Store
from controller.errors import FaultStateError
from controller.faults import Fault
from runtime.state import FAULT_SEQ_BLOCK, ControllerStore, FaultIdTakenError

WRITERS = 4


def _together(work: Callable[[int], Any]) -> list[Any]:
    """``work(i)`` for every writer, started at the same moment; their results, or the exceptions raised."""
    start = threading.Barrier(WRITERS)
    out: list[Any] = [None] * WRITERS

    def run(i: int) -> None:
        start.wait()
        try:
            out[i] = work(i)
        except Exception as err:  # noqa: BLE001 - returned to the test, which asserts on it
            out[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


def _fault(fault_id: str, road: str = "nanhuan-1") -> Fault:
    return Fault(fault_id=fault_id, type="lamp_failure", severity="major", state="open", road=road, pole="NH-001",
                 span=None, segment="S1", side="east", chainage_m=0.0, lat=None, lon=None, feeder="C1-L1",
                 first_seen_ts=1, last_seen_ts=1, summary="lamp out")


def test_fault_numbers_and_schedule_versions_never_collide(state_location: str | Path) -> None:
    stores = [ControllerStore(state_location) for _ in range(WRITERS)]
    try:
        seqs = _together(lambda i: [stores[i].next_fault_seq() for _ in range(5)])
        firsts = sorted(itertools.chain.from_iterable(seqs))
        assert all(isinstance(s, list) for s in seqs), seqs
        assert all(b - a >= FAULT_SEQ_BLOCK for a, b in itertools.pairwise(firsts))  # blocks do not overlap
        versions = _together(lambda i: [stores[i].save_schedule("nanhuan-1", [{"by": i}], 3.0, f"planner-{i}", j)
                                        for j in range(5)])
        assert sorted(itertools.chain.from_iterable(versions)) == list(range(1, WRITERS * 5 + 1))
        assert [v["version"] for v in stores[0].schedule_versions("nanhuan-1")] == list(range(1, WRITERS * 5 + 1))
    finally:
        for s in stores:
            s.close()


def test_two_crews_answering_at_once_move_a_fault_once(state_location: str | Path) -> None:
    stores = [ControllerStore(state_location) for _ in range(WRITERS)]
    try:
        stores[0].save_fault(_fault("F-000001"))
        results = _together(lambda i: stores[i].acknowledge("F-000001", f"crew-{i}", 10 + i))
        assert sum(isinstance(r, Fault) for r in results) == 1
        assert sum(isinstance(r, FaultStateError) for r in results) == WRITERS - 1
        assert [e["state"] for e in stores[1].fault_log("F-000001")] == ["open", "acknowledged"]
        # one controller's fault id reported again by another road's is refused, not overwritten
        with pytest.raises(FaultIdTakenError, match="nanhuan-2"):
            stores[2].save_fault(_fault("F-000001", road="nanhuan-2"))
        assert stores[3].fault("F-000001").road == "nanhuan-1"
    finally:
        for s in stores:
            s.close()


def test_the_api_rows_on_both_backends(state_location: str | Path) -> None:
    store, other = Store(state_location), Store(state_location)  # an API process and `streetlight token`
    try:
        tokens = TokenStore(store)
        token, record = TokenStore(other).create("maintenance", "crew 3")
        who = tokens.authenticate(token)
        assert who is not None and (who.token_id, who.role) == (record["id"], "maintenance")
        assert tokens.authenticate(token + "x") is None
        TokenStore(other).revoke(record["id"])
        assert tokens.authenticate(token) is None and not tokens.active(record["id"])
        assert [t["revoked_ms"] is not None for t in tokens.list()] == [True] and tokens.list(False) == []

        audit = AuditLog(store, window_s=60, flush_s=0)
        first = audit.record(actor="a", role="admin", token_id=None, action="dim", target="NH-001", result="ok",
                             params={"level": 40})
        for _ in range(3):
            audit.refusal(actor="anonymous", role="-", token_id=None, caller="10.0.0.9", action="dim",
                          target="NH-001", result="denied")
        entries = audit.list()
        assert [(e["action"], e["result"], e["count"]) for e in entries] == [("dim", "denied", 3), ("dim", "ok", 1)]
        assert entries[1]["id"] == first and entries[1]["params"] == {"level": 40}
        assert [e["result"] for e in audit.list(result="ok")] == ["ok"]

        notifier = Notifier(store, resolve=lambda host, port: ["93.184.216.34"])
        hook = notifier.add("crew", "json", "https://hooks.example.com/x?key=s3cret")
        assert [h["id"] for h in Notifier(other, resolve=notifier.resolve).hooks()] == [hook["id"]]
        notifier._log(notifier.hooks()[0], {"fault_id": "F-000001", "state": "open"}, 1, False, 502, "HTTP 502")
        assert [(d["ok"], d["status_code"]) for d in notifier.deliveries(hook["id"])] == [(False, 502)]
        notifier.remove(hook["id"])
        with pytest.raises(UnknownWebhook):
            notifier.remove(hook["id"])
    finally:
        store.close()
        other.close()


def test_processes_starting_together_migrate_once(state_location: str | Path) -> None:
    from sqlalchemy import text

    from streetlight.statedb import Database
    from streetlight.statedb.migrate import head

    opened = _together(lambda i: Database(state_location))
    assert all(isinstance(d, Database) for d in opened), opened
    with opened[0].read() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head()]
    for d in opened:
        d.close()
