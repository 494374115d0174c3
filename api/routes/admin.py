"""Audit log, tokens, webhooks for crews, and ``whoami``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from ..auth import PERMISSIONS, Principal, UnknownToken
from ..deps import PREFIX, Context, context, guard, principal
from ..errors import ConflictProblem, InvalidProblem, NotFoundProblem
from ..jsonresp import FastJSON
from ..models import AuditList, In, TokenCreate, TokenCreated, TokenOut, WhoAmI
from ..notify import BadWebhookUrl, UnknownWebhook, mask_text, mask_url

router = APIRouter(prefix=PREFIX, tags=["admin"])
Ctx = Annotated[Context, Depends(context)]
Who = Annotated[Principal, Depends(principal)]


PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
IPV4 = rf"{OCTET}(\.{OCTET}){{3}}"
H = r"[0-9A-Fa-f]{1,4}"
IPV6 = r"\[(" + "|".join((  # the forms of RFC 4291 section 2.2, as the standard library parses them
    rf"({H}:){{7}}{H}", rf"({H}:){{1,7}}:", rf"({H}:){{1,6}}:{H}", rf"({H}:){{1,5}}(:{H}){{1,2}}",
    rf"({H}:){{1,4}}(:{H}){{1,3}}", rf"({H}:){{1,3}}(:{H}){{1,4}}", rf"({H}:){{1,2}}(:{H}){{1,5}}",
    rf"{H}:(:{H}){{1,6}}", rf":((:{H}){{1,7}}|:)", rf"::[Ff]{{4}}:{IPV4}")) + r")\]"
# a name: letters, digits and hyphens in labels of 1 to 63; neither four numbers that are no IPv4
# address (999.1.1.1) nor an xn-- label (punycode is not checked here: non-ASCII names are not taken)
NAME = r"(?![0-9]+\.[0-9]+\.[0-9]+\.[0-9]+([:/?#]|$))(?!([A-Za-z0-9-]{1,63}\.)*[Xx][Nn]--)" \
       r"[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*"
WEBHOOK_URL = rf"^https?://({IPV4}|{IPV6}|{NAME})(:{PORT})?([/?#][!-~]*)?$"  # no user:password@


class WebhookIn(In):
    model_config = ConfigDict(extra="forbid", regex_engine="python-re")  # the URL pattern looks ahead

    name: str = Field(min_length=1, max_length=100, examples=["night crew group"])
    kind: Literal["json", "dingtalk", "wecom"]
    # what the notifier takes, said in the schema: an ASCII host name, an IPv4 or a bracketed
    # IPv6 address (no user name or password: a robot's key goes in the query), a port in range,
    # then printable ASCII; whether the address may be reached is the site's allow list's to say
    # (422 "internal address")
    url: str = Field(pattern=WEBHOOK_URL, max_length=2000,
                     examples=["https://oapi.dingtalk.com/robot/send?access_token=…"])
    secret: str | None = Field(None, max_length=200, description="DingTalk signing secret (SEC…)")
    min_severity: Literal["minor", "major", "critical"] = "minor"


class WebhookOut(BaseModel):
    id: str
    name: str
    kind: str
    url: str = Field(description="secret query parameters masked")
    has_secret: bool
    min_severity: str
    created_ms: int


class Delivery(BaseModel):
    id: int
    webhook_id: str
    fault_id: str
    fault_state: str
    ts_ms: int
    attempt: int
    ok: bool
    status_code: int | None
    error: str


@router.get("/whoami", response_model=WhoAmI, **guard("read"))
def whoami(who: Who) -> FastJSON:
    """The caller's token: name, role and permissions."""
    return FastJSON({"token_id": who.token_id, "name": who.name, "role": who.role,
                     "permissions": sorted(PERMISSIONS[who.role])})


