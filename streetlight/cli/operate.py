"""Operator commands over the API: ``streetlight dim``, ``streetlight faults``, ``streetlight ack``."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

API_URL = typer.Option(None, "--api-url", envvar="STREETLIGHT_API_URL",
                       help="the API [env STREETLIGHT_API_URL; default http://API_HOST:API_PORT]")
TOKEN = typer.Option(None, "--token", envvar="STREETLIGHT_API_TOKEN",
                     help="bearer token [env STREETLIGHT_API_TOKEN]; see 'streetlight token create'")


class _Api:
    def __init__(self, url: str | None, token: str | None) -> None:
        import httpx

        from .common import settings

        if not token:
            typer.secho("error: no token: pass --token or set STREETLIGHT_API_TOKEN "
                        "(an admin creates one with 'streetlight token create')", fg=typer.colors.RED, err=True)
            raise typer.Exit(2)
        if not url:
            s = settings()
            url = f"http://{s.api_host}:{s.api_port}"
        self.url = url.rstrip("/")
        self.client = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def call(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        try:
            r = self.client.request(method, path, **kw)
        except httpx.HTTPError as err:
            typer.secho(f"error: cannot reach the API at {self.url}: {err}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            typer.secho(f"error: HTTP {r.status_code}: {detail}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1)
        return r.json() if r.content else None


def register(app: typer.Typer) -> None:
    @app.command("dim")
    def dim(
        level: float = typer.Option(..., min=0, max=100, help="output level, %"),
        pole: Annotated[list[str] | None, typer.Option("--pole", help="a pole id (repeat for several)")] = None,
        segment: str = typer.Option(None, help="a segment id, e.g. S3"),
        road: str = typer.Option(None, help="a road id: every pole of the road"),
        ramp_ms: int = typer.Option(0, min=0, help="fade over this many ms"),
        expires_in: int = typer.Option(None, min=1, help="an override: back to the schedule after this many s"),
        yes: bool = typer.Option(False, "--yes", help="do not ask before dimming a whole road"),
        wait: bool = typer.Option(True, help="wait for every pole's ack and print them"),
        api_url: str = API_URL, token: str = TOKEN,
    ) -> None:
        """Dim a pole, a segment or a road, and wait for the acks."""
        targets = [bool(pole), bool(segment), bool(road)]
        if sum(targets) != 1:
            typer.secho("error: give exactly one of --pole, --segment, --road", fg=typer.colors.RED, err=True)
            raise typer.Exit(2)
        api = _Api(api_url, token)
        body: dict[str, Any] = {"level": level, "ramp_ms": ramp_ms, "expires_in_s": expires_in}
        if pole and len(pole) == 1:
            accepted = api.call("POST", f"/api/v1/poles/{pole[0]}/dim", json=body)
        elif pole:
            accepted = api.call("POST", "/api/v1/poles/dim", json={**body, "poles": pole})
        elif segment:
            accepted = api.call("POST", f"/api/v1/segments/{segment}/dim", json=body)
        else:
            if not yes and not typer.confirm(f"Dim every pole of {road} to {level:g} %?"):
                raise typer.Exit(1)
            accepted = api.call("POST", f"/api/v1/roads/{road}/dim", json={**body, "confirm": True})
        typer.echo(f"{accepted['target']}: {accepted['poles']} pole(s) to {level:g} %, "
                   f"command(s) {', '.join(accepted['command_ids'])}")
        raised = [a for a in accepted.get("applied", []) if a.get("rule") == "floor"]
        if raised:  # the controller raised the level to what the segment's traffic needs
            typer.echo(f"{len(raised)} pole(s) sent more than asked: {raised[0]['why']}")
        if wait:
            _wait(api, accepted["command_ids"])

    @app.command("faults")
    def faults(
        open_: bool = typer.Option(False, "--open", help="only open and acknowledged faults"),
        segment: str = typer.Option(None, help="only this segment"),
        api_url: str = API_URL, token: str = TOKEN,
    ) -> None:
        """List faults with their location in words."""
        api = _Api(api_url, token)
        params: dict[str, Any] = {"open": open_}
        if segment:
            params["segment"] = segment
        body = api.call("GET", "/api/v1/faults", params=params)
        if not body["faults"]:
            typer.echo("no faults")
        for f in body["faults"]:
            typer.echo(f"{f['fault_id']}  {f['state']:<12} {f['severity']:<8} {f['type']:<20} {f['location']}")

    @app.command("ack")
    def ack(fault_id: str = typer.Argument(..., help="e.g. F-000123"),
            note: str = typer.Option("", help="a note for the work order"),
            api_url: str = API_URL, token: str = TOKEN) -> None:
        """Acknowledge a fault (a crew has taken it)."""
        f = _Api(api_url, token).call("POST", f"/api/v1/faults/{fault_id}/ack", json={"note": note})
        typer.echo(f"{f['fault_id']} acknowledged by {f['acknowledged_by']}: {f['location']}")

    @app.command("resolve")
    def resolve(fault_id: str = typer.Argument(..., help="e.g. F-000123"),
                note: str = typer.Option("", help="what was done"),
                api_url: str = API_URL, token: str = TOKEN) -> None:
        """Resolve a fault after the repair."""
        f = _Api(api_url, token).call("POST", f"/api/v1/faults/{fault_id}/resolve", json={"note": note})
        typer.echo(f"{f['fault_id']} resolved by {f['resolved_by']}")


def _wait(api: _Api, ids: list[str], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    results: dict[str, dict[str, Any]] = {}
    pending = list(ids)
    while pending and time.monotonic() < deadline:
        batch = api.call("GET", "/api/v1/commands", params={"ids": ",".join(pending)})
        for cmd in batch["commands"]:
            results.update(cmd["poles"])
            if cmd["done"]:
                pending.remove(cmd["cmd_id"])
        if pending:
            time.sleep(0.1)
    counts: dict[str, int] = {}
    for s in results.values():
        counts[s["status"]] = counts.get(s["status"], 0) + 1
    typer.echo(", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    for pole, s in sorted(results.items()):
        if s["status"] != "acked":
            typer.echo(f"  {pole}: {s['status']} {s.get('error') or ''}".rstrip())
    if pending:
        typer.secho(f"still pending after {timeout_s:.0f} s: {', '.join(pending)}", fg=typer.colors.YELLOW, err=True)
        raise typer.Exit(1)
    if any(s["status"] != "acked" for s in results.values()):
        raise typer.Exit(1)
