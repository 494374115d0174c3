"""Fault alerts pushed to the crews' webhooks: a generic JSON hook, DingTalk and WeCom group robots.

Each alert (a fault opened, acknowledged or resolved) is posted to every enabled webhook whose
``min_severity`` it reaches, on a worker thread, with retries and exponential back-off. Every
attempt is written to the delivery log. A robot answers HTTP 200 with ``errcode`` ≠ 0 when it
refuses a message, so that counts as a failure too. Secrets (the DingTalk signing secret, the
``access_token`` / ``key`` / ``sig`` … in a robot URL, a token in its path) never reach a log
line or an API response: :func:`mask_url` hides them.

A webhook must not become a way into the site's own network (server-side request forgery):
its host is resolved when it is configured AND before every delivery, and refused when any of
its addresses is loopback, private, link-local, shared, reserved or otherwise not global,
unless the site's allow-list (``STREETLIGHT_WEBHOOK_ALLOW``: host names, addresses or networks)
names it. The request then goes to the address that was checked, so a DNS answer that changes
between check and use cannot redirect it; redirects are not followed. A failed delivery is
logged as "no HTTP answer" whatever the reason, so the log cannot be used as a port scanner.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import queue
import re
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import delete, insert, select

from streetlight.statedb.schema import deliveries, webhooks

from .formats import FORMATS, SEVERITY_RANK
from .platform import LiveEvent
from .store import Store

log = logging.getLogger(__name__)
# a query parameter whose name contains one of these is a secret (apikey, api_key, sig, signature,
# access_token, client_secret, password, auth …)
SECRET_WORDS = ("token", "key", "sig", "secret", "pass", "pwd", "auth", "credential", "code")
KINDS = tuple(FORMATS)


def is_secret_param(name: str) -> bool:
    low = name.lower()
    return any(word in low for word in SECRET_WORDS)


def _secret_segment(segment: str) -> bool:
    """A path segment that looks like a credential (Slack, Discord, Teams put theirs in the path)."""
    if len(segment) >= 16:
        return True
    return len(segment) >= 8 and any(c.isdigit() for c in segment) and any(c.isalpha() for c in segment)


def mask_url(url: str) -> str:
    """The URL with user info, secret query values and token-like path segments replaced by ``***``."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return "***"
    query = [(k, "***" if is_secret_param(k) else v) for k, v in urllib.parse.parse_qsl(parts.query)]
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if port:
        netloc += f":{port}"
    if parts.username or parts.password:
        netloc = "***@" + netloc
    path = "/".join("***" if _secret_segment(seg) else seg for seg in parts.path.split("/"))
    return urllib.parse.urlunsplit((parts.scheme, netloc, path, urllib.parse.urlencode(query, safe="*"), ""))


_SECRET_RE = re.compile(r"(?i)\b([\w.-]*(?:" + "|".join(SECRET_WORDS) + r")[\w.-]*)=[^&\s\"']+")


def mask_text(text: str) -> str:
    """Secret ``name=value`` pairs in free text (an exception message, a log line) masked."""
    return _SECRET_RE.sub(lambda m: f"{m.group(1)}=***", text)


class MaskSecrets(logging.Filter):
    """Mask secret query parameters in log lines of HTTP clients (httpx logs every request URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = mask_text(text)
        if masked != text:
            record.msg, record.args = masked, ()
        return True


def install_log_masking() -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskSecrets) for f in logger.filters):
            logger.addFilter(MaskSecrets())


def dingtalk_signed(url: str, secret: str, now_ms: int) -> str:
    """DingTalk's signature: HMAC-SHA256 of ``timestamp\\nsecret`` keyed by the secret, base64."""
    string = f"{now_ms}\n{secret}".encode()
    sign = base64.b64encode(hmac.new(secret.encode(), string, hashlib.sha256).digest()).decode()
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}timestamp={now_ms}&sign={urllib.parse.quote_plus(sign)}"


class BadWebhookUrl(ValueError):
    pass


