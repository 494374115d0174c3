"""Storage of the controller's operational state: faults and their lifecycle, overrides,
schedules (versioned), the energy meters' running totals. The controller itself does no I/O; this
is where what it decides is kept. Fault transitions follow ``controller.faults.lifecycle``.

The rows live in the state database (``streetlight.statedb``): a SQLite file by default, or
PostgreSQL when ``STREETLIGHT_STATE_URL`` is set, shared by every process of the platform. Each
method is one transaction; a read-then-write (a fault's transition, the next schedule version,
a block of fault numbers) locks what it read, so two processes cannot both take the same.

Schedules are stored once, here: each version's body is the road's schedule entries as operators
edit them (ids, names, priorities; see ``api.platform``) with the astronomical clock's setting; the
controller's :class:`~controller.schedule.ScheduleBook` is compiled from them on load
(``runtime.schedules``).

Every change a person makes (acknowledge, resolve, set or clear an override, a new schedule
version) is stored with who did it and when (message time, as everywhere).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from controller.errors import UnknownFaultError
from controller.faults import Fault, lifecycle
from controller.overrides import Override
from streetlight.statedb import Database, upsert
from streetlight.statedb.schema import counters, energy, fault_log, faults, overrides, schedules

# Each road's controller numbers its new faults itself from the first number it is given at
# start (``next_fault_seq``); a block this large is set aside for it, so that controllers started
# together (several roads, several processes) never hand out the same fault id.
FAULT_SEQ_BLOCK = 1000


class FaultIdTakenError(RuntimeError):
    """A fault id already stored for another road: two controllers numbered from one block."""

    def __init__(self, fault_id: str, stored_road: str, road: str) -> None:
        self.fault_id, self.stored_road, self.road = fault_id, stored_road, road
        super().__init__(f"fault id {fault_id} of road {road} is already stored for road {stored_road}; "
                         f"the road's controller must take its first number from ControllerStore.next_fault_seq()")


@dataclass(frozen=True, slots=True)
class StoredSchedules:
    """One stored version of a road's schedules."""

    version: int
    entries: list[dict[str, Any]] | None  # None: an older release stored the compiled book only
    depression_deg: float
    book: dict[str, Any] | None  # that older release's book mapping, else None
    actor: str
    ts_ms: int


def _fault_seq(fault_id: str) -> int | None:
    return int(fault_id[2:]) if fault_id.startswith("F-") and fault_id[2:].isdigit() else None


