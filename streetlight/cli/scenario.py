"""``streetlight scenario``: list the shipped scenarios, run one against the whole platform and check it."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    sc_app = typer.Typer(help="Scenarios: simulated nights with injected faults and their expected outcome.",
                         no_args_is_help=True)
    app.add_typer(sc_app, name="scenario")

    @sc_app.command("list")
    def list_() -> None:
        """The shipped scenario library."""
        from simulators.scenario import load_scenario, shipped_scenarios

        for name in shipped_scenarios():
            s = load_scenario(name)
            typer.echo(f"{name:<14} {s.duration_s / 3600:.1f} h  {len(s.faults)} fault(s)  {s.description}")

    @sc_app.command("run")
    def run(
        names: list[str] = typer.Argument(..., help="scenario names or YAML files ('all' for the whole library)"),
        check: bool = typer.Option(True, "--check/--no-check", help="compare what the platform reported with the expected outcome"),
        concentrator: bool = typer.Option(False, help="carry the poles over one concentrator connection"),
        lwm2m_share: float = typer.Option(0.0, "--lwm2m-share", min=0.0, max=1.0,
                                          help="a mixed road: this share (0 … 1) of the lamp controllers on LwM2M"),
        use_configured: bool = typer.Option(False, "--use-configured",
                                            help="use the STREETLIGHT_* broker and database instead of starting fresh ones"),
        json_out: Path = typer.Option(None, "--json", help="write the results as JSON here"),
    ) -> None:
        """Run scenarios at full speed against the real broker and database with the whole platform
        (gateway and controller), print a table per scenario (fault, expected location, reported
        location, detection delay in report intervals) and the count of readings published, stored,
        duplicated and rejected; exit non-zero on any miss, false alarm or reading unaccounted for."""
        from tqdm import tqdm

        from runtime.scenario_check import run_check
        from simulators.judge import format_table
        from simulators.scenario import shipped_scenarios

        from .common import settings

        refs = shipped_scenarios() if names == ["all"] else names
        s = settings() if use_configured else None
        failed = []
        results = {}
        for ref in refs:
            bar = tqdm(total=1, desc=ref, unit="report", file=sys.stderr, leave=False, mininterval=0.5)

            def progress(i: int, n: int, bar: tqdm = bar) -> None:
                bar.total = n
                bar.n = i
                bar.refresh() if i % 50 == 0 or i == n else None

            r = run_check(ref, settings=s, progress=progress, concentrator=concentrator, lwm2m_share=lwm2m_share)
            bar.close()
            ok = r.passed or not check
            typer.echo(f"\n{r.scenario.name}: {r.steps} report intervals, {r.messages_in:,} messages in {r.wall_s:.0f} s, "
                       f"{r.rejected} rejected; energy saved {r.energy.get('savings_pct', 0):.1f} %, "
                       f"minutes under floor {sum(r.energy.get('minutes_under_floor', {}).values()):.0f}; "
                       f"{r.readings.line()}")
            typer.echo(format_table(r.verdict))
            typer.echo("result: " + ("PASS" if r.passed else "FAIL"))
            results[r.scenario.name] = {
                "passed": r.passed, "wall_s": round(r.wall_s, 1), "messages": r.messages_in,
                "rows": [asdict(row) for row in r.verdict.rows],
                "false_alarms": [fa.to_dict() for fa in r.verdict.false_alarms],
                "readings": r.readings.to_dict(),
                "energy": {k: v for k, v in r.energy.items() if k != "pole_kwh"},
            }
            if not ok:
                failed.append(r.scenario.name)
        if json_out:
            json_out.write_text(json.dumps(results, indent=1, default=str))
        if len(refs) > 1:
            typer.echo(f"\n{len(refs) - len(failed)}/{len(refs)} scenarios passed" + (f"; failed: {', '.join(failed)}" if failed else ""))
        if failed:
            raise typer.Exit(1)
