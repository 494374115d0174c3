"""The schema's migrations: files of the release before them upgraded in place, and the
migrations arriving at exactly the schema the code declares (on SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from api.audit import AuditLog
from api.auth import TokenStore
from api.notify import Notifier
from api.store import Store
from runtime.state import ControllerStore
from streetlight.statedb import Database
from streetlight.statedb.migrate import head
from streetlight.statedb.schema import metadata

DATA = Path(__file__).parent / "data"


def _old(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    shutil.copyfile(DATA / name, path)
    return path


def _revision(path: Path) -> str:
    return sqlite3.connect(path).execute("SELECT version_num FROM alembic_version").fetchone()[0]


def test_a_controller_file_of_the_release_before_is_upgraded_in_place(tmp_path: Path) -> None:
    path = _old(tmp_path, "controller-v0.sqlite3")
    store = ControllerStore(path)
    assert _revision(path) == head()
    assert [f.fault_id for f in store.live_faults("nanhuan-1")] == ["F-000007", "F-000008"]
    assert [e["state"] for e in store.fault_log("F-000008")] == ["open", "acknowledged"]
    assert [o.id for o in store.active_overrides("nanhuan-1", 1_795_000_000_001)] == ["o1"]
    assert store.schedule("nanhuan-1").entries == [{"id": "d", "kind": "default", "name": "Late"}]
    assert [v["version"] for v in store.schedule_versions("nanhuan-1")] == [1, 2]
    assert store.energy("nanhuan-1") == {"kwh": 12.5}
    assert store.next_fault_seq() == 9  # above the file's faults
    assert store.save_schedule("nanhuan-1", [], 3.0, "planner", 1) == 3
    store.resolve("F-000007", "crew-2", 1_795_000_100_000)
    store.close()
    again = ControllerStore(path)  # a second open finds it current and changes nothing
    assert again.fault("F-000007").state == "resolved" and _revision(path) == head()
    again.close()


def test_an_api_file_of_the_release_before_is_upgraded_in_place(tmp_path: Path) -> None:
    path = _old(tmp_path, "api-v0.sqlite3")
    store = Store(path)
    assert _revision(path) == head()
    who = TokenStore(store).authenticate((DATA / "api-v0.token").read_text().strip())
    assert who is not None and (who.name, who.role) == ("night shift", "operator")
    audit = AuditLog(store)
    assert [(e["action"], e["target"], e["params"], e["count"]) for e in audit.list()] == [
        ("dim", "NH-047", {"level": 35}, 1)]
    audit.record(actor="x", role="admin", token_id=None, action="a", target="t", result="ok")
    assert len(audit.list()) == 2
    hooks = Notifier(store).hooks()
    assert [(h["name"], h["kind"]) for h in hooks] == [("crew", "json")]
    assert path.stat().st_mode & 0o077 == 0  # still private
    store.close()


def test_the_migrations_arrive_at_the_declared_schema(state_location: str | Path) -> None:
    db = Database(state_location)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    db.close()
    assert diff == []


def test_an_older_file_without_later_columns_gets_them(tmp_path: Path) -> None:
    # the API's very first files had tokens without expiry and an audit without counts
    path = tmp_path / "api.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
                             created_ms INTEGER NOT NULL, revoked_ms INTEGER);
        CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL, actor TEXT NOT NULL,
                            role TEXT NOT NULL, token_id TEXT, action TEXT NOT NULL, target TEXT NOT NULL,
                            params TEXT NOT NULL, result TEXT NOT NULL, detail TEXT NOT NULL);
        INSERT INTO audit (ts_ms, actor, role, action, target, params, result, detail)
            VALUES (1, 'a', 'admin', 'x', 't', '{}', 'ok', '');
    """)
    old.close()
    store = Store(path)
    assert [e["count"] for e in AuditLog(store, retention_days=100_000).list()] == [1]
    token, _ = TokenStore(store).create("viewer", "temp", expires_in_s=60)
    assert TokenStore(store).authenticate(token) is not None
    store.close()
