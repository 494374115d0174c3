"""``streetlight simulate`` and ``streetlight replay``: simulated poles against a broker."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import settings

PER_POLE_LIMIT = 2000  # above this many poles one connection each is not sensible: use a concentrator


def parse_speed(text: str | None) -> float | None | str:
    """``max`` -> None (as fast as the broker takes it), a positive number -> itself; ``""`` if unset."""
    if text is None:
        return ""
    if text.strip().lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise typer.BadParameter(f"speed must be a positive number or 'max', got {text!r}") from None
    if value <= 0:
        raise typer.BadParameter("speed must be positive (or 'max')")
    return value


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate(
        scenario: str = typer.Option(..., "--scenario", "-s", help="shipped scenario name (cable-cut, ...) or a YAML file"),
        speed: str = typer.Option(None, help="1 = real time, 60 = an hour a minute, max = as fast as the broker takes it [scenario's]"),
        poles: int = typer.Option(None, min=1, help="run on a synthetic road of N poles instead (drops pole-specific faults)"),
        record: Path = typer.Option(None, help="record every message to this JSON-lines file"),
        concentrator: bool = typer.Option(False, help="carry all poles over one connection (automatic above 2,000 poles)"),
        standalone: bool = typer.Option(False, help="no platform attached: never fall back for want of a heartbeat"),
        disconnect: str = typer.Option(None, help="how a dead pole's connection ends: silent (the broker notices "
                                       "after the keep-alive, as in the field) or clean (will at once) [scenario's]"),
        link: str = typer.Option(None, help="the poles' link for command delays: 4g, nbiot or plc [scenario's]"),
        device_latency_ms: float = typer.Option(None, min=0, help="a fixed command delay in ms instead of a link "
                                                "(0: poles act at once, for benchmarks)"),
        lwm2m_share: float = typer.Option(0.0, min=0.0, max=1.0, help="share of the poles whose lamp controllers "
                                          "speak LwM2M to STREETLIGHT_LWM2M_HOST:PORT (a mixed road; the platform's "
                                          "registry must name their endpoints: streetlight.registry.with_lwm2m_share)"),
    ) -> None:
        """Run a scenario's poles against the broker, with a progress bar in simulated time."""
        from simulators.device import LINKS, fixed_link, link_model
        from simulators.runner import run_simulation, with_poles
        from simulators.scenario import load_scenario
        from simulators.transport import DISCONNECT_MODES

        from ..credentials import pole_password

        s = settings()
        sc = load_scenario(scenario)
        if poles:
            if poles != len(sc.road.poles) and (sc.faults or sc.expected):
                typer.echo(f"note: on a synthetic road of {poles} poles the scenario's faults are dropped", err=True)
            sc = with_poles(sc, poles)
        chosen = parse_speed(speed)
        run_speed = sc.speed if chosen == "" else chosen
        if disconnect is not None and disconnect not in DISCONNECT_MODES:
            raise typer.BadParameter(f"--disconnect must be one of {', '.join(DISCONNECT_MODES)}")
        if link is not None and device_latency_ms is not None:
            raise typer.BadParameter("give --link or --device-latency-ms, not both")
        if link is not None and link not in LINKS:
            raise typer.BadParameter(f"--link must be one of {', '.join(LINKS)}")
        chosen_link = (link_model(link) if link is not None
                       else fixed_link(device_latency_ms) if device_latency_ms is not None else None)
        if not concentrator and len(sc.road.poles) > PER_POLE_LIMIT:
            typer.echo(f"note: {len(sc.road.poles)} poles: using concentrator mode", err=True)
            concentrator = True
        creds = None
        if s.pole_secret is not None:
            secret = s.pole_secret.get_secret_value()

            def creds(pid: str) -> tuple[str, str]:
                return pid, pole_password(secret, pid)

        if lwm2m_share > 0:
            from simulators.lwm2m_mode import run_mixed, with_lwm2m

            stats = run_mixed(with_lwm2m(sc, lwm2m_share), lwm2m_server=(s.lwm2m_host, s.lwm2m_port),
                              mqtt_url=s.mqtt_url, speed=run_speed, record=record, concentrator=concentrator,
                              credentials=creds, progress=True, heartbeat_required=not standalone,
                              disconnect=disconnect, link=chosen_link)
        else:
            stats = run_simulation(sc, mqtt_url=s.mqtt_url, speed=run_speed, record=record,  # type: ignore[arg-type]
                                   concentrator=concentrator, credentials=creds, progress=True,
                                   heartbeat_required=not standalone, disconnect=disconnect, link=chosen_link)
        typer.echo(f"{stats.scenario}: {stats.poles} poles, {stats.steps} steps, {stats.published:,} messages "
                   f"({', '.join(f'{k} {v:,}' for k, v in sorted(stats.messages.items()))}) in {stats.wall_s:.1f} s")
        if record:
            typer.echo(f"recorded {stats.recorded:,} messages to {record}")

    @app.command("replay")
    def replay_cmd(
        file: Path = typer.Argument(..., exists=True, dir_okay=False, help="a recording (JSON lines)"),
        speed: str = typer.Option("1", help="1 = the original pace, 60 = an hour a minute, max = as fast as possible"),
    ) -> None:
        """Publish a recording into the broker again, at any speed."""
        from simulators.replay import replay

        s = settings()
        chosen = parse_speed(speed)
        creds = None
        if s.mqtt_username:
            creds = (s.mqtt_username, s.mqtt_password.get_secret_value() if s.mqtt_password else "")
        stats = replay(file, s.mqtt_url, None if chosen == "" else chosen, credentials=creds)  # type: ignore[arg-type]
        typer.echo(f"replayed {stats.messages:,} messages in {stats.wall_s:.1f} s")
