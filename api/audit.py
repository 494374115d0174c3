"""The audit log: every control action, fault transition, token and webhook change, and every
refusal (401, 403, 413, 429): who, what, target, when, result.

Refusals are aggregated so that a caller cannot grow the table by being refused: the first
refusal of one caller (token or client address) for one action and result in a window writes a
row; the ones after it in that window only add to that row's ``count``. The table is bounded by
age (``retention_days``) and size (``max_rows``), pruned when the log opens and then hourly.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select, update

from streetlight.statedb.schema import audit

from .store import Store

PRUNE_EVERY_S = 3600.0
_INSERT = insert(audit).returning(audit.c.id)  # built once: the hot path of every request and refusal


@dataclass
class _Open:
    """An aggregated refusal row still taking counts."""

    row_id: int
    started: float
    pending: int = 0
    flushed: float = 0.0


class AuditLog:
    def __init__(self, store: Store, retention_days: float = 400.0, max_rows: int = 1_000_000,
                 window_s: float = 60.0, flush_s: float = 1.0) -> None:
        self.store = store
        self.retention_ms = int(retention_days * 86_400_000)
        self.max_rows = max_rows
        self.window_s = window_s
        self.flush_s = flush_s
        self._open: dict[tuple[str, ...], _Open] = {}
        self._lock = threading.Lock()
        self._pruned = 0.0
        self.prune()

    def record(self, *, actor: str, role: str, token_id: str | None, action: str, target: str,
               result: str, params: dict[str, Any] | None = None, detail: str = "") -> int:
        with self.store.tx() as db:
            row = int(db.execute(_INSERT, {
                "ts_ms": int(time.time() * 1000), "actor": actor, "role": role, "token_id": token_id, "action": action,
                "target": target, "params": orjson.dumps(params or {}).decode(), "result": result,
                "detail": detail}).scalar_one())
        if time.monotonic() - self._pruned > PRUNE_EVERY_S:
            self.prune()
        return row

    def refusal(self, *, actor: str, role: str, token_id: str | None, caller: str, action: str, target: str,
                result: str, detail: str = "") -> None:
        """A refused request, aggregated per caller, action and result within the window."""
        key = (caller, token_id or "", action, result)
        now = time.monotonic()
        with self._lock:
            entry = self._open.get(key)
            if entry is not None and now - entry.started < self.window_s:
                entry.pending += 1
                if now - entry.flushed < self.flush_s:
                    return
                pending, entry.pending, entry.flushed = entry.pending, 0, now
                row_id = entry.row_id
            else:
                if entry is not None:
                    self._flush_one(entry)
                row_id, pending = 0, 0
        if row_id:
            self._add(row_id, pending)
            return
        new = self.record(actor=actor, role=role, token_id=token_id, action=action, target=target,
                          result=result, detail=detail, params={"from": caller})
        with self._lock:
            self._open[key] = _Open(new, now, flushed=now)
            if len(self._open) > 10_000:  # windows long over; their counts were flushed
                for k in [k for k, e in self._open.items() if now - e.started >= self.window_s]:
                    self._flush_one(self._open.pop(k))

    def _flush_one(self, entry: _Open) -> None:
        if entry.pending:
            self._add(entry.row_id, entry.pending)
            entry.pending = 0

    def _add(self, row_id: int, n: int) -> None:
        with self.store.tx() as db:
            db.execute(update(audit).where(audit.c.id == row_id).values(count=audit.c.count + n))

    def flush(self) -> None:
        """Write the counts still held for open refusal rows (before a read, at shutdown)."""
        with self._lock:
            held = [(e.row_id, e.pending) for e in self._open.values() if e.pending]
            for e in self._open.values():
                e.pending = 0
        for row_id, n in held:
            self._add(row_id, n)

    def prune(self) -> int:
        """Delete rows past the retention age and beyond the size bound; returns how many."""
        self._pruned = time.monotonic()
        cutoff = int(time.time() * 1000) - self.retention_ms
        with self.store.tx() as db:
            gone = db.execute(delete(audit).where(audit.c.ts_ms < cutoff)).rowcount
            top = db.execute(select(func.max(audit.c.id))).scalar()
            if top is not None:
                gone += db.execute(delete(audit).where(audit.c.id <= top - self.max_rows)).rowcount
        return int(gone)

    def list(self, *, actor: str | None = None, action: str | None = None, target: str | None = None,
             result: str | None = None, since_ms: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        self.flush()
        q = select(audit)
        for col, value in (("actor", actor), ("action", action), ("target", target), ("result", result)):
            if value is not None:
                q = q.where(audit.c[col] == value)
        if since_ms is not None:
            q = q.where(audit.c.ts_ms >= since_ms)
        rows = self.store.query(q.order_by(audit.c.id.desc()).limit(limit))
        return [{**dict(r), "params": orjson.loads(r["params"])} for r in rows]
