"""Road leases: which controller process decides for a road, and a dead one's roads taken over.

Several core processes may run for the same roads (``streetlight serve --only gateway --only
controller --shared-group …`` more than once). Each road has one lease row in the state database
(``road_leases``: holder, epoch, expiry); a process decides for a road (commands, config, alerts,
stored faults) only while it holds the road's lease, and keeps the other roads' controllers warm
without acting. The holder renews every third of the lease time; a holder that stops renewing
(killed, stalled, cut off from the database) loses the road when the lease expires, and the next
process to try takes it with the epoch one higher.

Lease time is wall time, not road time: it measures whether a process is alive, which road time
(stopped while the poles are silent) cannot tell. A holder stops acting a margin before its
expiry, so that two processes whose clocks differ by less than the margin never both act.

A process claims all of its roads in one transaction (rows locked in road order): two processes
started together for the same roads never split them, the first to commit takes them all, and
one statement round per renewal serves hundreds of roads.

The rules (:func:`claim`, :func:`acting`) are pure; :class:`LeaseStore` applies them in one
transaction on the rows; :class:`RoadLeases` renews them from a thread and says who holds what.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, insert, select, update

from streetlight.clock import wall_ms
from streetlight.statedb import Database
from streetlight.statedb.schema import road_leases

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Lease:
    road: str
    holder: str
    epoch: int  # one more each time the road changes hands
    expires_ms: int
    taken_ms: int


@dataclass(frozen=True, slots=True)
class LeaseTerms:
    """How long a lease lasts unrenewed (at most one report interval), and the holder's margin."""

    ttl_ms: int

    def __post_init__(self) -> None:
        if self.ttl_ms < 300:
            raise ValueError(f"a lease of {self.ttl_ms} ms cannot be renewed in time; give at least 300 ms")

    @property
    def renew_every_ms(self) -> int:
        return self.ttl_ms // 3

    @property
    def margin_ms(self) -> int:
        """The holder stops acting this long before its lease expires (clock skew between processes)."""
        return min(1000, self.ttl_ms // 10)


def claim(current: Lease | None, road: str, me: str, now_ms: int, terms: LeaseTerms) -> Lease | None:
    """The lease ``me`` writes for ``road``: taken (no lease, or an expired one), renewed (its
    own), or ``None`` while another holder's lease runs."""
    if current is None:
        return Lease(road, me, 1, now_ms + terms.ttl_ms, now_ms)
    if current.holder == me:
        return replace(current, expires_ms=max(current.expires_ms, now_ms + terms.ttl_ms))
    if current.expires_ms <= now_ms:
        return Lease(road, me, current.epoch + 1, now_ms + terms.ttl_ms, now_ms)
    return None


def acting(lease: Lease | None, me: str, now_ms: int, terms: LeaseTerms) -> bool:
    """Whether ``me`` may decide for the lease's road at ``now_ms``."""
    return lease is not None and lease.holder == me and now_ms < lease.expires_ms - terms.margin_ms


class LeaseStore:
    """The ``road_leases`` rows; each claim reads and writes its row in one locked transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def claim(self, road: str, me: str, now_ms: int, terms: LeaseTerms) -> Lease:
        """Take or renew ``road``'s lease for ``me`` if the rules allow; the lease as it now stands."""
        return self.claim_all([road], me, now_ms, terms)[road]

    def claim_all(self, roads: list[str], me: str, now_ms: int, terms: LeaseTerms) -> dict[str, Lease]:
        """:meth:`claim` for every road in one transaction; each road's lease as it now stands."""
        ordered = sorted(set(roads))  # every process locks in the same order: no deadlock between them

        def work(conn: Connection) -> dict[str, Lease]:
            q = select(road_leases).where(road_leases.c.road.in_(ordered)).order_by(road_leases.c.road)
            current = {row.road: self._lease(row) for row in conn.execute(q.with_for_update())}
            out = {}
            for road in ordered:
                now = current.get(road)
                new = claim(now, road, me, now_ms, terms)
                if new is None:
                    assert now is not None
                    out[road] = now
                    continue
                values = {"holder": new.holder, "epoch": new.epoch, "expires_ms": new.expires_ms,
                          "taken_ms": new.taken_ms}
                if now is None:  # two first claims collide on the key: the loser runs again and reads
                    conn.execute(insert(road_leases).values(road=road, **values))
                elif new != now:
                    conn.execute(update(road_leases).where(road_leases.c.road == road).values(**values))
                out[road] = new
            return out

        return self.db.write_retrying(work)

    def release(self, road: str, me: str, now_ms: int) -> None:
        """End ``me``'s lease at once (a clean stop), so that another process need not wait for it."""
        with self.db.write() as conn:
            conn.execute(update(road_leases).where(road_leases.c.road == road, road_leases.c.holder == me)
                         .values(expires_ms=now_ms))

    def get(self, road: str) -> Lease | None:
        with self.db.read() as conn:
            return self._read(conn, road, lock=False)

    @staticmethod
    def _read(conn: Connection, road: str, lock: bool) -> Lease | None:
        q = select(road_leases).where(road_leases.c.road == road)
        row = conn.execute(q.with_for_update() if lock else q).first()
        return None if row is None else LeaseStore._lease(row)

    @staticmethod
    def _lease(row: Any) -> Lease:
        return Lease(row.road, row.holder, int(row.epoch), int(row.expires_ms), int(row.taken_ms))


class RoadLeases:
    """One process's leases on its roads, renewed from a thread.

    ``on_taken(road)`` and ``on_lost(road)`` run on that thread when the process comes to hold a
    road or stops holding it (after :meth:`start`'s first round, which only finds out)."""

    def __init__(self, store: LeaseStore, roads: list[str], holder: str, terms: LeaseTerms, *,
                 clock: Callable[[], int] = wall_ms) -> None:
        self.store = store
        self.roads = roads
        self.holder = holder
        self.terms = terms
        self.clock = clock
        self.on_taken: list[Callable[[str], None]] = []
        self.on_lost: list[Callable[[str], None]] = []
        self.errors = 0  # rounds on a road that could not reach the database
        self._leases: dict[str, Lease] = {}
        self._acting: dict[str, bool] = dict.fromkeys(roads, False)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holds(self, road: str) -> bool:
        with self._lock:
            lease = self._leases.get(road)
        return acting(lease, self.holder, self.clock(), self.terms)

    def lease(self, road: str) -> Lease | None:
        """The road's lease as this process last read it."""
        with self._lock:
            return self._leases.get(road)

    def start(self) -> RoadLeases:
        self.round(notify=False)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="road-leases", daemon=True)
        self._thread.start()
        return self

    def stop(self, release: bool = True) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if release:
            for road in self.roads:
                if self.holds(road):
                    try:
                        self.store.release(road, self.holder, self.clock())
                    except Exception:
                        log.exception("could not release the lease of %s; it expires by itself", road)

    def _run(self) -> None:
        while not self._stop.wait(self.terms.renew_every_ms / 1000):
            self.round()

    def round(self, notify: bool = True) -> None:
        """Claim every road once, then tell who came to hold or stopped holding which road."""
        try:
            leases = self.store.claim_all(self.roads, self.holder, self.clock(), self.terms)
        except Exception:
            self.errors += 1  # the leases run out by themselves: ``holds`` turns false at their expiry
            log.exception("could not claim the leases of %s", ", ".join(self.roads))
            leases = {}
        with self._lock:
            self._leases.update(leases)
        for road in self.roads:
            now = self.holds(road)
            was, self._acting[road] = self._acting[road], now
            if not notify or now == was:
                continue
            current = self.lease(road)
            epoch = current.epoch if current else 0
            log.warning("%s %s the road %s (lease epoch %d)", self.holder, "holds" if now else "no longer holds",
                        road, epoch)
            for fn in self.on_taken if now else self.on_lost:
                try:
                    fn(road)
                except Exception:
                    log.exception("lease listener failed for %s", road)