class RefusedTarget(BadWebhookUrl):
    """The webhook's host is, or resolves to, an address inside the site (and is not allowed)."""


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AllowList:
    """Internal webhook targets a site admin has named on purpose (``STREETLIGHT_WEBHOOK_ALLOW``)."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IpNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        hosts, nets = set(), []
        for entry in entries:
            entry = entry.strip().lower()
            if not entry:
                continue
            try:
                nets.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.rstrip("."))
        return cls(frozenset(hosts), tuple(nets))

    def allows(self, host: str, address: IpAddress) -> bool:
        return host.lower().rstrip(".") in self.hosts or any(address in n for n in self.networks)


def _internal(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def _parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
        parsed.host.encode("idna")
    except Exception as err:  # httpx raises several types for malformed URLs
        raise BadWebhookUrl(f"the webhook URL {mask_url(url)!r} is not usable: {err}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise BadWebhookUrl(f"the webhook URL {mask_url(url)!r} needs http:// or https:// and a host")
    if parsed.userinfo:
        raise BadWebhookUrl(f"the webhook URL {mask_url(url)!r} carries a user name or password; "
                            "put a robot's key in its query string or in the webhook's secret")
    return parsed


Resolver = Callable[[str, int], list[str]]


def system_resolve(host: str, port: int) -> list[str]:
    """The addresses of ``host`` as the system resolves them (an IP literal resolves to itself)."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def resolve_target(url: str, allow: AllowList, resolve: Resolver = system_resolve) -> tuple[httpx.URL, IpAddress]:
    """The parsed URL and the address to post to; :class:`RefusedTarget` when it is internal.

    Every address the name resolves to must pass: a name that answers with one public and one
    loopback address could otherwise be connected to the loopback one.
    """
    parsed = _parse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolve(parsed.host, port)]
    except (OSError, UnicodeError, ValueError) as err:
        raise BadWebhookUrl(f"the webhook host {parsed.host!r} does not resolve ({err}); "
                            "check the name, or the site's DNS") from None
    if not addresses:
        raise BadWebhookUrl(f"the webhook host {parsed.host!r} has no address")
    for address in addresses:
        if _internal(address) and not allow.allows(parsed.host, address):
            raise RefusedTarget(
                f"the webhook host {parsed.host!r} is {address}, an internal address (loopback, private, "
                "link-local or reserved): webhooks go to the crews' services, never into the site's own "
                "network; a site admin who means it names the host in STREETLIGHT_WEBHOOK_ALLOW")
    return parsed, addresses[0]


def check_url(url: str, allow: AllowList | None = None, resolve: Resolver = system_resolve) -> None:
    """Refuse a URL that could never be posted to, or that points inside the site (so the failure
    shows when it is configured)."""
    resolve_target(url, allow or AllowList(), resolve)


class UnknownWebhook(LookupError):
    def __init__(self, webhook_id: str) -> None:
        super().__init__(f"no webhook {webhook_id!r}; list them with GET /api/v1/webhooks")


