"""HTTP errors as ``application/problem+json`` (RFC 9457), each with a message a person can act on.

    ApiError                      an HTTP problem raised on purpose (``status``, ``title``, ``detail``)
    ├── Unauthorized (401)        no bearer token, or one that is unknown or revoked
    ├── Forbidden (403)           the token's role may not do this
    ├── NotFoundProblem (404)     unknown road, pole, segment, command, fault, schedule, token
    ├── ConflictProblem (409)     a transition not allowed now, or a missing ``confirm``
    ├── InvalidProblem (422)      parameters valid one by one but not together (a range too wide)
    └── RateLimited (429)         too many commands from one token; ``retry_after`` seconds

Platform errors (:mod:`api.platform`) and request validation errors are translated here, at
the boundary, so route code raises and never builds responses by hand.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from .platform import Conflict, NotFound, Unavailable

PROBLEM = "application/problem+json"


class Problem(BaseModel):
    type: str = Field("about:blank", description="URI identifying the problem type")
    title: str = Field(description="short summary of the problem type")
    status: int = Field(description="HTTP status code")
    detail: str = Field(description="what went wrong and what to do about it")
    instance: str | None = Field(None, description="the request path")
    errors: list[dict[str, Any]] | None = Field(None, description="each invalid field, for 422")

    model_config = {"json_schema_extra": {"examples": [{
        "type": "about:blank", "title": "Forbidden", "status": 403,
        "detail": "role 'viewer' may not dim poles; ask an admin for an operator token",
        "instance": "/api/v1/poles/NH-047/dim"}]}}


class ApiError(Exception):
    status = 500
    title = "Internal Server Error"

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        self.detail = detail
        self.headers = headers or {}
        super().__init__(detail)


class Unauthorized(ApiError):
    status, title = 401, "Unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, {"WWW-Authenticate": 'Bearer realm="streetlight"'})


class Forbidden(ApiError):
    status, title = 403, "Forbidden"


class NotFoundProblem(ApiError):
    status, title = 404, "Not Found"


class ConflictProblem(ApiError):
    status, title = 409, "Conflict"


class InvalidProblem(ApiError):
    status, title = 422, "Unprocessable Content"


class RateLimited(ApiError):
    status, title = 429, "Too Many Requests"

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail, {"Retry-After": str(max(1, round(retry_after)))})
        self.retry_after = retry_after


def problem_response(status: int, title: str, detail: str, instance: str | None = None,
                     headers: dict[str, str] | None = None, errors: list[dict[str, Any]] | None = None) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM, headers=headers)


# a pattern in the schema, said in words (pydantic's message would quote the regular expression)
PATTERN_WORDS = {
    "url": "expected an http(s) URL: an ASCII host name (labels of at most 63 letters, digits or hyphens) or an "
           "IP address, no user name or password (a robot's key goes in the query or the secret), an optional "
           "port 1–65535, then printable ASCII",
    "at": "expected HH:MM, dusk, dawn, dusk+N or dawn-N, e.g. 22:00 or dusk+15",
    "dates": "expected a date YYYY-MM-DD", "day": "expected a date YYYY-MM-DD",
    "ids": "expected command ids (letters, digits, '-', '_', '.') separated by commas",
    "cmd_id": "expected a command id (letters, digits, '-', '_', '.')",
}


def _message(e: dict[str, Any]) -> str:
    if e.get("type") == "string_pattern_mismatch":
        name = next((x for x in reversed(e.get("loc", ())) if isinstance(x, str)), "")
        if name in PATTERN_WORDS:
            return PATTERN_WORDS[name]
    return str(e.get("msg", "invalid"))


def _validation_errors(err: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    items = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "(request)"
        items.append({"field": loc, "message": _message(e)})
    text = "; ".join(f"{i['field']}: {i['message']}" for i in items[:5])
    return f"the request is invalid: {text}", items


def install(app: FastAPI) -> None:
    """Register the translation of every error into a problem response."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, err: ApiError) -> Response:
        return problem_response(err.status, err.title, err.detail, request.url.path, err.headers)

    @app.exception_handler(NotFound)
    async def _nf(request: Request, err: NotFound) -> Response:
        return problem_response(404, "Not Found", str(err), request.url.path)

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, err: Conflict) -> Response:
        return problem_response(409, "Conflict", str(err), request.url.path)

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, err: Unavailable) -> Response:
        return problem_response(503, "Service Unavailable", f"{err}; retry in a few seconds", request.url.path,
                                {"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> Response:
        detail, items = _validation_errors(err)
        return problem_response(422, "Unprocessable Content", detail, request.url.path, errors=items)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> Response:
        detail = str(err.detail)
        if err.status_code == 404:
            detail = f"no such endpoint {request.url.path}; the API is described at /openapi.json"
        headers = dict(err.headers or {})
        if err.status_code == 405:
            allowed = allowed_methods(request.app, request.url.path)
            headers["Allow"] = ", ".join(allowed)
            detail = (f"{request.method} is not allowed on {request.url.path}; it takes {' or '.join(allowed)} "
                      "(see /openapi.json)")
        return problem_response(err.status_code, _title(err.status_code), detail, request.url.path, headers)

    @app.exception_handler(Exception)
    async def _crash(request: Request, err: Exception) -> Response:
        # the traceback goes to the server log (starlette logs it); the client gets a plain message
        return problem_response(500, "Internal Server Error",
                                "the server failed on this request; the error is in the server log", request.url.path)


def allowed_methods(app: Any, path: str) -> list[str]:
    """The methods of the route a path names, as the OpenAPI document lists them: a literal path
    (``/poles/dim``) before a template that also matches it (``/poles/{pole}``)."""
    matches = [r for r in app.routes if isinstance(r, APIRoute) and r.path_regex.match(path)]
    if not matches:
        return []
    fewest = min(r.path.count("{") for r in matches)
    return sorted({m for r in matches if r.path.count("{") == fewest for m in r.methods or ()})


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error statuses, all problem+json."""
    out: dict[int | str, dict[str, Any]] = {}
    for s in statuses:
        out[s] = {"model": Problem, "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                  "description": _title(s)}
    return out
