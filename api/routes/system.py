"""Health, readiness, Prometheus metrics, the live stream, and the dashboard page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import FileResponse, Response

from ..deps import PREFIX, Context, context, guard
from ..jsonresp import FastJSON
from ..models import Health, Ready
from ..platform import LiveEvent
from ..views import fault_out, pole_state

router = APIRouter(tags=["system"])
api_router = APIRouter(prefix=PREFIX, tags=["system"])
Ctx = Annotated[Context, Depends(context)]
KEEPALIVE_S = 15.0


@router.get("/healthz", response_model=Health)
def healthz() -> FastJSON:
    """The process is up (no token needed)."""
    return FastJSON({"status": "ok"})


@router.get("/readyz", response_model=Ready, responses={503: {"model": Ready, "description": "not ready"}})
def readyz(ctx: Ctx) -> FastJSON:
    """Broker and database reachable (no token needed); 503 otherwise."""
    try:
        checks = {k: bool(v) for k, v in ctx.platform.ready().items()}
    except Exception:
        checks = {"platform": False}
    ok = bool(checks) and all(checks.values())
    return FastJSON({"ready": ok, "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response, **guard("read"),
            response_description="Prometheus text exposition format")
def metrics(ctx: Ctx) -> Response:
    """The API's and the platform's metrics: messages in, rejected, written, spool depth, command latency."""
    ctx.metrics.stream_clients.set(ctx.hub.clients)
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _payload(ctx: Context, event: LiveEvent) -> dict[str, Any]:
    if event.kind == "alert":
        return fault_out(event.data)
    if event.kind == "twin":
        d = event.data
        faults = ctx.hub.fault_index().get(str(d.get("pole")), [])
        return {"road": d.get("road"), "pole": d.get("pole"), "state": pole_state(d, faults),
                "level": d.get("level"), "reason": d.get("reason"), "online": d.get("online"),
                "last_seen_ms": d.get("last_seen_ms"), "power_w": d.get("power_w"), "open_faults": faults}
    return event.data


@api_router.get("/stream", response_class=EventSourceResponse, **guard("read"))
async def stream(request: Request, ctx: Ctx,
                 max_events: Annotated[int | None, Query(ge=1, le=1_000_000,
                                                         description="close after this many events (the first is `hello`)")] = None,
                 ) -> AsyncIterable[ServerSentEvent]:
    """Live events as Server-Sent Events: ``twin`` (a pole changed), ``command`` (an ack per pole),
    ``alert`` (a fault opened, acknowledged or resolved). A comment line every 15 s keeps it open."""
    client = ctx.hub.join()
    sent = 0
    try:
        yield ServerSentEvent(event="hello", data={"roads": list(ctx.platform.roads)}, retry=3000)
        sent = 1
        while max_events is None or sent < max_events:
            try:
                event = await asyncio.wait_for(client.queue.get(), KEEPALIVE_S)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield ServerSentEvent(comment="keep-alive")
                continue
            sent += 1
            yield ServerSentEvent(event=event.kind, data=_payload(ctx, event))
    finally:
        ctx.hub.leave(client)


STATIC = Path(__file__).resolve().parent.parent / "static"


@router.get("/", include_in_schema=False)
def dashboard() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})
