"""The fault lifecycle, one rule: every (from, to) pair, against the rule, the controller's book
and the SQLite store (the API's adapters are pinned in tests/api/test_fault_lifecycle.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from controller.errors import FaultStateError, UnknownFaultError
from controller.faults import Fault, FaultBook, Finding, lifecycle
from controller.faults.model import pole_location
from runtime.state import ControllerStore
from streetlight.registry import load_road

OPEN, ACK, RES = lifecycle.OPEN, lifecycle.ACKNOWLEDGED, lifecycle.RESOLVED
T0 = 1_795_000_000_000

# the whole rule, written out once more by hand: what a person may do from each state
EXPECTED = {
    (OPEN, OPEN): False, (OPEN, ACK): True, (OPEN, RES): True,
    (ACK, OPEN): False, (ACK, ACK): False, (ACK, RES): True,
    (RES, OPEN): False, (RES, ACK): False, (RES, RES): False,
}
ACTIONS = [(frm, to) for frm in lifecycle.STATES for to in (ACK, RES)]


@pytest.mark.parametrize(("frm", "to"), list(EXPECTED))
def test_the_rule(frm: str, to: str) -> None:
    assert lifecycle.allowed(frm, to) is EXPECTED[frm, to]
    if EXPECTED[frm, to]:
        assert lifecycle.check("F-000001", frm, to) == to
    else:
        with pytest.raises(FaultStateError) as err:
            lifecycle.check("F-000001", frm, to)
        assert (err.value.fault_id, err.value.state, err.value.to) == ("F-000001", frm, to)
        assert f"is {frm}; it cannot become {to}" in str(err.value)


def test_refusals_say_what_to_do_instead() -> None:
    with pytest.raises(FaultStateError, match="resolve it after the repair"):
        lifecycle.check("F-000001", ACK, ACK)
    with pytest.raises(FaultStateError, match="new fault opens"):
        lifecycle.check("F-000001", RES, ACK)
    with pytest.raises(FaultStateError, match="the states are open, acknowledged, resolved"):
        lifecycle.check("F-000001", OPEN, "closed")


def _book_with_one_fault() -> tuple[FaultBook, Fault]:
    road = load_road("nanhuan-1")
    book = FaultBook(road.id, {"lamp_failure": "major"})
    finding = Finding("lamp_failure", pole_location(road.pole("NH-012")), "Lamp failure at NH-012", {}, T0)
    (f,) = book.reconcile(T0, [finding])
    assert f.state == OPEN
    return book, f


class Keeper(Protocol):
    """What the book and the store both offer a person."""

    def acknowledge(self, fault_id: str, actor: str, ts_ms: int) -> Fault: ...
    def resolve(self, fault_id: str, actor: str, ts_ms: int) -> Fault: ...


def _move(keeper: Keeper, fault_id: str, to: str, ts: int) -> Fault:
    return (keeper.acknowledge if to == ACK else keeper.resolve)(fault_id, "crew-1", ts)


@pytest.mark.parametrize(("frm", "to"), ACTIONS)
def test_the_book_follows_the_rule(frm: str, to: str) -> None:
    book, f = _book_with_one_fault()
    if frm != OPEN:
        _move(book, f.fault_id, frm, T0 + 1)
    if EXPECTED[frm, to]:
        assert _move(book, f.fault_id, to, T0 + 2).state == to
        assert book.by_id[f.fault_id].state == to
    else:
        with pytest.raises(FaultStateError):
            _move(book, f.fault_id, to, T0 + 2)
        assert book.by_id[f.fault_id].state == frm  # a refused move changes nothing


@pytest.fixture
def store(state_location: str | Path) -> Iterator[ControllerStore]:
    s = ControllerStore(state_location)  # on SQLite and on PostgreSQL
    yield s
    s.close()


@pytest.mark.parametrize(("frm", "to"), ACTIONS)
def test_the_store_follows_the_rule(store: ControllerStore, frm: str, to: str) -> None:
    _, f = _book_with_one_fault()
    store.save_fault(f)
    if frm != OPEN:
        _move(store, f.fault_id, frm, T0 + 1)
    log_before = store.fault_log(f.fault_id)
    if EXPECTED[frm, to]:
        assert _move(store, f.fault_id, to, T0 + 2).state == to
        assert store.fault(f.fault_id).state == to
        assert store.fault_log(f.fault_id)[-1]["state"] == to
    else:
        with pytest.raises(FaultStateError):
            _move(store, f.fault_id, to, T0 + 2)
        assert store.fault(f.fault_id).state == frm
        assert store.fault_log(f.fault_id) == log_before  # nothing logged for a refusal


def test_the_store_refuses_a_report_that_breaks_the_rule(store: ControllerStore) -> None:
    _, f = _book_with_one_fault()
    store.save_fault(f)
    store.resolve(f.fault_id, "crew-1", T0 + 1)
    with pytest.raises(FaultStateError):
        store.save_fault(f)  # the stale open copy would reopen a resolved fault
    assert store.fault(f.fault_id).state == RES


def test_an_unknown_fault_is_its_own_error(store: ControllerStore) -> None:
    book, _ = _book_with_one_fault()
    with pytest.raises(UnknownFaultError, match="F-999999"):
        book.acknowledge("F-999999", "crew-1", T0)
    with pytest.raises(UnknownFaultError, match="F-999999"):
        store.resolve("F-999999", "crew-1", T0)
