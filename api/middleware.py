"""ASGI middleware: request metrics, the body cap, authentication before a body is read, and
the security headers.

Metrics are per route template (not per raw path, so pole ids do not explode the labels).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError, problem_response
from .metrics import ApiMetrics


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - t0)


class BodyTooLarge(HTTPException):
    """A request body grew past the cap while it was being read (an HTTP error, so the route's
    body reader lets it through as 413 instead of calling it a parse error)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _too_large(max_bytes), {"Connection": "close"})


def _too_large(max_bytes: int) -> str:
    return (f"the request body is larger than {max_bytes:,} bytes, the most this API reads; "
            "send less (a list request of poles fits well under it)")


class BodyLimit:
    """Refuse a request body over ``max_bytes`` with 413, without reading it.

    A declared ``Content-Length`` over the cap is refused before a byte of the body is read; a
    body without one (chunked) is counted as it arrives and cut off at the cap. The routes never
    see more than the cap, so no caller, with or without a token, can make the server hold a
    large body in memory.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, on_refused: Callable[[Scope], None]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    self.on_refused(scope)
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:  # read outside a route's own error handling
            if started:
                raise
            await self._answer(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        self.on_refused(scope)
        await self._answer(scope, send)

    async def _answer(self, scope: Scope, send: Send) -> None:
        resp = problem_response(413, "Content Too Large", _too_large(self.max_bytes), scope.get("path"),
                                {"Connection": "close"})
        await resp(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1").strip())
    return None


class AuthBeforeBody:
    """Authenticate a request that carries a body before the body is read.

    FastAPI reads and parses a body before it runs a route's dependencies, so without this an
    unauthenticated caller could make the server parse up to the body cap per request. Routes
    that need no token (health, the dashboard) carry no body, so every body goes through here.
    """

    def __init__(self, app: ASGIApp, authenticate: Callable[[Scope], object]) -> None:
        self.app = app
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS")
                or not scope["path"].startswith("/api/")):
            await self.app(scope, receive, send)
            return
        try:
            who = self.authenticate(scope)
        except ApiError as err:
            resp = problem_response(err.status, err.title, err.detail, scope.get("path"), err.headers)
            await resp(scope, _no_receive, send)
            return
        scope.setdefault("state", {})["principal"] = who
        await self.app(scope, receive, send)


# the dashboard runs only its own script and style, is never framed, and sends nowhere else
DASHBOARD_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                 "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", DASHBOARD_CSP.encode()),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


class SecurityHeaders:
    """The browser-facing headers on every answer: no sniffing, no framing, a strict CSP."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *((k, v) for k, v in SECURITY_HEADERS if k not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)
