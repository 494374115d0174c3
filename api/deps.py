"""What every route depends on: the app context, the caller's token and role, the rate limit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from streetlight.registry import Road
from streetlight.settings import Settings

from .audit import AuditLog
from .auth import PERMISSION_WORDS, Principal, TokenStore
from .errors import Forbidden, NotFoundProblem, RateLimited, Unauthorized, problem_responses
from .platform import PlatformPort
from .ratelimit import RateLimiter

PREFIX = "/api/v1"

if TYPE_CHECKING:
    from .hub import StreamHub
    from .metrics import ApiMetrics
    from .notify import Notifier


@dataclass
class Context:
    platform: PlatformPort
    settings: Settings
    tokens: TokenStore
    audit: AuditLog
    limiter: RateLimiter
    metrics: ApiMetrics
    hub: StreamHub
    notifier: Notifier

    def road(self, road: str | None) -> Road:
        roads = self.platform.roads
        if road is None:
            return next(iter(roads.values()))
        if road not in roads:
            raise NotFoundProblem(f"no road {road!r}; this platform serves {', '.join(roads)}")
        return roads[road]

    def find_pole(self, pole: str, road: str | None = None) -> tuple[Road, str]:
        candidates = [self.road(road)] if road else list(self.platform.roads.values())
        for r in candidates:
            if r.has_pole(pole):
                return r, pole
        first = candidates[0]
        raise NotFoundProblem(f"no pole {pole!r} on {', '.join(r.id for r in candidates)}; "
                              f"pole ids look like {first.poles[0].id} … {first.poles[-1].id}")


def ctx_of(request: Request) -> Context:
    return request.app.state.ctx  # type: ignore[no-any-return]


async def context(request: Request) -> Context:
    # the dependencies here are async on purpose: they only touch memory and one indexed SQLite
    # row, and a hop to the thread pool per dependency would cost more than the work
    return ctx_of(request)


bearer = HTTPBearer(auto_error=False, description="a token from 'streetlight token create'")


async def principal(request: Request,
                    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    if creds is None:
        raise Unauthorized("this route needs a bearer token: send the header 'Authorization: Bearer sl_…'; "
                           "an admin creates one with 'streetlight token create --role viewer --name YOU'")
    who = ctx_of(request).tokens.authenticate(creds.credentials)
    if who is None:
        raise Unauthorized("the bearer token is unknown or has been revoked; ask an admin for a new one")
    request.state.principal = who
    return who


def require(permission: str) -> Callable[..., Awaitable[Principal]]:
    async def check(request: Request, who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not who.may(permission):
            if request.method != "GET":
                ctx_of(request).audit.record(
                    actor=who.name, role=who.role, token_id=who.token_id, action=_action(request),
                    target=request.url.path, result="denied", detail=f"needs permission {permission}")
            allowed = [r for r in ("operator", "maintenance", "admin") if _role_may(r, permission)]
            raise Forbidden(f"role {who.role!r} may not {PERMISSION_WORDS[permission]}; "
                            f"this needs a token of role {' or '.join(allowed)}")
        return who

    return check


def _role_may(role: str, permission: str) -> bool:
    from .auth import PERMISSIONS

    return permission in PERMISSIONS[role]


def _action(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "name", None) or f"{request.method} {request.url.path}"


async def rate_limited(request: Request, who: Annotated[Principal, Depends(principal)]) -> None:
    ctx = ctx_of(request)
    wait = ctx.limiter.take(who.token_id)
    if wait > 0:
        ctx.metrics.rate_limited.inc()
        ctx.audit.record(actor=who.name, role=who.role, token_id=who.token_id, action=_action(request),
                         target=request.url.path, result="rate_limited", detail=f"retry in {wait:.1f} s")
        raise RateLimited(f"too many commands from token {who.name!r}; wait {wait:.0f} s "
                          "(group poles into one segment or list request instead of one call per pole)", wait)


def guard(permission: str, limited: bool = False, extra: tuple[int, ...] = (),
          responses: dict[int | str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Route options: the permission check, its OpenAPI marker and the documented errors."""
    deps = [Depends(require(permission))]
    statuses = (401, 403, 422, *extra)
    if limited:
        deps.append(Depends(rate_limited))
        statuses = (*statuses, 429)
    return {"dependencies": deps, "openapi_extra": {"x-permission": permission},
            "responses": {**(responses or {}), **problem_responses(*sorted(set(statuses)))}}
