"""Running the benchmarks: one function per benchmark, a table per run, JSON for the record.

Each benchmark is a function ``run(quick: bool) -> list[dict]`` in the module named in
:data:`BENCHES`; each dict is one row of the printed table (a ``case`` key, then its
measurements, and ratios against the baseline measured in the same run).
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer  # echo only: the tables go to the terminal like any command's output

BenchFn = Callable[[bool], list[dict[str, Any]]]
BENCHES: dict[str, str] = {  # name -> module:function
    "sim": "benchmarks.sim:run",
    "ingest": "benchmarks.ingest:run",
    "energy": "benchmarks.energy:run",
    "api": "benchmarks.api:run",
    "scale": "benchmarks.scale:run",
    "lwm2m": "benchmarks.lwm2m:run",
    "failover": "benchmarks.failover:run",
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
        target = BENCHES[name]
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