class ControllerStore:
    """The controller's rows in the state database; safe to share between threads and processes.

    ``path`` is a SQLite file (or ``:memory:``) or a ``postgresql://`` URL.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.db = Database(path)

    def close(self) -> None:
        self.db.close()

    # --- faults --------------------------------------------------------------------------
    def save_fault(self, f: Fault, actor: str = "controller") -> None:
        """Store a fault as the controller reported it; a change of state is logged, and one the
        lifecycle does not allow raises FaultStateError (the stored fault stays as it was)."""
        row = {"fault_id": f.fault_id, "road": f.road, "type": f.type, "state": f.state, "severity": f.severity,
               "pole": f.pole, "feeder": f.feeder, "first_seen_ts": f.first_seen_ts, "last_seen_ts": f.last_seen_ts,
               "body": json.dumps(f.to_dict())}

        def work(conn: Connection) -> None:
            stored = conn.execute(select(faults.c.state, faults.c.road).where(faults.c.fault_id == f.fault_id)
                                  .with_for_update()).first()
            if stored is not None and stored.road != f.road:
                raise FaultIdTakenError(f.fault_id, stored.road, f.road)
            if stored is not None and stored.state != f.state:
                lifecycle.check(f.fault_id, stored.state, f.state)
            if stored is None:
                conn.execute(insert(faults).values(**row))  # a race lost here is run again, as an update
            else:
                conn.execute(update(faults).where(faults.c.fault_id == f.fault_id).values(**row))
            if stored is None or stored.state != f.state:
                conn.execute(insert(fault_log).values(fault_id=f.fault_id, ts=f.last_seen_ts, state=f.state,
                                                      actor=actor, note=f.summary if stored is None else ""))

        self.db.write_retrying(work)

    def fault(self, fault_id: str) -> Fault:
        with self.db.read() as conn:
            body = conn.execute(select(faults.c.body).where(faults.c.fault_id == fault_id)).scalar()
        if body is None:
            raise UnknownFaultError(fault_id, "in the store")
        return Fault.from_dict(json.loads(body))

    def faults(self, road: str, state: str | None = None, limit: int = 1000) -> list[Fault]:
        q = select(faults.c.body).where(faults.c.road == road)
        if state:
            q = q.where(faults.c.state == state)
        # newest first: F-000999 before F-000998, and F-1000000 (seven digits) before both
        q = q.order_by(func.length(faults.c.fault_id).desc(), faults.c.fault_id.desc()).limit(limit)
        with self.db.read() as conn:
            return [Fault.from_dict(json.loads(b)) for b in conn.execute(q).scalars()]

    def live_faults(self, road: str) -> list[Fault]:
        """Open and acknowledged faults: what a restarted controller takes up again."""
        q = (select(faults.c.body).where(faults.c.road == road, faults.c.state != lifecycle.RESOLVED)
             .order_by(func.length(faults.c.fault_id), faults.c.fault_id))
        with self.db.read() as conn:
            return [Fault.from_dict(json.loads(b)) for b in conn.execute(q).scalars()]

    def next_fault_seq(self) -> int:
        """The first number of a block of FAULT_SEQ_BLOCK fault numbers set aside for the caller
        (a road's controller at start): above every stored fault and every block given before."""

        def work(conn: Connection) -> int:
            given = conn.execute(select(counters.c.value).where(counters.c.name == "fault_seq")
                                 .with_for_update()).scalar()
            stored = max((s for s in map(_fault_seq, conn.execute(select(faults.c.fault_id)).scalars())
                          if s is not None), default=0)
            first = max(given or 0, stored) + 1
            if given is None:
                conn.execute(insert(counters).values(name="fault_seq", value=first + FAULT_SEQ_BLOCK - 1))
            else:
                conn.execute(update(counters).where(counters.c.name == "fault_seq")
                             .values(value=first + FAULT_SEQ_BLOCK - 1))
            return first

        return self.db.write_retrying(work)

    def _transition(self, fault_id: str, to: str, actor: str, ts_ms: int, note: str) -> Fault:
        def work(conn: Connection) -> Fault:  # read, check and write as one step: two crews may answer at once
            body = conn.execute(select(faults.c.body).where(faults.c.fault_id == fault_id).with_for_update()).scalar()
            if body is None:
                raise UnknownFaultError(fault_id, "in the store")
            f = Fault.from_dict(json.loads(body))
            f.state = lifecycle.check(fault_id, f.state, to)
            f.evidence = {**f.evidence, f"{to}_by": actor, f"{to}_ts": ts_ms}
            conn.execute(update(faults).where(faults.c.fault_id == fault_id)
                         .values(state=to, body=json.dumps(f.to_dict())))
            conn.execute(insert(fault_log).values(fault_id=fault_id, ts=ts_ms, state=to, actor=actor, note=note))
            return f

        return self.db.write_retrying(work)

    def acknowledge(self, fault_id: str, actor: str, ts_ms: int, note: str = "") -> Fault:
        return self._transition(fault_id, lifecycle.ACKNOWLEDGED, actor, ts_ms, note)

    def resolve(self, fault_id: str, actor: str, ts_ms: int, note: str = "") -> Fault:
        return self._transition(fault_id, lifecycle.RESOLVED, actor, ts_ms, note)

    def fault_log(self, fault_id: str) -> list[dict[str, Any]]:
        q = (select(fault_log.c.ts, fault_log.c.state, fault_log.c.actor, fault_log.c.note)
             .where(fault_log.c.fault_id == fault_id).order_by(fault_log.c.id))
        with self.db.read() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def fault_logs(self, road: str) -> dict[str, list[dict[str, Any]]]:
        """Every logged transition of a road's faults, by fault id, in one query."""
        q = (select(fault_log.c.fault_id, fault_log.c.ts, fault_log.c.state, fault_log.c.actor, fault_log.c.note)
             .join(faults, faults.c.fault_id == fault_log.c.fault_id).where(faults.c.road == road)
             .order_by(fault_log.c.id))
        out: dict[str, list[dict[str, Any]]] = {}
        with self.db.read() as conn:
            for fid, ts, state, actor, note in conn.execute(q):
                out.setdefault(fid, []).append({"ts": ts, "state": state, "actor": actor, "note": note})
        return out

    # --- overrides -----------------------------------------------------------------------
    def save_override(self, road: str, o: Override) -> None:
        with self.db.write() as conn:
            upsert(conn, overrides, {"id": o.id, "road": road, "body": json.dumps(asdict(o)), "active": 1,
                                     "set_by": o.actor, "set_ts": o.start_ms, "cleared_by": None, "cleared_ts": None},
                   ("id",))

    def clear_override(self, override_id: str, actor: str, ts_ms: int) -> None:
        with self.db.write() as conn:
            conn.execute(update(overrides).where(overrides.c.id == override_id)
                         .values(active=0, cleared_by=actor, cleared_ts=ts_ms))

    def active_overrides(self, road: str, now_ms: int) -> list[Override]:
        with self.db.read() as conn:
            bodies = conn.execute(select(overrides.c.body).where(overrides.c.road == road, overrides.c.active == 1)
                                  .order_by(overrides.c.set_ts, overrides.c.id)).scalars().all()
        out = [Override(**json.loads(b)) for b in bodies]
        return [o for o in out if o.expires_ms is None or o.expires_ms > now_ms]

    # --- schedules -----------------------------------------------------------------------
    def save_schedule(self, road: str, entries: list[dict[str, Any]], depression_deg: float, actor: str,
                      ts_ms: int, version: int = 0) -> int:
        """Store the road's schedule entries as a new version (at least ``version``, and one higher
        than the last); returns that version."""

        def work(conn: Connection) -> int:
            last = conn.execute(select(func.max(schedules.c.version)).where(schedules.c.road == road)).scalar()
            chosen = max(version, (last or 0) + 1)
            body = {"version": chosen, "astro": {"depression_deg": depression_deg}, "entries": entries}
            # two writers who read the same last version collide on (road, version): the loser runs again
            conn.execute(insert(schedules).values(road=road, version=chosen, body=json.dumps(body, ensure_ascii=False),
                                                  actor=actor, ts=ts_ms))
            return chosen

        return self.db.write_retrying(work)

    def schedule(self, road: str, version: int | None = None) -> StoredSchedules | None:
        """The road's last stored schedules (or the given version); ``None`` when none is stored."""
        q = select(schedules.c.version, schedules.c.body, schedules.c.actor, schedules.c.ts).where(schedules.c.road == road)
        q = q.order_by(schedules.c.version.desc()).limit(1) if version is None else q.where(schedules.c.version == version)
        with self.db.read() as conn:
            row = conn.execute(q).first()
        if row is None:
            return None
        version, body, actor, ts = row
        data = json.loads(body)
        depression = float(data.get("astro", {}).get("depression_deg", 3.0))
        entries = data.get("entries")
        return StoredSchedules(version, entries, depression, None if entries is not None else data, actor, ts)

    def schedule_versions(self, road: str) -> list[dict[str, Any]]:
        q = (select(schedules.c.version, schedules.c.actor, schedules.c.ts).where(schedules.c.road == road)
             .order_by(schedules.c.version))
        with self.db.read() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # --- energy ----------------------------------------------------------------------------
    def save_energy(self, road: str, ts_ms: int, state: dict[str, Any]) -> None:
        """The energy meter's accumulated state of a road as of platform time ``ts_ms``."""
        with self.db.write() as conn:
            upsert(conn, energy, {"road": road, "ts": ts_ms, "body": json.dumps(state)}, ("road",))

    def energy(self, road: str) -> dict[str, Any] | None:
        with self.db.read() as conn:
            body = conn.execute(select(energy.c.body).where(energy.c.road == road)).scalar()
        return json.loads(body) if body is not None else None
