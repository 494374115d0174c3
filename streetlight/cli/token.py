"""``streetlight token``: create, list and revoke the API's bearer tokens (stored hashed).

Every creation and revocation is written to the API's audit log, as the operating-system user
who ran the command (``cli:<user>``), like those made over the API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from .common import settings

ROLE_HELP = "viewer (read), operator (dim, overrides, schedules), maintenance (faults, identify), admin (tokens)"


def _store(path: Path | None):  # type: ignore[no-untyped-def]
    from api.auth import TokenStore
    from api.store import Store, default_store_location

    return TokenStore(Store(path or default_store_location(settings())))


def _audit(tokens, action: str, target: str, params: dict[str, object] | None = None) -> None:  # type: ignore[no-untyped-def]
    import getpass

    from api.audit import AuditLog

    s = settings()
    AuditLog(tokens.store, retention_days=s.audit_retention_days, max_rows=s.audit_max_rows).record(
        actor=f"cli:{getpass.getuser()}", role="admin", token_id=None, action=action, target=target,
        params=params, result="ok", detail="streetlight token")


def _when(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M") if ms else "-"


def register(app: typer.Typer) -> None:
    token_app = typer.Typer(help="API tokens: create (printed once), list, revoke.", no_args_is_help=True)
    app.add_typer(token_app, name="token")
    store_opt = typer.Option(None, "--store", help="the API's SQLite file "
                             "[default: STREETLIGHT_STATE_URL when set, else DATA_DIR/api.sqlite3]")

    @token_app.command("create")
    def create(
        role: str = typer.Option(..., help=ROLE_HELP),
        name: str = typer.Option(..., help="who or what uses it, e.g. 'night shift' or 'grafana'"),
        expires_in_days: float = typer.Option(None, "--expires-in-days",
                                              help="lifetime in days [default: until revoked]"),
        store: Path = store_opt,
    ) -> None:
        """Create a token; the token is printed alone on the last line (keep it: only its hash is stored)."""
        from api.auth import UnknownRole

        tokens = _store(store)
        try:
            token, record = tokens.create(role, name, None if expires_in_days is None else expires_in_days * 86_400)
        except (UnknownRole, ValueError) as err:
            typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        _audit(tokens, "create_token", f"token {record['id']}",
               {"role": record["role"], "name": record["name"], "expires_ms": record["expires_ms"]})
        until = f", expires {_when(record['expires_ms'])} UTC" if record["expires_ms"] else ""
        typer.echo(f"created token {record['id']} for {record['name']!r}, role {record['role']}{until}")
        typer.echo(token)

    @token_app.command("list")
    def list_(store: Path = store_opt) -> None:
        """List tokens (never the tokens themselves)."""
        for t in _store(store).list():
            state = f"revoked {_when(t['revoked_ms'])}" if t["revoked_ms"] else "active"
            if t.get("expires_ms") and not t["revoked_ms"]:
                state += f", expires {_when(t['expires_ms'])}"
            typer.echo(f"{t['id']}\t{t['role']:<11}\t{t['name']}\tcreated {_when(t['created_ms'])}\t{state}")

    @token_app.command("revoke")
    def revoke(token_id: str = typer.Argument(..., help="the id shown by 'token list' (tok_…)"),
               store: Path = store_opt) -> None:
        """Revoke a token: it stops working at once."""
        from api.auth import UnknownToken

        tokens = _store(store)
        try:
            tokens.revoke(token_id)
        except UnknownToken as err:
            typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        _audit(tokens, "revoke_token", f"token {token_id}")
        typer.echo(f"revoked {token_id}")
