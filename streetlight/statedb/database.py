"""One connection to the operational state, on SQLite or PostgreSQL, migrated when it opens.

Where: ``STREETLIGHT_STATE_URL`` (``postgresql://user:pass@host:port/db``) when set, else a SQLite
file in ``STREETLIGHT_DATA_DIR`` (``Settings.state_location``). Either way the schema is the one in
``schema.py``, brought up to date by the Alembic migrations in ``migrations/`` each time a
:class:`Database` opens: a file from an older release is upgraded in place.

Several processes may share it. On SQLite: WAL (readers never wait for the writer), a busy
timeout, and every write transaction begun with ``BEGIN IMMEDIATE`` so that a read-then-write
(the next schedule version, a fault's transition) holds the write lock from its first read. On
PostgreSQL: READ COMMITTED, rows read for a change locked with ``SELECT … FOR UPDATE``, and a
transaction that lost a race (a unique key taken meanwhile, a serialization failure or deadlock)
run again from the start by :meth:`Database.write_retrying`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, create_engine, event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from .migrate import upgrade

log = logging.getLogger(__name__)
T = TypeVar("T")
BUSY_TIMEOUT_S = 30.0
_RETRYABLE_SQLSTATES = {"40001", "40P01", "23505"}  # serialization failure, deadlock, unique violation


class StateDatabaseError(RuntimeError):
    """The operational state database cannot be opened or used; ``where`` has no password."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        super().__init__(f"operational state at {where}: {reason}")


def sqlalchemy_url(location: str | Path) -> str:
    """The SQLAlchemy URL of a SQLite path, ``:memory:`` or a ``postgresql://`` URL (driven by psycopg 3)."""
    text = str(location)
    if text == ":memory:":
        return "sqlite://"
    if "://" not in text:
        return f"sqlite:///{Path(text).resolve()}"
    for prefix in ("postgresql://", "postgres://"):
        if text.startswith(prefix):
            return "postgresql+psycopg://" + text[len(prefix):]
    if text.startswith(("postgresql+psycopg://", "sqlite://")):
        return text
    raise StateDatabaseError(_masked(text), "expected postgresql://user:password@host:port/database or a file path")


def _masked(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return "(unreadable URL)"


def _is_retryable(err: exc.DBAPIError) -> bool:
    if isinstance(err, exc.IntegrityError):
        return True  # another process inserted the same key meanwhile: read again, choose again
    return getattr(err.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES


class Database:
    """An engine on the state database with the schema at the newest migration.

    ``private``: a SQLite file (and its -wal and -shm) readable by its owner only, for one
    holding token hashes and webhook secrets. ``synchronous``: SQLite's setting, ``FULL`` (every
    commit on disk before it returns) or ``NORMAL`` (in WAL mode: safe from a crash of the
    process, the last commits may be lost with the power).
    """

    def __init__(self, location: str | Path, *, private: bool = False, synchronous: str = "FULL") -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        self.synchronous = synchronous
        self.url = sqlalchemy_url(location)
        self.where = _masked(self.url)
        self.path: Path | None = None
        self._lock = threading.RLock()  # one writer at a time inside this process: no busy-waiting on our own
        self._memory = self.url == "sqlite://"
        if self.url.startswith("sqlite"):
            if not self._memory:
                self.path = Path(make_url(self.url).database or "")
                self._prepare_file(self.path, private)
            self.engine = self._sqlite_engine()
        else:
            self.engine = create_engine(self.url, pool_pre_ping=True, pool_size=5, max_overflow=5)
        try:
            upgrade(self.engine, self._begin_write)
        except exc.OperationalError as err:
            self.engine.dispose()
            raise StateDatabaseError(self.where, f"cannot open or migrate it: {err.orig}") from err

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @staticmethod
    def _prepare_file(path: Path, private: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not private:
            return
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if p.exists() and p.stat().st_mode & 0o077:
                p.chmod(0o600)

    def _sqlite_engine(self) -> Engine:
        kw: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": BUSY_TIMEOUT_S}}
        if self._memory:
            kw["poolclass"] = StaticPool  # one shared in-memory database, not one per connection
        engine = create_engine(self.url, **kw)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # the driver begins nothing itself; "begin" below does
            cur = dbapi_conn.cursor()
            if not self._memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={self.synchronous}")
            cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("state_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def _begin_write(self, conn: Connection) -> Connection:
        return conn.execution_options(state_write=True)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (a consistent snapshot)."""
        if self._memory:
            with self._lock, self.engine.connect() as conn, conn.begin():
                yield conn
            return
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed at the end of the block, rolled back on an exception."""
        with self._lock, self.engine.connect() as conn:
            self._begin_write(conn)
            with conn.begin():
                yield conn

    def write_retrying(self, work: Callable[[Connection], T], attempts: int = 12) -> T:
        """Run ``work`` in a write transaction, again from the start when another process won a race.

        Between attempts a random wait growing with each loss (up to 0.2 s): writers retrying at
        once would collide again, and on a loaded machine one of them could lose every time."""
        retrying = Retrying(stop=stop_after_attempt(attempts), reraise=True,
                            wait=wait_random_exponential(multiplier=0.005, max=0.2),
                            retry=retry_if_exception(lambda e: isinstance(e, exc.DBAPIError) and _is_retryable(e)),
                            before_sleep=lambda state: log.debug("state write lost a race (attempt %d)",
                                                                 state.attempt_number))
        for attempt in retrying:
            with attempt, self.write() as conn:
                return work(conn)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.engine.dispose()


def upsert(conn: Connection, table: Table, values: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    """Insert a row, or replace the non-key columns of the row with the same ``keys``."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values)
    stmt = stmt.on_conflict_do_update(index_elements=list(keys),
                                      set_={k: stmt.excluded[k] for k in values if k not in keys})
    conn.execute(stmt)
