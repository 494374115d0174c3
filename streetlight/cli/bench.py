"""``streetlight bench``: the project's benchmarks, one subcommand each, and ``all``.

Each benchmark is a function ``run(quick: bool) -> list[dict]`` in the module named in
:data:`BENCHES`; each dict is one row of the printed table (a ``case`` key, then its
measurements, and ratios against the baseline measured in the same run). A benchmark whose
module does not exist yet is not offered.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

BenchFn = Callable[[bool], list[dict[str, Any]]]
BENCHES: dict[str, tuple[str, str]] = {  # name -> (module:function, help)
    "sim": ("simulators.bench:run", "simulated pole-steps/s (93, 10k, 100k poles) and concentrator publish rate vs the broker"),
    "ingest": ("gateway.bench:run", "MQTT to InfluxDB messages/s vs naive pipelines and the broker ceiling"),
    "energy": ("streetlight.wiring.energy_bench:run", "a simulated week: adaptive dimming vs full power vs a fixed schedule"),
    "api": ("api.bench:run", "road dim to last ack latency; pole list read throughput"),
    "scale": ("gateway.scale_bench:run", "10,000 poles through 1, 2 and 4 gateway processes"),
}


def machine() -> dict[str, Any]:
    import os

    import psutil

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def _exists(target: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(target.split(":")[0]) is not None


def _load(target: str) -> BenchFn:
    import importlib

    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)  # type: ignore[no-any-return]


def print_table(name: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        typer.echo(f"{name}: no rows")
        return
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    fmt = [str(c) for c in cols]
    cells = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(fmt[i]), *(len(row[i]) for row in cells)) for i in range(len(cols))]
    typer.echo(f"\n## {name}")
    typer.echo("| " + " | ".join(c.ljust(w) for c, w in zip(fmt, widths, strict=True)) + " |")
    typer.echo("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        typer.echo("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def run_benches(names: list[str], quick: bool, out: Path | None) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "benches": {}}
    for name in names:
        target, _ = BENCHES[name]
        typer.echo(f"running bench {name} …", err=True)
        t0 = time.perf_counter()
        rows = _load(target)(quick)
        result["benches"][name] = {"rows": rows, "seconds": round(time.perf_counter() - t0, 1)}
        print_table(name, rows)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        typer.echo(f"\nwrote {out}", err=True)
    return result


def register(app: typer.Typer) -> None:
    bench_app = typer.Typer(help="Benchmarks; each prints a table and can write JSON.", no_args_is_help=True)
    app.add_typer(bench_app, name="bench")

    def make(name: str, help_text: str) -> None:
        @bench_app.command(name, help=help_text)
        def _cmd(
            quick: bool = typer.Option(False, help="a short run, for smoke tests"),
            out: Path = typer.Option(None, "--json", help="write the results as JSON to this file"),
        ) -> None:
            run_benches([name], quick, out)

    available = [n for n in BENCHES if _exists(BENCHES[n][0])]
    for name in available:
        make(name, BENCHES[name][1])

    @bench_app.command("all")
    def all_(
        quick: bool = typer.Option(False, help="short runs, for smoke tests"),
        out: Path = typer.Option(Path("docs/benchmarks.json"), "--json", help="where to write the JSON results"),
    ) -> None:
        """Run every benchmark, print one table each, write JSON."""
        run_benches(available, quick, out)
