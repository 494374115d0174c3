"""Road leases: the pure rules, and the store on both back-ends (two holders, one road)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.leases import Lease, LeaseStore, LeaseTerms, RoadLeases, acting, claim
from streetlight.statedb import Database

TERMS = LeaseTerms(ttl_ms=3000)


def test_a_free_road_is_taken_and_its_holder_renews_it() -> None:
    first = claim(None, "r1", "a", 1000, TERMS)
    assert first == Lease("r1", "a", 1, 4000, 1000)
    renewed = claim(first, "r1", "a", 2000, TERMS)
    assert renewed == Lease("r1", "a", 1, 5000, 1000)


def test_another_holder_waits_for_expiry_then_takes_the_road_with_the_next_epoch() -> None:
    held = Lease("r1", "a", 4, 5000, 1000)
    assert claim(held, "r1", "b", 4999, TERMS) is None
    assert claim(held, "r1", "b", 5000, TERMS) == Lease("r1", "b", 5, 8000, 5000)


def test_the_holder_stops_acting_a_margin_before_expiry_and_no_two_act_at_once() -> None:
    held = Lease("r1", "a", 1, 5000, 1000)
    assert acting(held, "a", 4000, TERMS) and not acting(held, "b", 4000, TERMS)
    assert not acting(held, "a", 5000 - TERMS.margin_ms, TERMS)
    for now in range(1000, 9000, 50):  # a never renews: b claims every 50 ms
        taken = claim(held, "r1", "b", now, TERMS)
        assert not (acting(held, "a", now, TERMS) and taken is not None and acting(taken, "b", now, TERMS))


def test_a_lease_too_short_to_renew_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        LeaseTerms(ttl_ms=100)


def test_two_processes_share_one_road_through_the_store(state_location: str | Path) -> None:
    db_a, db_b = Database(state_location), Database(state_location)
    try:
        now = [10_000]
        # rounds driven by the test on its own clock, no renewing thread: a stops renewing, as if killed
        a = RoadLeases(LeaseStore(db_a), ["r1", "r2"], "core-a", TERMS, clock=lambda: now[0])
        b = RoadLeases(LeaseStore(db_b), ["r1", "r2"], "core-b", TERMS, clock=lambda: now[0])
        a.round(notify=False)
        b.round(notify=False)
        taken: list[str] = []
        b.on_taken.append(taken.append)
        assert a.holds("r1") and a.holds("r2") and not b.holds("r1")
        now[0] += 2000
        b.round()
        assert not b.holds("r1") and taken == []  # a's lease still runs
        now[0] += 1000
        b.round()
        assert b.holds("r1") and b.holds("r2") and sorted(taken) == ["r1", "r2"]
        assert not a.holds("r1")
        assert LeaseStore(db_a).get("r1") == Lease("r1", "core-b", 2, now[0] + 3000, now[0])
        b.stop(release=True)
        a.round()  # released: a takes it back at once, without waiting for b's expiry
        assert a.holds("r1") and LeaseStore(db_a).get("r1").epoch == 3  # type: ignore[union-attr]
    finally:
        db_a.close()
        db_b.close()


def test_processes_claiming_the_same_roads_at_once_never_split_them(state_location: str | Path) -> None:
    # each process claims all of its roads in one transaction: whoever commits first holds every
    # road, so two controllers started together never leave the API two holders to find
    import threading

    roads = [f"road-{i:02d}" for i in range(12)]
    for attempt in range(5):
        names = [f"p{attempt}-{k}" for k in range(3)]
        dbs = [Database(state_location) for _ in names]
        go = threading.Barrier(len(names))
        got: dict[str, dict[str, Lease]] = {}

        def run(name: str, db: Database, go: threading.Barrier, got: dict[str, dict[str, Lease]], now: int) -> None:
            go.wait()
            got[name] = LeaseStore(db).claim_all(list(reversed(roads)) if name.endswith("1") else roads, name,
                                                 now, TERMS)

        threads = [threading.Thread(target=run, args=(n, d, go, got, 1_000_000 * (attempt + 1)))
                   for n, d in zip(names, dbs, strict=True)]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            holders = {lease.holder for lease in got[names[0]].values()}
            assert len(holders) == 1, holders
            assert all({x.holder for x in got[n].values()} == holders for n in names)
        finally:
            for d in dbs:
                d.close()