class Notifier:
    def __init__(self, store: Store, attempts: int = 4, backoff_s: float = 1.0, timeout_s: float = 5.0,
                 on_attempt: Callable[[str, bool], None] = lambda kind, ok: None,
                 allow: AllowList | None = None, resolve: Resolver = system_resolve) -> None:
        self.store = store
        self.allow = allow or AllowList()
        self.resolve = resolve
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.on_attempt = on_attempt
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=10_000)
        self._thread: threading.Thread | None = None
        self.dropped = 0
        install_log_masking()

    # ------------------------------------------------------------ configuration
    def add(self, name: str, kind: str, url: str, secret: str | None = None, min_severity: str = "minor") -> dict[str, Any]:
        if kind not in FORMATS:
            raise ValueError(f"unknown webhook kind {kind!r}; kinds are {', '.join(FORMATS)}")
        check_url(url, self.allow, self.resolve)
        hook = {"id": "wh_" + secrets.token_hex(4), "name": name, "kind": kind, "url": url, "secret": secret,
                "min_severity": min_severity, "created_ms": int(time.time() * 1000)}
        with self.store.tx() as db:
            db.execute(insert(webhooks).values(**hook))
        return self.public(hook)

    def remove(self, webhook_id: str) -> None:
        with self.store.tx() as db:
            if db.execute(delete(webhooks).where(webhooks.c.id == webhook_id)).rowcount == 0:
                raise UnknownWebhook(webhook_id)

    def hooks(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.store.query(select(webhooks).order_by(webhooks.c.created_ms, webhooks.c.id))]

    @staticmethod
    def public(hook: dict[str, Any]) -> dict[str, Any]:
        """A webhook as shown to people: masked URL, no secret."""
        return {"id": hook["id"], "name": hook["name"], "kind": hook["kind"], "url": mask_url(hook["url"]),
                "has_secret": bool(hook.get("secret")), "min_severity": hook["min_severity"],
                "created_ms": hook["created_ms"]}

    def deliveries(self, webhook_id: str, limit: int = 100) -> list[dict[str, Any]]:
        if not self.store.query(select(webhooks.c.id).where(webhooks.c.id == webhook_id)):
            raise UnknownWebhook(webhook_id)
        rows = self.store.query(select(deliveries).where(deliveries.c.webhook_id == webhook_id)
                                .order_by(deliveries.c.id.desc()).limit(limit))
        return [{**dict(r), "ok": bool(r["ok"])} for r in rows]

    # ------------------------------------------------------------ delivery
    def on_event(self, event: LiveEvent) -> None:
        """Hub listener: queue alerts, ignore the rest."""
        if event.kind != "alert":
            return
        try:
            self._queue.put_nowait(event.data)
        except queue.Full:
            self.dropped += 1
            log.warning("webhook queue full; alert %s not delivered", event.data.get("fault_id"))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="api-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread:
            self._queue.put(None)
            self._thread.join(timeout=5)

    def _run(self) -> None:
        # no proxy from the environment (it would connect to a name, not the address checked)
        with httpx.Client(timeout=self.timeout_s, trust_env=False, follow_redirects=False) as client:
            while (fault := self._queue.get()) is not None:
                for hook in self.hooks():
                    if SEVERITY_RANK.get(fault.get("severity", "minor"), 0) < SEVERITY_RANK[hook["min_severity"]]:
                        continue
                    try:
                        self.deliver(client, hook, fault)
                    except Exception:  # one bad hook must not stop the crews' alerts
                        log.exception("webhook %s: delivery failed", hook["name"])

    def deliver(self, client: httpx.Client, hook: dict[str, Any], fault: dict[str, Any]) -> bool:
        body = FORMATS[hook["kind"]](fault)
        for attempt in range(1, self.attempts + 1):
            url = hook["url"]
            if hook["kind"] == "dingtalk" and hook.get("secret"):
                url = dingtalk_signed(url, hook["secret"], int(time.time() * 1000))
            ok, code, error = self._post(client, url, body)
            self._log(hook, fault, attempt, ok, code, error)
            self.on_attempt(hook["kind"], ok)
            if ok:
                return True
            log.warning("webhook %s (%s) attempt %d failed: %s", hook["name"], mask_url(hook["url"]), attempt, error)
            if attempt < self.attempts:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
        return False

    def _post(self, client: httpx.Client, url: str, body: dict[str, Any]) -> tuple[bool, int | None, str]:
        try:
            target, address = resolve_target(url, self.allow, self.resolve)
        except BadWebhookUrl as err:
            return False, None, "refused: " + mask_text(str(err))[:290]
        # connect to the address just checked; the name still goes in Host and in TLS SNI
        pinned = target.copy_with(host=str(address))
        host_header = target.netloc.decode("ascii")
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            resp = client.post(pinned, json=body, headers={"Host": host_header}, extensions=extensions)
        except Exception as err:  # connection, TLS, timeout, a URL httpx cannot encode
            log.info("webhook post to %s failed: %s", mask_url(url), mask_text(f"{type(err).__name__}: {err}"))
            return False, None, "no HTTP answer (connection failed, refused or timed out)"
        if resp.status_code >= 300:
            return False, resp.status_code, f"HTTP {resp.status_code}"
        try:
            answer = resp.json()
        except ValueError:
            answer = {}
        if isinstance(answer, dict) and answer.get("errcode", 0) != 0:  # the robots' refusal
            return False, resp.status_code, f"errcode {answer.get('errcode')}: {answer.get('errmsg', '')}"[:300]
        return True, resp.status_code, ""

    def _log(self, hook: dict[str, Any], fault: dict[str, Any], attempt: int, ok: bool, code: int | None,
             error: str) -> None:
        with self.store.tx() as db:
            db.execute(insert(deliveries).values(
                webhook_id=hook["id"], fault_id=fault.get("fault_id", "?"), fault_state=fault.get("state", "?"),
                ts_ms=int(time.time() * 1000), attempt=attempt, ok=int(ok), status_code=code, error=error))
