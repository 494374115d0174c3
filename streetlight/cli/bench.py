"""``streetlight bench``: the project's benchmarks, one subcommand each, and ``all``.

The benchmarks live in the source checkout's ``benchmarks/`` folder, not in the installed
packages; these commands find them beside the installed ``streetlight`` package.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import typer

NAMES: dict[str, str] = {
    "sim": "simulated pole-steps/s (93, 10k, 100k poles) and concentrator publish rate vs the broker",
    "ingest": "MQTT to InfluxDB messages/s vs naive pipelines and the broker ceiling",
    "energy": "a simulated week: adaptive dimming vs full power vs a fixed schedule",
    "api": "road dim to last ack latency; pole list read throughput; the API in its own process at x60",
    "scale": "10,000 poles through 1, 2 and 4 gateway processes",
    "lwm2m": "LwM2M registrations/s and notifications/s stored, against MQTT telemetry in the same run",
    "failover": "a synthetic city (10 roads x 100 poles) as processes by role; one of each role killed in "
                "turn: readings, commands, faults, recovery times",
}


def _runner() -> ModuleType:
    checkout = Path(__file__).resolve().parents[2]
    if not (checkout / "benchmarks" / "runner.py").exists():
        raise typer.BadParameter(f"the benchmarks are in the source checkout's benchmarks/ folder, not found beside {checkout}")
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    import benchmarks.runner

    return benchmarks.runner


def register(app: typer.Typer) -> None:
    bench_app = typer.Typer(help="Benchmarks; each prints a table and can write JSON.", no_args_is_help=True)
    app.add_typer(bench_app, name="bench")

    def make(name: str, help_text: str) -> None:
        @bench_app.command(name, help=help_text)
        def _cmd(
            quick: bool = typer.Option(False, help="a short run, for smoke tests"),
            out: Path = typer.Option(None, "--json", help="write the results as JSON to this file"),
        ) -> None:
            _runner().run_benches([name], quick, out)

    for name, help_text in NAMES.items():
        make(name, help_text)

    @bench_app.command("all")
    def all_(
        quick: bool = typer.Option(False, help="short runs, for smoke tests"),
        out: Path = typer.Option(Path("docs/benchmarks.json"), "--json", help="where to write the JSON results"),
    ) -> None:
        """Run every benchmark, print one table each, write JSON."""
        _runner().run_benches(list(NAMES), quick, out)
