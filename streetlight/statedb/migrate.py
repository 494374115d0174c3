"""Bring a state database to the newest migration (Alembic, scripts in ``migrations/``).

Run on every open, by every process: the first takes a lock (PostgreSQL: an advisory lock in
the migration's transaction; SQLite: ``BEGIN IMMEDIATE``), the others wait for it and then find
nothing to do. A database already at the newest revision costs one small query.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x5354_4C54  # the advisory lock migrations take on PostgreSQL


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@functools.cache
def head() -> str:
    """The newest revision the code knows."""
    rev = ScriptDirectory.from_config(_config()).get_current_head()  # reads the scripts once per process
    assert rev is not None, "no migrations found"
    return rev


def current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, as_writer: Callable[[Connection], Connection]) -> None:
    with engine.connect() as conn:
        as_writer(conn)
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
            if current(conn) == head():
                return
            cfg = _config()  # one per run: the connection travels in it to env.py
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
