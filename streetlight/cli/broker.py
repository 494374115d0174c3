"""``streetlight broker``: generate the broker's security set from the road registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import settings


def site_secret(data_dir: Path, given: str | None) -> str:
    """The site secret: ``STREETLIGHT_POLE_SECRET`` when set, else ``<data_dir>/secret`` (created once)."""
    from ..credentials import load_or_create_secret

    return given or load_or_create_secret(data_dir / "secret")


def register(app: typer.Typer) -> None:
    broker_app = typer.Typer(help="The MQTT broker's security: accounts, ACL, TLS.", no_args_is_help=True)
    app.add_typer(broker_app, name="broker")

    @broker_app.command("config")
    def config(
        out: Annotated[Path, typer.Option("--out", "-o", help="folder to write mosquitto.conf, passwd, acl and the TLS files into")],
        road: Annotated[list[str] | None, typer.Option("--road", "-r", help="road id, registry file or synthetic:N; repeat for several [default: STREETLIGHT_ROADS]")] = None,
        port: int = typer.Option(1883, help="plain MQTT listener port"),
        tls_port: int = typer.Option(8883, help="TLS listener port"),
        no_tls: bool = typer.Option(False, "--no-tls", help="no TLS listener (no CA or certificate generated)"),
        bind: str = typer.Option("127.0.0.1", help="listen address; '' for every interface"),
        docker: bool = typer.Option(False, help="paths and listeners for the eclipse-mosquitto container (see docker-compose.yml)"),
        tls_host: Annotated[list[str] | None, typer.Option("--tls-host", help="name or IP the certificate is for; repeat [default: localhost, 127.0.0.1, mosquitto]")] = None,
        concentrators: bool = typer.Option(True, help="also create concentrator accounts (one per road, one per cabinet)"),
        compact_acl: bool = typer.Option(None, "--compact-acl/--explicit-acl", help="pole rights as %u patterns or explicit lines [default: patterns above 2,000 poles]"),
        show_password: bool = typer.Option(False, "--show-password", help="also print the platform account's password (it is never printed otherwise)"),
    ) -> None:
        """Write the broker security set: anonymous off, one account per pole, ACL, TLS listener."""
        from ops.broker_security import PLATFORM_USER, BrokerLayout, generate, service_passwords

        from ..credentials import service_accounts_path
        from ..registry import load_road

        s = settings()
        roads = [load_road(r) for r in (road or s.roads)]
        secret = site_secret(s.state_dir(), s.pole_secret.get_secret_value() if s.pole_secret else None)
        hosts = tuple(tls_host) if tls_host else BrokerLayout().tls_hosts
        if docker:
            # inside the container: every interface, the image's own folders, its own user
            layout = BrokerLayout(port=port, tls_port=None if no_tls else tls_port, bind=None,
                                  config_dir="/mosquitto/config", persistence_dir="/mosquitto/data",
                                  tls_hosts=hosts, run_as=None)
        else:
            layout = BrokerLayout(port=port, tls_port=None if no_tls else tls_port, bind=bind or None, tls_hosts=hosts)
        service = service_passwords(s.state_dir())
        result = generate(roads, secret, out, layout, concentrators=concentrators, compact_acl=compact_acl,
                          service=service)
        typer.echo(f"wrote {result.out_dir}: mosquitto.conf, passwd ({len(result.users)} accounts, "
                   f"{result.pole_count} poles), acl" + (", ca.crt, server.crt, server.key" if result.ca_cert else ""))
        where = service_accounts_path(s.state_dir())
        if show_password:
            typer.echo(f"platform account: username '{PLATFORM_USER}', password {service[PLATFORM_USER]}")
        else:
            typer.echo(f"platform account: username '{PLATFORM_USER}', random password kept in {where} "
                       "(mode 0600; --show-password prints it)")
        typer.echo("pole accounts: username = pole id, password = streetlight.credentials.pole_password(secret, pole id)")
