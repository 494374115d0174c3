"""Fixtures shared across the suite: the state database on both of its back-ends.

``postgres`` is one throwaway PostgreSQL cluster for the whole session, started the first time a
test asks for it; ``state_location`` is, per test, a fresh SQLite file or a fresh PostgreSQL
database (the test runs once on each), for the stores of ``runtime/state.py`` and ``api/store.py``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.servers import PostgresServer, free_port

BACKENDS = ("sqlite", "postgresql")
_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(name="postgres", port=free_port(), data_dir=tmp_path_factory.mktemp("postgres")).start()
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def state_location(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a test's operational state lives: a SQLite file, or a new database on the session's cluster."""
    if request.param == "sqlite":
        return tmp_path / "state.sqlite3"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"t{next(_databases)}")
