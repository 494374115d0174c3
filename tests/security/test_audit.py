"""Finding 5: gaps in the audit log.

The attacks: tokens created and revoked from the command line (admin tokens among them) never
reached ``/audit``; refused reads, 401s and other refusals were not recorded; a viewer added
500 rows in under a second with refused calls, and nothing bounded the table.
"""

from __future__ import annotations

import time
from pathlib import Path

from typer.testing import CliRunner

from api.audit import AuditLog
from api.store import Store

from .conftest import Site


def test_tokens_made_and_revoked_from_the_cli_are_audited(site: Site, tmp_path: Path) -> None:
    from streetlight.cli import app as cli

    store = str(site.app.state.store.path)
    env = {"STREETLIGHT_DATA_DIR": str(tmp_path)}
    made = CliRunner().invoke(cli, ["token", "create", "--role", "admin", "--name", "night admin", "--store", store],
                              env=env)
    assert made.exit_code == 0, made.output
    token_id = made.output.split()[2]
    gone = CliRunner().invoke(cli, ["token", "revoke", token_id, "--store", store], env=env)
    assert gone.exit_code == 0, gone.output
    entries = site.client.get("/api/v1/audit", headers=site.auth("viewer"),
                              params={"target": f"token {token_id}"}).json()
    assert [(e["action"], e["role"]) for e in entries["entries"]] == [("revoke_token", "admin"),
                                                                       ("create_token", "admin")]
    assert all(e["actor"].startswith("cli:") for e in entries["entries"])
    assert entries["entries"][1]["params"]["role"] == "admin"


def test_refusals_of_every_kind_are_audited(site: Site) -> None:
    c = site.client
    assert c.get("/api/v1/poles").status_code == 401
    assert c.get("/api/v1/poles", headers={"Authorization": "Bearer sl_guess"}).status_code == 401
    assert c.get("/api/v1/tokens", headers=site.auth("viewer")).status_code == 403  # a refused read
    assert c.post("/api/v1/poles/dim", headers=site.auth("operator"), content=b"[" * 2_000_000,
                  ).status_code == 413
    results = {(e["result"], e["target"]) for e in
               c.get("/api/v1/audit", headers=site.auth("viewer"), params={"limit": 1000}).json()["entries"]}
    assert ("unauthenticated", "/api/v1/poles") in results
    assert ("denied", "/api/v1/tokens") in results
    assert ("rejected", "/api/v1/poles/dim") in results


def test_a_flood_of_refusals_is_one_row_with_a_count(site: Site) -> None:
    before = site.app.state.store.query("SELECT COUNT(*) AS n FROM audit")[0]["n"]
    for i in range(500):  # the reported attack: a viewer's refused dims
        assert site.client.post(f"/api/v1/poles/NH-{i % 93 + 1:03d}/dim", headers=site.auth("viewer"),
                                json={"level": 10}).status_code == 403
    after = site.app.state.store.query("SELECT COUNT(*) AS n FROM audit")[0]["n"]
    assert after - before == 1
    row = site.client.get("/api/v1/audit", headers=site.auth("viewer"), params={"result": "denied"}).json()["entries"]
    assert row[0]["count"] == 500 and row[0]["actor"] == "sec-viewer"


def test_the_table_is_bounded_by_age_and_size(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.sqlite3")
    log = AuditLog(store, retention_days=30, max_rows=1000)
    old_ms = int(time.time() * 1000) - 31 * 86_400_000
    with store.tx() as db:
        db.executemany("INSERT INTO audit (ts_ms, actor, role, action, target, params, result, detail)"
                       " VALUES (?, 'x', 'admin', 'a', 't', '{}', 'ok', '')", [(old_ms,)] * 10)
    for i in range(1500):
        log.record(actor="x", role="admin", token_id=None, action="a", target=f"t{i}", result="ok")
    assert log.prune() >= 10
    rows = store.query("SELECT MIN(ts_ms) AS oldest, COUNT(*) AS n FROM audit")[0]
    assert rows["n"] <= 1000 and rows["oldest"] > old_ms
    # a log opened on the file prunes at once (the setting is applied on start)
    with store.tx() as db:
        db.execute("INSERT INTO audit (ts_ms, actor, role, action, target, params, result, detail)"
                   " VALUES (?, 'x', 'admin', 'a', 't', '{}', 'ok', '')", (old_ms,))
    AuditLog(store, retention_days=30, max_rows=1000)
    assert store.query("SELECT MIN(ts_ms) AS oldest FROM audit")[0]["oldest"] > old_ms
