"""Health, readiness, Prometheus metrics, the live stream, and the dashboard page."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import FileResponse, Response

from ..auth import Principal
from ..deps import PREFIX, Context, context, guard, principal
from ..errors import RateLimited
from ..jsonresp import FastJSON
from ..models import Health, Ready
from ..platform import FaultView, LiveEvent, TwinView
from ..views import fault_out, pole_state

router = APIRouter(tags=["system"])
api_router = APIRouter(prefix=PREFIX, tags=["system"])
Ctx = Annotated[Context, Depends(context)]
KEEPALIVE_S = 15.0
RECHECK_S = 1.0  # how soon an open stream notices its token revoked or expired


@router.get("/healthz", response_model=Health)
def healthz() -> FastJSON:
    """The process is up (no token needed)."""
    return FastJSON({"status": "ok"})


@router.get("/readyz", response_model=Ready, responses={503: {"model": Ready, "description": "not ready"}})
def readyz(ctx: Ctx) -> FastJSON:
    """Broker and database reachable and the road's time known (no token needed); 503 otherwise.
    Until the road's time is known (two thirds of its poles reporting) an operator's dim is 503."""
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
        return fault_out(FaultView.from_dict(event.data))
    if event.kind == "twin":
        d = event.data
        faults = ctx.hub.fault_index().get(str(d.get("pole")), [])
        return {"road": d.get("road"), "pole": d.get("pole"), "state": pole_state(TwinView.from_dict(d), faults),
                "level": d.get("level"), "reason": d.get("reason"), "online": d.get("online"),
                "last_seen_ms": d.get("last_seen_ms"), "power_w": d.get("power_w"), "open_faults": faults}
    return event.data


class StreamSlot:
    """One of a token's live-stream places; given back when the stream ends, or when a stream that
    never started is collected."""

    def __init__(self, ctx: Context, who: Principal) -> None:
        self.who = who
        self.release = weakref.finalize(self, _give_back, ctx.streams, who.token_id)


def _give_back(streams: dict[str, int], token_id: str) -> None:
    left = streams.get(token_id, 1) - 1
    if left > 0:
        streams[token_id] = left
    else:
        streams.pop(token_id, None)


async def stream_slot(ctx: Ctx, who: Annotated[Principal, Depends(principal)]) -> StreamSlot:
    """A place for one more stream of the caller's token, or 429 past ``streams_per_token``
    (checked before the answer starts, so the refusal is a plain 429)."""
    held = ctx.streams.get(who.token_id, 0)
    if held >= ctx.settings.streams_per_token:
        raise RateLimited(f"token {who.name!r} already holds {held} live streams, the most one token may; "
                          "close one (one stream carries every road's events)", 30.0)
    ctx.streams[who.token_id] = held + 1
    return StreamSlot(ctx, who)


@api_router.get("/stream", response_class=EventSourceResponse, **guard("read", extra=(429,)))
async def stream(request: Request, ctx: Ctx, slot: Annotated[StreamSlot, Depends(stream_slot)],
                 max_events: Annotated[int | None, Query(ge=1, le=1_000_000,
                                                         description="close after this many events (the first is `hello`)")] = None,
                 ) -> AsyncIterable[ServerSentEvent]:
    """Live events as Server-Sent Events: ``twin`` (a pole changed), ``command`` (an ack per pole),
    ``alert`` (a fault opened, acknowledged or resolved). A comment line every 15 s keeps it open.
    The stream ends within a second of its token being revoked or expiring (a last ``bye`` event
    says why); one token holds at most ``STREETLIGHT_STREAMS_PER_TOKEN`` streams (429 beyond)."""
    who = slot.who
    client = ctx.hub.join()
    sent = 0
    loop = asyncio.get_running_loop()
    checked = quiet_since = loop.time()
    try:
        yield ServerSentEvent(event="hello", data={"roads": list(ctx.platform.roads)}, retry=3000)
        sent = 1
        while max_events is None or sent < max_events:
            now = loop.time()
            if now - checked >= RECHECK_S:
                checked = now
                if not ctx.tokens.active(who.token_id):
                    ctx.metrics.streams_closed.labels("token_revoked").inc()
                    yield ServerSentEvent(event="bye", data={"reason": "the token was revoked or has expired"})
                    return
            try:
                event = await asyncio.wait_for(client.queue.get(), RECHECK_S)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                if loop.time() - quiet_since >= KEEPALIVE_S:
                    quiet_since = loop.time()
                    yield ServerSentEvent(comment="keep-alive")
                continue
            sent += 1
            quiet_since = loop.time()
            yield ServerSentEvent(event=event.kind, data=_payload(ctx, event))
    finally:
        ctx.hub.leave(client)
        slot.release()


STATIC = Path(__file__).resolve().parent.parent / "static"


@router.get("/", include_in_schema=False)
def dashboard() -> FileResponse:
    # the security headers (CSP, no framing) are added to every answer by api.middleware.SecurityHeaders
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})