@router.get("/audit", response_model=AuditList, **guard("read"))
def audit(ctx: Ctx, actor: Annotated[str | None, Query(max_length=100)] = None,
          action: Annotated[str | None, Query(max_length=64, examples=["dim_segment"])] = None,
          target: Annotated[str | None, Query(max_length=200)] = None,
          result: Literal["ok", "denied", "rejected", "rate_limited", "failed", "unauthenticated"] | None = None,
          since_ms: Annotated[int | None, Query(ge=0, le=2**53)] = None,
          limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> FastJSON:
    """Control actions, fault transitions, token and webhook changes and refusals, newest first:
    who, what, target, when, result. Refusals of one caller are aggregated (``count``)."""
    entries = ctx.audit.list(actor=actor, action=action, target=target, result=result, since_ms=since_ms, limit=limit)
    return FastJSON({"count": len(entries), "entries": entries})


@router.get("/tokens", response_model=list[TokenOut], **guard("admin"))
def list_tokens(ctx: Ctx) -> FastJSON:
    return FastJSON(ctx.tokens.list())


@router.post("/tokens", status_code=201, response_model=TokenCreated, **guard("admin"))
def create_token(ctx: Ctx, who: Who, req: TokenCreate) -> FastJSON:
    """A new token; the token itself is in this answer only. ``expires_in_days`` gives it a lifetime."""
    expires_s = req.expires_in_days * 86_400 if req.expires_in_days is not None else None
    try:
        token, record = ctx.tokens.create(req.role, req.name, expires_in_s=expires_s)
    except ValueError as err:
        raise InvalidProblem(str(err)) from None
    ctx.audit.record(actor=who.name, role=who.role, token_id=who.token_id, action="create_token",
                     target=f"token {record['id']}", result="ok",
                     params={"role": req.role, "name": record["name"], "expires_ms": record["expires_ms"]})
    return FastJSON({**record, "token": token}, status_code=201)


@router.delete("/tokens/{token_id}", response_model=TokenOut, **guard("admin", extra=(404, 409)))
def revoke_token(ctx: Ctx, who: Who, token_id: Annotated[str, Path(max_length=64)]) -> FastJSON:
    """Revoke a token (not the one making this request: an admin cannot lock themselves out)."""
    if token_id == who.token_id:
        raise ConflictProblem("this is the token making the request; revoke it with another admin token "
                              "or with 'streetlight token revoke'")
    try:
        record = ctx.tokens.revoke(token_id)
    except UnknownToken as err:
        raise NotFoundProblem(str(err)) from None
    ctx.audit.record(actor=who.name, role=who.role, token_id=who.token_id, action="revoke_token",
                     target=f"token {token_id}", result="ok")
    return FastJSON(record)


@router.get("/webhooks", response_model=list[WebhookOut], **guard("admin"))
def list_webhooks(ctx: Ctx) -> FastJSON:
    return FastJSON([ctx.notifier.public(h) for h in ctx.notifier.hooks()])


@router.post("/webhooks", status_code=201, response_model=WebhookOut, **guard("admin"))
def add_webhook(ctx: Ctx, who: Who, req: WebhookIn) -> FastJSON:
    """A webhook that receives every fault alert of at least ``min_severity``."""
    try:
        hook = ctx.notifier.add(req.name, req.kind, req.url, req.secret, req.min_severity)
    except BadWebhookUrl as err:
        ctx.audit.record(actor=who.name, role=who.role, token_id=who.token_id, action="add_webhook",
                         target="webhook", params={"kind": req.kind, "url": mask_url(req.url)}, result="rejected",
                         detail=mask_text(str(err))[:300])
        raise InvalidProblem(str(err)) from None
    ctx.audit.record(actor=who.name, role=who.role, token_id=who.token_id, action="add_webhook",
                     target=f"webhook {hook['id']}", params={"kind": req.kind, "url": hook["url"]}, result="ok")
    return FastJSON(hook, status_code=201)


@router.delete("/webhooks/{webhook_id}", status_code=204, response_class=Response, **guard("admin", extra=(404,)))
def remove_webhook(ctx: Ctx, who: Who, webhook_id: Annotated[str, Path(max_length=64)]) -> Response:
    try:
        ctx.notifier.remove(webhook_id)
    except UnknownWebhook as err:
        raise NotFoundProblem(str(err)) from None
    ctx.audit.record(actor=who.name, role=who.role, token_id=who.token_id, action="remove_webhook",
                     target=f"webhook {webhook_id}", result="ok")
    return Response(status_code=204)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=list[Delivery], **guard("admin", extra=(404,)))
def deliveries(ctx: Ctx, webhook_id: Annotated[str, Path(max_length=64)],
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> FastJSON:
    """Every delivery attempt to one webhook, newest first."""
    try:
        return FastJSON(ctx.notifier.deliveries(webhook_id, limit))
    except UnknownWebhook as err:
        raise NotFoundProblem(str(err)) from None
