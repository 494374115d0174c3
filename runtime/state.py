"""SQLite storage of the controller's operational state: faults and their lifecycle, overrides,
schedules (versioned), the energy meters' running totals; standard library only. The controller itself does no I/O; this is where
what it decides is kept. Fault transitions follow ``controller.faults.lifecycle``.

Schedules are stored once, here: each version's body is the road's schedule entries as operators
edit them (ids, names, priorities; see ``api.platform``) with the astronomical clock's setting; the
controller's :class:`~controller.schedule.ScheduleBook` is compiled from them on load
(``runtime.schedules``).

Every change a person makes (acknowledge, resolve, set or clear an override, a new schedule
version) is stored with who did it and when (message time, as everywhere).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from controller.errors import UnknownFaultError
from controller.faults import Fault, lifecycle
from controller.overrides import Override

SCHEMA = """
CREATE TABLE IF NOT EXISTS faults (
    fault_id TEXT PRIMARY KEY, road TEXT NOT NULL, type TEXT NOT NULL, state TEXT NOT NULL,
    severity TEXT NOT NULL, pole TEXT, feeder TEXT, first_seen_ts INTEGER NOT NULL,
    last_seen_ts INTEGER NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS faults_state ON faults (road, state);
CREATE TABLE IF NOT EXISTS fault_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, fault_id TEXT NOT NULL, ts INTEGER NOT NULL,
    state TEXT NOT NULL, actor TEXT NOT NULL, note TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS overrides (
    id TEXT PRIMARY KEY, road TEXT NOT NULL, body TEXT NOT NULL, active INTEGER NOT NULL,
    set_by TEXT NOT NULL, set_ts INTEGER NOT NULL, cleared_by TEXT, cleared_ts INTEGER
);
CREATE TABLE IF NOT EXISTS schedules (
    road TEXT NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL, actor TEXT NOT NULL,
    ts INTEGER NOT NULL, PRIMARY KEY (road, version)
);
CREATE TABLE IF NOT EXISTS energy (
    road TEXT PRIMARY KEY, ts INTEGER NOT NULL, body TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class StoredSchedules:
    """One stored version of a road's schedules."""

    version: int
    entries: list[dict[str, Any]] | None  # None: an older release stored the compiled book only
    depression_deg: float
    book: dict[str, Any] | None  # that older release's book mapping, else None
    actor: str
    ts_ms: int


class ControllerStore:
    """One SQLite file; safe to share between the service's threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()  # re-entered: a transition reads the fault under it

    def close(self) -> None:
        self._db.close()

    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # --- faults --------------------------------------------------------------------------
    def save_fault(self, f: Fault, actor: str = "controller") -> None:
        """Store a fault as the controller reported it; a change of state is logged, and one the
        lifecycle does not allow raises FaultStateError (the stored fault stays as it was)."""
        with self._lock:
            row = self._db.execute("SELECT state FROM faults WHERE fault_id = ?", (f.fault_id,)).fetchone()
            if row is not None and row[0] != f.state:
                lifecycle.check(f.fault_id, row[0], f.state)
            self._db.execute(
                "INSERT OR REPLACE INTO faults VALUES (?,?,?,?,?,?,?,?,?,?)",
                (f.fault_id, f.road, f.type, f.state, f.severity, f.pole, f.feeder, f.first_seen_ts,
                 f.last_seen_ts, json.dumps(f.to_dict())))
            if row is None or row[0] != f.state:
                self._db.execute("INSERT INTO fault_log (fault_id, ts, state, actor, note) VALUES (?,?,?,?,?)",
                                 (f.fault_id, f.last_seen_ts, f.state, actor, f.summary if row is None else ""))

    def fault(self, fault_id: str) -> Fault:
        rows = self._exec("SELECT body FROM faults WHERE fault_id = ?", (fault_id,))
        if not rows:
            raise UnknownFaultError(fault_id, "in the store")
        return Fault.from_dict(json.loads(rows[0][0]))

    def faults(self, road: str, state: str | None = None, limit: int = 1000) -> list[Fault]:
        if state:
            rows = self._exec("SELECT body FROM faults WHERE road = ? AND state = ? ORDER BY fault_id DESC LIMIT ?",
                              (road, state, limit))
        else:
            rows = self._exec("SELECT body FROM faults WHERE road = ? ORDER BY fault_id DESC LIMIT ?", (road, limit))
        return [Fault.from_dict(json.loads(r[0])) for r in rows]

    def live_faults(self, road: str) -> list[Fault]:
        """Open and acknowledged faults: what a restarted controller takes up again."""
        rows = self._exec("SELECT body FROM faults WHERE road = ? AND state != ? ORDER BY fault_id",
                          (road, lifecycle.RESOLVED))
        return [Fault.from_dict(json.loads(r[0])) for r in rows]

    def next_fault_seq(self) -> int:
        rows = self._exec("SELECT fault_id FROM faults")
        seqs = [int(r[0].split("-")[1]) for r in rows if r[0].startswith("F-") and r[0][2:].isdigit()]
        return max(seqs, default=0) + 1

    def _transition(self, fault_id: str, to: str, actor: str, ts_ms: int, note: str) -> Fault:
        with self._lock:  # read, check and write as one step: two crews may answer at once
            f = self.fault(fault_id)
            f.state = lifecycle.check(fault_id, f.state, to)
            f.evidence = {**f.evidence, f"{to}_by": actor, f"{to}_ts": ts_ms}
            self._db.execute("UPDATE faults SET state = ?, body = ? WHERE fault_id = ?",
                             (to, json.dumps(f.to_dict()), fault_id))
            self._db.execute("INSERT INTO fault_log (fault_id, ts, state, actor, note) VALUES (?,?,?,?,?)",
                             (fault_id, ts_ms, to, actor, note))
        return f

    def acknowledge(self, fault_id: str, actor: str, ts_ms: int, note: str = "") -> Fault:
        return self._transition(fault_id, lifecycle.ACKNOWLEDGED, actor, ts_ms, note)

    def resolve(self, fault_id: str, actor: str, ts_ms: int, note: str = "") -> Fault:
        return self._transition(fault_id, lifecycle.RESOLVED, actor, ts_ms, note)

    def fault_log(self, fault_id: str) -> list[dict[str, Any]]:
        rows = self._exec("SELECT ts, state, actor, note FROM fault_log WHERE fault_id = ? ORDER BY id", (fault_id,))
        return [{"ts": r[0], "state": r[1], "actor": r[2], "note": r[3]} for r in rows]

    def fault_logs(self, road: str) -> dict[str, list[dict[str, Any]]]:
        """Every logged transition of a road's faults, by fault id, in one query."""
        rows = self._exec("SELECT l.fault_id, l.ts, l.state, l.actor, l.note FROM fault_log l "
                          "JOIN faults f ON f.fault_id = l.fault_id WHERE f.road = ? ORDER BY l.id", (road,))
        out: dict[str, list[dict[str, Any]]] = {}
        for fid, ts, state, actor, note in rows:
            out.setdefault(fid, []).append({"ts": ts, "state": state, "actor": actor, "note": note})
        return out

    # --- overrides -----------------------------------------------------------------------
    def save_override(self, road: str, o: Override) -> None:
        self._exec("INSERT OR REPLACE INTO overrides VALUES (?,?,?,?,?,?,NULL,NULL)",
                   (o.id, road, json.dumps(asdict(o)), 1, o.actor, o.start_ms))

    def clear_override(self, override_id: str, actor: str, ts_ms: int) -> None:
        self._exec("UPDATE overrides SET active = 0, cleared_by = ?, cleared_ts = ? WHERE id = ?",
                   (actor, ts_ms, override_id))

    def active_overrides(self, road: str, now_ms: int) -> list[Override]:
        rows = self._exec("SELECT body FROM overrides WHERE road = ? AND active = 1", (road,))
        out = [Override(**json.loads(r[0])) for r in rows]
        return [o for o in out if o.expires_ms is None or o.expires_ms > now_ms]

    # --- schedules -----------------------------------------------------------------------
    def save_schedule(self, road: str, entries: list[dict[str, Any]], depression_deg: float, actor: str,
                      ts_ms: int, version: int = 0) -> int:
        """Store the road's schedule entries as a new version (at least ``version``, and one higher
        than the last); returns that version."""
        with self._lock:
            row = self._db.execute("SELECT MAX(version) FROM schedules WHERE road = ?", (road,)).fetchone()
            version = max(version, (row[0] or 0) + 1)
            body = {"version": version, "astro": {"depression_deg": depression_deg}, "entries": entries}
            self._db.execute("INSERT INTO schedules VALUES (?,?,?,?,?)",
                             (road, version, json.dumps(body, ensure_ascii=False), actor, ts_ms))
        return version

    def schedule(self, road: str, version: int | None = None) -> StoredSchedules | None:
        """The road's last stored schedules (or the given version); ``None`` when none is stored."""
        if version is None:
            rows = self._exec("SELECT version, body, actor, ts FROM schedules WHERE road = ? "
                              "ORDER BY version DESC LIMIT 1", (road,))
        else:
            rows = self._exec("SELECT version, body, actor, ts FROM schedules WHERE road = ? AND version = ?",
                              (road, version))
        if not rows:
            return None
        version, body, actor, ts = rows[0]
        data = json.loads(body)
        depression = float(data.get("astro", {}).get("depression_deg", 3.0))
        entries = data.get("entries")
        return StoredSchedules(version, entries, depression, None if entries is not None else data, actor, ts)

    def schedule_versions(self, road: str) -> list[dict[str, Any]]:
        rows = self._exec("SELECT version, actor, ts FROM schedules WHERE road = ? ORDER BY version", (road,))
        return [{"version": r[0], "actor": r[1], "ts": r[2]} for r in rows]

    # --- energy ----------------------------------------------------------------------------
    def save_energy(self, road: str, ts_ms: int, state: dict[str, Any]) -> None:
        """The energy meter's accumulated state of a road as of platform time ``ts_ms``."""
        self._exec("INSERT OR REPLACE INTO energy VALUES (?,?,?)", (road, ts_ms, json.dumps(state)))

    def energy(self, road: str) -> dict[str, Any] | None:
        rows = self._exec("SELECT body FROM energy WHERE road = ?", (road,))
        return json.loads(rows[0][0]) if rows else None
