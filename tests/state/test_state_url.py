"""``STREETLIGHT_STATE_URL``: every store of every process on one PostgreSQL database."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from api.auth import TokenStore
from api.store import Store, default_store_location
from ops.servers import PostgresServer
from runtime.state import ControllerStore
from streetlight.cli import app as cli
from streetlight.settings import Settings


def test_the_token_command_and_the_stores_meet_in_postgresql(postgres: PostgresServer, tmp_path: Path) -> None:
    url = postgres.create_database("state_url")
    settings = Settings(state_url=url, data_dir=tmp_path)
    assert default_store_location(settings) == url and settings.state_location("controller.sqlite3") == url
    assert url not in repr(settings)  # it carries the password

    r = CliRunner().invoke(cli, ["token", "create", "--role", "admin", "--name", "ops"],
                           env={"STREETLIGHT_STATE_URL": url, "STREETLIGHT_DATA_DIR": str(tmp_path)})
    assert r.exit_code == 0, r.output
    store = Store(default_store_location(settings))
    who = TokenStore(store).authenticate(r.output.strip().splitlines()[-1])
    assert who is not None and who.name == "ops"
    ctl = ControllerStore(settings.state_location("controller.sqlite3"))
    assert ctl.save_schedule("nanhuan-1", [], 3.0, "planner", 1) == 1
    ctl.close()
    store.close()
    assert not list(tmp_path.glob("*.sqlite3"))  # nothing went to SQLite


def test_a_state_url_that_is_not_postgresql_is_refused() -> None:
    with pytest.raises(ValidationError, match="postgresql://") as refused:
        Settings(state_url="mysql://u:hunter2@127.0.0.1/db")
    assert "hunter2" not in str(refused.value)  # the error may reach a log: no password in it
    assert Settings(state_url="").state_url is None
