"""``streetlight serve`` (run the platform's services) and ``streetlight rejected``."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import settings


def _absolute(ref: str) -> str:
    """A registry file named by a relative path, made absolute for the processes ``serve`` starts."""
    path = Path(ref)
    return str(path.resolve()) if path.suffix in (".yaml", ".yml", ".json") and path.exists() else ref


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        port: int = typer.Option(None, "--port", help="API and dashboard port [env STREETLIGHT_API_PORT, default 8000]"),
        road: list[str] = typer.Option(None, "--road", help="road to serve (repeatable) [env STREETLIGHT_ROADS]"),
        client_id: str = typer.Option("streetlight-gateway", help="MQTT client id: fixed, so the session persists"),
        shared_group: str = typer.Option(None, help="MQTT 5 shared-subscription group, to split poles among gateways"),
        only: list[str] = typer.Option(None, "--only", metavar="ROLE",
                                       help="run only this role: gateway, controller or api (repeatable); "
                                            "none: every role, as a core and an API process this command supervises"),
        gateway_only: bool = typer.Option(False, "--gateway-only",
                                          help="same as --only gateway (one of several gateways); --port then "
                                               "serves /metrics"),
        report_interval_s: int = typer.Option(10, help="the poles' report interval, in their own (device) seconds"),
        processes: bool = typer.Option(False, "--processes",
                                       help="each role in processes of its own (--gateways, --controllers, --apis "
                                            "of each), supervised: gateways on one shared subscription, controllers "
                                            "sharing the roads by lease (give STREETLIGHT_STATE_URL a PostgreSQL "
                                            "database across machines), API processes on one port"),
        gateways: int = typer.Option(2, min=1, help="with --processes: gateway processes"),
        controllers: int = typer.Option(2, min=1, help="with --processes: controller processes"),
        apis: int = typer.Option(2, min=1, help="with --processes: API processes"),
        reuse_port: bool = typer.Option(False, "--reuse-port",
                                        help="with --only api: share the port with other API processes"),
    ) -> None:
        """Run the platform: gateway, controller, API and dashboard, against the configured broker and
        database (the database is created if missing). The API runs in a process of its own. Ctrl-C
        stops it."""
        from runtime.roles import RoleError
        from runtime.serve import run_roles

        from ..credentials import platform_account
        from ..registry import load_road

        s = settings(api_port=port)
        if s.mqtt_username is None and (account := platform_account(s.data_dir)) is not None:
            # the random platform password 'broker config' / 'up' keep in the data folder
            s = s.with_overrides(mqtt_username=account[0], mqtt_password=account[1])
        refs = [_absolute(r) for r in (road or s.roads)]
        roads = [load_road(r) for r in refs]
        roles = ["gateway"] if gateway_only else list(only or [])
        if processes and roles:
            typer.echo("error: --processes runs every role; leave out --only / --gateway-only", err=True)
            raise typer.Exit(2)
        try:
            # a gateway alone serves /metrics only on a port given to it: several run side by side
            run_roles(s, roads, roles, port=port if roles == ["gateway"] else s.api_port, client_id=client_id,
                      shared_group=shared_group, report_interval_s=report_interval_s, road_refs=refs,
                      reuse_port=reuse_port, city=(gateways, controllers, apis) if processes else None)
        except RoleError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None

    @app.command("rejected")
    def rejected(
        limit: int = typer.Option(50, help="how many of the newest to list"),
        client_id: str = typer.Option("streetlight-gateway", help="the gateway whose rejections to list"),
        show_raw: bool = typer.Option(False, "--raw", help="print the payload bytes too"),
    ) -> None:
        """List rejected messages (newest last) with their reasons."""
        from collections import Counter

        from gateway.rejected import read_rejected

        s = settings()
        path = Path(s.data_dir) / "gateway" / client_id / "rejected.jsonl"
        items = read_rejected(path, limit)
        if not items:
            typer.echo(f"no rejected messages in {path}")
            return
        for it in items:
            typer.echo(f"{it.ts_ms}  {it.reason:<14} {it.pole or '?':<10} {it.topic}  ({it.size} bytes) {it.detail}")
            if show_raw:
                typer.echo(f"    {it.raw[:200]!r}")
        counts = Counter(it.reason for it in items)
        typer.echo("by reason: " + ", ".join(f"{r} {n}" for r, n in counts.most_common()))
