"""The ``streetlight`` command line.

Each command group lives in a module of this package with a ``register(app)`` function, so the
packages' commands are added without touching one another. Heavy imports happen inside the
commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import typer

from ..errors import StreetlightError
from .common import state

app = typer.Typer(
    name="streetlight",
    help="Smart streetlight control platform: simulate poles, run the platform, operate the road.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# command modules, in --help order; a module that is not there yet is skipped
COMMAND_MODULES = ("road", "serve", "simulate", "scenario", "operate", "token", "up", "broker", "bench")


@app.callback()
def _root(
    mqtt_url: str = typer.Option(None, help="broker URL [env STREETLIGHT_MQTT_URL, default mqtt://127.0.0.1:1883]"),
    influx_url: str = typer.Option(None, help="InfluxDB URL [env STREETLIGHT_INFLUX_URL]"),
    influx_db: str = typer.Option(None, help="InfluxDB database [env STREETLIGHT_INFLUX_DB]"),
    data_dir: str = typer.Option(None, help="state folder (SQLite, spool) [env STREETLIGHT_DATA_DIR]"),
    log_level: str = typer.Option(None, help="DEBUG, INFO, WARNING [env STREETLIGHT_LOG_LEVEL]"),
) -> None:
    """Options given here override the STREETLIGHT_* environment variables for every command."""
    state.overrides = {
        "mqtt_url": mqtt_url, "influx_url": influx_url, "influx_db": influx_db,
        "data_dir": data_dir, "log_level": log_level,
    }


for _name in COMMAND_MODULES:
    if importlib.util.find_spec(f"{__name__}.{_name}") is not None:
        importlib.import_module(f"{__name__}.{_name}").register(app)


def main() -> None:
    try:
        app()
    except StreetlightError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        sys.exit(2)
