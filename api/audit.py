"""The audit log: every control action and every fault transition, who, what, target, when, result."""

from __future__ import annotations

import time
from typing import Any

import orjson

from .store import Store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL, actor TEXT NOT NULL,
    role TEXT NOT NULL, token_id TEXT, action TEXT NOT NULL, target TEXT NOT NULL,
    params TEXT NOT NULL, result TEXT NOT NULL, detail TEXT NOT NULL
)"""


class AuditLog:
    def __init__(self, store: Store) -> None:
        self.store = store
        with store.tx() as db:
            db.execute(_SCHEMA)
            db.execute("CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts_ms)")

    def record(self, *, actor: str, role: str, token_id: str | None, action: str, target: str,
               result: str, params: dict[str, Any] | None = None, detail: str = "") -> int:
        with self.store.tx() as db:
            cur = db.execute(
                "INSERT INTO audit (ts_ms, actor, role, token_id, action, target, params, result, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (int(time.time() * 1000), actor, role, token_id, action, target,
                 orjson.dumps(params or {}).decode(), result, detail),
            )
            return int(cur.lastrowid or 0)

    def list(self, *, actor: str | None = None, action: str | None = None, target: str | None = None,
             result: str | None = None, since_ms: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        where, args = [], []
        for col, value in (("actor", actor), ("action", action), ("target", target), ("result", result)):
            if value is not None:
                where.append(f"{col} = ?")
                args.append(value)
        if since_ms is not None:
            where.append("ts_ms >= ?")
            args.append(since_ms)
        sql = "SELECT * FROM audit" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self.store.query(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
        return [{**dict(r), "params": orjson.loads(r["params"])} for r in rows]
