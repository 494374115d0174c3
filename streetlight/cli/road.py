"""``streetlight road``: show, validate and export road registries."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..registry import load_road, load_road_file, road_geojson, shipped_roads


def register(app: typer.Typer) -> None:
    road_app = typer.Typer(help="Road registries: poles, segments, feeders, cabinets.", no_args_is_help=True)
    app.add_typer(road_app, name="road")

    @road_app.command("list")
    def list_roads() -> None:
        """List the roads shipped with the platform."""
        for rid in shipped_roads():
            r = load_road(rid)
            typer.echo(f"{rid}\t{r.name} {r.local_name}\t{len(r.poles)} poles")

    @road_app.command("show")
    def show(road: str = typer.Argument(..., help="road id (nanhuan-1), registry file, or synthetic:N")) -> None:
        """Print a summary of a road: poles, segments, feeders, length."""
        r = load_road(road)
        typer.echo(f"road      {r.id}  {r.name} {r.local_name}".rstrip())
        typer.echo(f"class     {r.lighting_class}")
        typer.echo(f"poles     {len(r.poles)}  ({r.poles[0].id} … {r.poles[-1].id})")
        typer.echo(f"length    {r.length_m:.0f} m")
        typer.echo(f"segments  {len(r.segments)}")
        for s in r.segments[:20]:
            n = sum(1 for p in r.poles if p.segment == s.id)
            typer.echo(f"  {s.id:<5} {s.start_m:>7.0f}–{s.end_m:<7.0f} m  {n:>3} poles  {s.name}")
        if len(r.segments) > 20:
            typer.echo(f"  … {len(r.segments) - 20} more")
        typer.echo(f"cabinets  {len(r.cabinets)}")
        typer.echo(f"feeders   {len(r.feeders)}")
        for f in r.feeders[:20]:
            typer.echo(f"  {f.id:<8} cabinet {f.cabinet}  {len(f.poles):>3} poles  {f.poles[0]} → {f.poles[-1]}")
        if len(r.feeders) > 20:
            typer.echo(f"  … {len(r.feeders) - 20} more")
        lwm2m = [p for p in r.poles if p.lwm2m_endpoint]
        if lwm2m:
            typer.echo(f"lwm2m     {len(lwm2m)} poles with an LwM2M lamp controller")
            for p in lwm2m[:20]:
                typer.echo(f"  {p.id:<8} {p.lwm2m_endpoint}")
            if len(lwm2m) > 20:
                typer.echo(f"  … {len(lwm2m) - 20} more")
        if r.note:
            typer.echo(f"note      {r.note}")

    @road_app.command("validate")
    def validate(path: Path = typer.Argument(..., exists=True, dir_okay=False, help="registry YAML/JSON file")) -> None:
        """Check a registry file and list every problem (pole and field)."""
        r = load_road_file(path)
        typer.echo(f"{path}: ok, {len(r.poles)} poles")

    @road_app.command("geojson")
    def geojson(
        road: str = typer.Argument(..., help="road id, registry file, or synthetic:N"),
        out: Path = typer.Option(None, "--out", "-o", help="file to write (default: stdout)"),
    ) -> None:
        """Export a road as GeoJSON (poles, cabinets, segments)."""
        text = json.dumps(road_geojson(load_road(road)), ensure_ascii=False, indent=1)
        if out:
            out.write_text(text, encoding="utf-8")
            typer.echo(f"wrote {out}")
        else:
            typer.echo(text)
