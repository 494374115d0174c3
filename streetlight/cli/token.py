"""``streetlight token``: create, list and revoke the API's bearer tokens (stored hashed)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from .common import settings

ROLE_HELP = "viewer (read), operator (dim, overrides, schedules), maintenance (faults, identify), admin (tokens)"


def _store(path: Path | None):  # type: ignore[no-untyped-def]
    from api.auth import TokenStore
    from api.store import Store, default_store_path

    return TokenStore(Store(path or default_store_path(settings())))


def _when(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M") if ms else "-"


def register(app: typer.Typer) -> None:
    token_app = typer.Typer(help="API tokens: create (printed once), list, revoke.", no_args_is_help=True)
    app.add_typer(token_app, name="token")
    store_opt = typer.Option(None, "--store", help="the API's SQLite file [default: DATA_DIR/api.sqlite3]")

    @token_app.command("create")
    def create(
        role: str = typer.Option(..., help=ROLE_HELP),
        name: str = typer.Option(..., help="who or what uses it, e.g. 'night shift' or 'grafana'"),
        store: Path = store_opt,
    ) -> None:
        """Create a token; the token is printed alone on the last line (keep it: only its hash is stored)."""
        from api.auth import UnknownRole

        try:
            token, record = _store(store).create(role, name)
        except (UnknownRole, ValueError) as err:
            typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        typer.echo(f"created token {record['id']} for {record['name']!r}, role {record['role']}")
        typer.echo(token)

    @token_app.command("list")
    def list_(store: Path = store_opt) -> None:
        """List tokens (never the tokens themselves)."""
        for t in _store(store).list():
            state = f"revoked {_when(t['revoked_ms'])}" if t["revoked_ms"] else "active"
            typer.echo(f"{t['id']}\t{t['role']:<11}\t{t['name']}\tcreated {_when(t['created_ms'])}\t{state}")

    @token_app.command("revoke")
    def revoke(token_id: str = typer.Argument(..., help="the id shown by 'token list' (tok_…)"),
               store: Path = store_opt) -> None:
        """Revoke a token: it stops working at once."""
        from api.auth import UnknownToken

        try:
            _store(store).revoke(token_id)
        except UnknownToken as err:
            typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        typer.echo(f"revoked {token_id}")
