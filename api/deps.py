"""What every route depends on: the app context, the caller's token and role, the rate limit.

Authentication lives in :func:`authenticate`, used by the ``principal`` dependency and, for
requests that carry a body, by :class:`api.middleware.AuthBeforeBody` before the body is read.
A client address that fails too often is refused for a while without a look-up (429), every
failure is counted (``streetlight_api_auth_failures_total``) and audited, aggregated.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
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
from .ratelimit import FailureThrottle, RateLimiter

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
    failures: FailureThrottle
    streams: dict[str, int]  # token id -> live streams open

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
NO_TOKEN = ("this route needs a bearer token: send the header 'Authorization: Bearer sl_…'; "
            "an admin creates one with 'streetlight token create --role viewer --name YOU'")


def client_address(scope: Mapping[str, Any]) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def authenticate(ctx: Context, token: str | None, address: str, method: str, path: str) -> Principal:
    """The caller of a request, or Unauthorized / RateLimited (counted and audited)."""
    wait = ctx.failures.wait(address)
    if wait > 0:
        ctx.metrics.auth_throttled.inc()
        ctx.audit.refusal(actor="anonymous", role="-", token_id=None, caller=address, action=f"{method} {path}",
                          target=path, result="rate_limited", detail="too many failed authentications")
        raise RateLimited(f"too many failed authentications from {address}; wait {wait:.0f} s", wait)
    who = ctx.tokens.authenticate(token) if token else None
    if who is None:
        reason = "missing" if not token else "unknown"
        ctx.failures.failed(address)
        ctx.metrics.auth_failures.labels(reason).inc()
        ctx.audit.refusal(actor="anonymous", role="-", token_id=None, caller=address, action=f"{method} {path}",
                          target=path, result="unauthenticated", detail=f"{reason} token")
        raise Unauthorized(NO_TOKEN if not token else
                           "the bearer token is unknown, revoked or expired; ask an admin for a new one")
    return who


async def principal(request: Request,
                    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    known = getattr(request.state, "principal", None)
    if isinstance(known, Principal):  # checked before the body was read
        return known
    who = authenticate(ctx_of(request), creds.credentials if creds else None, client_address(request.scope),
                       request.method, request.url.path)
    request.state.principal = who
    return who


def require(permission: str) -> Callable[..., Awaitable[Principal]]:
    async def check(request: Request, who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not who.may(permission):
            # reads too: a viewer probing admin routes is worth seeing; aggregated, so it cannot flood
            ctx_of(request).audit.refusal(
                actor=who.name, role=who.role, token_id=who.token_id, caller=client_address(request.scope),
                action=_action(request), target=request.url.path, result="denied",
                detail=f"needs permission {permission}")
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
        ctx.audit.refusal(actor=who.name, role=who.role, token_id=who.token_id, caller=client_address(request.scope),
                          action=_action(request), target=request.url.path, result="rate_limited",
                          detail=f"retry in {wait:.1f} s")
        raise RateLimited(f"too many commands from token {who.name!r}; wait {wait:.0f} s "
                          "(group poles into one segment or list request instead of one call per pole)", wait)


def guard(permission: str, limited: bool = False, extra: tuple[int, ...] = (),
          responses: dict[int | str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Route options: the permission check, its OpenAPI marker and the documented errors."""
    deps = [Depends(require(permission))]
    # 429 everywhere: an address that failed authentication too often is refused on every route
    statuses = (401, 403, 422, 429, *extra)
    if limited:
        deps.append(Depends(rate_limited))
    return {"dependencies": deps, "openapi_extra": {"x-permission": permission},
            "responses": {**(responses or {}), **problem_responses(*sorted(set(statuses)))}}
