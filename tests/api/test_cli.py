"""``streetlight token`` and the operator commands over a served API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from typer.testing import CliRunner

from api.auth import TokenStore
from api.serve import served
from api.store import Store
from streetlight.cli import app as cli

from .conftest import wait_until

runner = CliRunner()


def test_token_create_prints_the_token_alone_on_its_last_line(tmp_path: Path) -> None:
    store = tmp_path / "api.sqlite3"
    r = runner.invoke(cli, ["token", "create", "--role", "operator", "--name", "night shift", "--store", str(store)])
    assert r.exit_code == 0, r.output
    token = r.output.strip().splitlines()[-1]
    assert token.startswith("sl_") and " " not in token
    who = TokenStore(Store(store)).authenticate(token)
    assert who is not None and (who.role, who.name) == ("operator", "night shift")

    listed = runner.invoke(cli, ["token", "list", "--store", str(store)])
    assert "night shift" in listed.output and token not in listed.output and "active" in listed.output
    assert runner.invoke(cli, ["token", "revoke", who.token_id, "--store", str(store)]).exit_code == 0
    assert TokenStore(Store(store)).authenticate(token) is None
    assert "revoked" in runner.invoke(cli, ["token", "list", "--store", str(store)]).output

    bad = runner.invoke(cli, ["token", "create", "--role", "boss", "--name", "x", "--store", str(store)])
    assert bad.exit_code == 2 and "viewer, operator, maintenance, admin" in bad.output
    assert runner.invoke(cli, ["token", "revoke", "tok_nope", "--store", str(store)]).exit_code == 2


def test_operator_cli_over_http(app: FastAPI, platform: Any, inject_fault: Any) -> None:
    operator = app.state.ctx.tokens.create("operator", "cli-op")[0]
    crew = app.state.ctx.tokens.create("maintenance", "cli-crew")[0]
    with served(app) as url:
        env = {"STREETLIGHT_API_URL": url, "STREETLIGHT_API_TOKEN": operator}
        r = runner.invoke(cli, ["dim", "--pole", "NH-047", "--level", "30"], env=env)
        assert r.exit_code == 0, r.output
        assert "pole NH-047: 1 pole(s) to 30 %" in r.output and "1 acked" in r.output
        # the level sent: 30 %, or the segment's floor when the live road's traffic needs more
        cmd_id = app.state.ctx.audit.list(action="dim_pole")[0]["params"]["command_ids"][0]
        sent = platform.command(cmd_id).level
        assert sent >= 30 and platform.twin("nanhuan-1", "NH-047").reason == "override"
        wait_until(lambda: platform.twin("nanhuan-1", "NH-047").level == sent, 20, f"NH-047 at {sent} %")

        r = runner.invoke(cli, ["dim", "--segment", "S3", "--level", "45"], env=env)
        assert r.exit_code == 0 and "acked" in r.output
        r = runner.invoke(cli, ["dim", "--road", "nanhuan-1", "--level", "60"], env=env, input="n\n")
        assert r.exit_code == 1 and "Dim every pole" in r.output
        r = runner.invoke(cli, ["dim", "--road", "nanhuan-1", "--level", "60", "--yes"], env=env)
        assert r.exit_code == 0 and "93 acked" in r.output

        fid = inject_fault("nanhuan-1", "NH-010")
        r = runner.invoke(cli, ["faults", "--open"], env=env)
        assert fid in r.output and "segment S1" in r.output and "pole NH-010" in r.output
        denied = runner.invoke(cli, ["ack", fid], env=env)  # an operator may not acknowledge
        assert denied.exit_code == 1 and "HTTP 403" in denied.output
        r = runner.invoke(cli, ["ack", fid, "--note", "van 3"], env={**env, "STREETLIGHT_API_TOKEN": crew})
        assert r.exit_code == 0 and "acknowledged by cli-crew" in r.output

        r = runner.invoke(cli, ["dim", "--pole", "NH-001", "--level", "30"], env={"STREETLIGHT_API_URL": url,
                                                                                  "STREETLIGHT_API_TOKEN": ""})
        assert r.exit_code == 2 and "no token" in r.output
