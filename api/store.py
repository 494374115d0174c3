"""The API's own rows in the state database: tokens, the audit log, webhooks and their deliveries.

A SQLite file in ``STREETLIGHT_DATA_DIR`` by default (``api.sqlite3``), or the PostgreSQL
database of ``STREETLIGHT_STATE_URL``, which every API process and the ``streetlight token``
command then share. The tables are in ``streetlight/statedb/schema.py``; the modules that own
them (``auth``, ``audit``, ``notify``) write SQLAlchemy Core statements through :meth:`Store.tx`
and :meth:`Store.query`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, CursorResult, Executable, RowMapping, text

from streetlight.settings import Settings
from streetlight.statedb import Database

_QMARK = re.compile(r"'[^']*'|\?")


def default_store_path(settings: Settings) -> Path:
    return settings.state_dir() / "api.sqlite3"


def default_store_location(settings: Settings) -> str | Path:
    """Where the API's rows live: ``STREETLIGHT_STATE_URL`` when set, else :func:`default_store_path`."""
    return settings.state_location("api.sqlite3")


def _statement(sql: str | Executable, args: Sequence[object] | Mapping[str, object]) -> tuple[Executable, Any]:
    """A Core statement as it is; SQL text with ``?`` or ``:name`` parameters made portable."""
    if not isinstance(sql, str):
        return sql, (dict(args) if isinstance(args, Mapping) else None)
    if isinstance(args, Mapping):
        return text(sql), dict(args)
    names = iter(range(len(args) + 1))
    portable = _QMARK.sub(lambda m: m.group(0) if m.group(0) != "?" else f":p{next(names)}", sql)
    return text(portable), {f"p{i}": v for i, v in enumerate(args)}


class Tx:
    """One write transaction: ``execute`` takes a Core statement, or SQL text with ``?`` parameters."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def execute(self, sql: str | Executable, args: Sequence[object] | Mapping[str, object] = ()) -> CursorResult[Any]:
        stmt, params = _statement(sql, args)
        return self.conn.execute(stmt, params) if params else self.conn.execute(stmt)

    def executemany(self, sql: str | Executable, rows: Sequence[Sequence[object] | Mapping[str, object]]) -> None:
        if not rows:
            return
        stmt = _statement(sql, rows[0])[0]
        self.conn.execute(stmt, [_statement(sql, r)[1] or {} for r in rows])


class Store:
    """The API process's handle on the state database, shared by its threads.

    ``path`` is a SQLite file or a ``postgresql://`` URL. Other processes (``streetlight token``,
    other API processes) may write at the same time: see ``streetlight.statedb.database``. A
    SQLite file holds token hashes, webhook URLs and signing secrets, so it is readable by its
    owner only (0600, and its -wal and -shm files too).
    """

    def __init__(self, path: Path | str) -> None:
        self.db = Database(path, private=True, synchronous="NORMAL")  # as before: the audit log is written per request
        self.path = self.db.path if self.db.path is not None else path

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        with self.db.write() as conn:
            yield Tx(conn)

    def query(self, sql: str | Executable, args: Sequence[object] | Mapping[str, object] = ()) -> list[RowMapping]:
        stmt, params = _statement(sql, args)
        with self.db.read() as conn:
            result = conn.execute(stmt, params) if params else conn.execute(stmt)
            return list(result.mappings())

    def close(self) -> None:
        self.db.close()
