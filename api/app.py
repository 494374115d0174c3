"""The API application: ``create_app(platform, settings, store_path)``.

Routes live under ``/api/v1`` (plus ``/healthz``, ``/readyz``, ``/metrics`` and the dashboard at
``/``). Every route but health, the dashboard page and the API description needs a bearer token.
The API is described by ``/openapi.json`` only: there is no HTML documentation page, because
the usual ones load their scripts from a CDN, which a closed site cannot reach and a strict
content security policy would refuse (docs/api.md says how to browse the document offline).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles

from streetlight.settings import Settings

from . import errors
from .audit import AuditLog
from .auth import TokenStore
from .deps import Context, authenticate, bearer_token, client_address
from .hub import StreamHub
from .metrics import ApiMetrics
from .middleware import AuthBeforeBody, BodyLimit, MetricsMiddleware, SecurityHeaders, header
from .notify import AllowList, Notifier, Resolver, system_resolve
from .platform import PlatformPort
from .ratelimit import FailureThrottle, RateLimiter
from .routes import admin, clock, control, data, equipment, faults, road, schedules, system
from .routes.system import STATIC
from .store import Store

DESCRIPTION = """\
Operate a road of smart streetlights: see every pole live, dim a pole, a segment or the road,
follow each command to every pole's acknowledgement, and work the fault list.

**Authentication**: every route but `/healthz` and `/readyz` needs `Authorization: Bearer <token>`;
tokens come from `streetlight token create --role ROLE --name NAME`. Roles: `viewer` reads;
`operator` dims, sets overrides and schedules; `maintenance` acknowledges and resolves faults and
identifies poles; `admin` does everything and manages tokens and webhooks. A missing or unknown
token gets 401, a role without the permission 403; an address that fails authentication too
often gets 429 for a minute. Request bodies are capped (413 above the cap). Errors are
`application/problem+json` (RFC 9457) with a `detail` saying what to do. Command routes are
rate-limited per token (429 with `Retry-After`).
"""


@dataclass(frozen=True)
class ApiOptions:
    commands_per_minute: float = 120.0
    command_burst: int = 30
    webhook_attempts: int = 4
    webhook_backoff_s: float = 1.0
    deliver_webhooks: bool = True  # False: webhooks are kept and listed but nothing is sent (dry run)
    resolve: Resolver = system_resolve  # how webhook host names become addresses (checked before use)


def create_app(platform: PlatformPort, settings: Settings, store_path: Path | str,
               options: ApiOptions | None = None) -> FastAPI:
    opts = options or ApiOptions()
    store = Store(store_path)
    metrics = ApiMetrics(platform)
    hub = StreamHub(platform, on_drop=metrics.stream_dropped.inc)
    notifier = Notifier(store, attempts=opts.webhook_attempts, backoff_s=opts.webhook_backoff_s,
                        on_attempt=lambda kind, ok: metrics.webhook_deliveries.labels(kind, "ok" if ok else "error").inc(),
                        allow=AllowList.parse(settings.webhook_allow), resolve=opts.resolve)
    hub.listeners.append(notifier.on_event)
    audit = AuditLog(store, retention_days=settings.audit_retention_days, max_rows=settings.audit_max_rows)
    ctx = Context(platform=platform, settings=settings, tokens=TokenStore(store), audit=audit,
                  limiter=RateLimiter(opts.commands_per_minute, opts.command_burst), metrics=metrics, hub=hub,
                  notifier=notifier, failures=FailureThrottle(settings.auth_failures_per_minute), streams={})

    def body_refused(scope: Any) -> None:
        metrics.body_too_large.inc()
        audit.refusal(actor="anonymous", role="-", token_id=None, caller=client_address(scope),
                      action=f"{scope['method']} {scope['path']}", target=scope["path"], result="rejected",
                      detail=f"body over {settings.api_max_body_bytes} bytes")

    def auth_scope(scope: Any) -> object:
        return authenticate(ctx, bearer_token(header(scope, b"authorization")), client_address(scope),
                            scope["method"], scope["path"])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub.start()
        if opts.deliver_webhooks:
            notifier.start()
        try:
            yield
        finally:
            hub.stop()
            notifier.stop()
            audit.flush()

    app = FastAPI(title="Streetlight platform API", version="1.0", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.ctx = ctx
    app.state.store = store
    errors.install(app)
    # outermost last: metrics see every answer; the body cap acts before authentication, which
    # acts before any route reads a body
    app.add_middleware(AuthBeforeBody, authenticate=auth_scope)
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes, on_refused=body_refused)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.include_router(system.router)
    for module in (road, clock, control, schedules, faults, data, equipment, admin):
        app.include_router(module.router)
    app.include_router(system.api_router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated schema, with error responses declared as problem+json only."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    problem = {errors.PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for item in schema.get("paths", {}).values():
        for op in item.values():
            if "requestBody" in op:  # a body that is not JSON at all, or over the cap
                op["responses"].setdefault("400", {"description": "Bad Request", "content": problem})
                op["responses"].setdefault("413", {"description": "Content Too Large", "content": problem})
            for status, resp in op.get("responses", {}).items():
                content = resp.get("content", {})
                if status.startswith(("4", "5")) and errors.PROBLEM in content:
                    content.pop("application/json", None)
                elif status == "422" and "application/json" in content:
                    resp["content"] = {errors.PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    app.openapi_schema = schema
    return schema
