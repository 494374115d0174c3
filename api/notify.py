"""Fault alerts pushed to the crews' webhooks: a generic JSON hook, DingTalk and WeCom group robots.

Each alert (a fault opened, acknowledged or resolved) is posted to every enabled webhook whose
``min_severity`` it reaches, on a worker thread, with retries and exponential back-off. Every
attempt is written to the delivery log. A robot answers HTTP 200 with ``errcode`` ≠ 0 when it
refuses a message, so that counts as a failure too. Secrets (the DingTalk signing secret, the
``access_token`` / ``key`` in a robot URL) never reach a log line or an API response:
:func:`mask_url` hides them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import queue
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import httpx

from .formats import FORMATS, SEVERITY_RANK
from .platform import LiveEvent
from .store import Store

log = logging.getLogger(__name__)
SECRET_PARAMS = ("access_token", "key", "sign", "token", "secret")
KINDS = tuple(FORMATS)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS webhooks (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, url TEXT NOT NULL,
        secret TEXT, min_severity TEXT NOT NULL, created_ms INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT, webhook_id TEXT NOT NULL, fault_id TEXT NOT NULL,
        fault_state TEXT NOT NULL, ts_ms INTEGER NOT NULL, attempt INTEGER NOT NULL,
        ok INTEGER NOT NULL, status_code INTEGER, error TEXT NOT NULL)""",
)


def mask_url(url: str) -> str:
    """The URL with the values of secret query parameters replaced by ``***``."""
    parts = urllib.parse.urlsplit(url)
    query = [(k, "***" if k.lower() in SECRET_PARAMS else v) for k, v in urllib.parse.parse_qsl(parts.query)]
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username:
        netloc = "***@" + netloc
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, urllib.parse.urlencode(query, safe="*"), ""))


_SECRET_RE = re.compile(r"(?i)\b(" + "|".join(SECRET_PARAMS) + r")=[^&\s\"']+")


class MaskSecrets(logging.Filter):
    """Mask secret query parameters in log lines of HTTP clients (httpx logs every request URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = _SECRET_RE.sub(lambda m: f"{m.group(1)}=***", text)
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


def check_url(url: str) -> None:
    """Refuse a URL that could never be posted to (so the failure shows when it is configured)."""
    try:
        parsed = httpx.URL(url)
        parsed.host.encode("idna")
    except Exception as err:  # httpx raises several types for malformed URLs
        raise BadWebhookUrl(f"the webhook URL {mask_url(url)!r} is not usable: {err}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise BadWebhookUrl(f"the webhook URL {mask_url(url)!r} needs http:// or https:// and a host")


class UnknownWebhook(LookupError):
    def __init__(self, webhook_id: str) -> None:
        super().__init__(f"no webhook {webhook_id!r}; list them with GET /api/v1/webhooks")


class Notifier:
    def __init__(self, store: Store, attempts: int = 4, backoff_s: float = 1.0, timeout_s: float = 5.0,
                 on_attempt: Callable[[str, bool], None] = lambda kind, ok: None) -> None:
        self.store = store
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.on_attempt = on_attempt
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=10_000)
        self._thread: threading.Thread | None = None
        self.dropped = 0
        install_log_masking()
        with store.tx() as db:
            for sql in _SCHEMA:
                db.execute(sql)

    # ------------------------------------------------------------ configuration
    def add(self, name: str, kind: str, url: str, secret: str | None = None, min_severity: str = "minor") -> dict[str, Any]:
        if kind not in FORMATS:
            raise ValueError(f"unknown webhook kind {kind!r}; kinds are {', '.join(FORMATS)}")
        check_url(url)
        hook = {"id": "wh_" + secrets.token_hex(4), "name": name, "kind": kind, "url": url, "secret": secret,
                "min_severity": min_severity, "created_ms": int(time.time() * 1000)}
        with self.store.tx() as db:
            db.execute("INSERT INTO webhooks VALUES (:id, :name, :kind, :url, :secret, :min_severity, :created_ms)", hook)
        return self.public(hook)

    def remove(self, webhook_id: str) -> None:
        with self.store.tx() as db:
            if db.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,)).rowcount == 0:
                raise UnknownWebhook(webhook_id)

    def hooks(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.store.query("SELECT * FROM webhooks ORDER BY created_ms")]

    @staticmethod
    def public(hook: dict[str, Any]) -> dict[str, Any]:
        """A webhook as shown to people: masked URL, no secret."""
        return {"id": hook["id"], "name": hook["name"], "kind": hook["kind"], "url": mask_url(hook["url"]),
                "has_secret": bool(hook.get("secret")), "min_severity": hook["min_severity"],
                "created_ms": hook["created_ms"]}

    def deliveries(self, webhook_id: str, limit: int = 100) -> list[dict[str, Any]]:
        if not self.store.query("SELECT 1 FROM webhooks WHERE id = ?", (webhook_id,)):
            raise UnknownWebhook(webhook_id)
        rows = self.store.query("SELECT * FROM deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?",
                                (webhook_id, limit))
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
        with httpx.Client(timeout=self.timeout_s) as client:
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

    @staticmethod
    def _post(client: httpx.Client, url: str, body: dict[str, Any]) -> tuple[bool, int | None, str]:
        try:
            resp = client.post(url, json=body)
        except Exception as err:  # connection, TLS, timeout, a URL httpx cannot encode
            return False, None, _SECRET_RE.sub(lambda m: f"{m.group(1)}=***", f"{type(err).__name__}: {err}")[:300]
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
            db.execute("INSERT INTO deliveries (webhook_id, fault_id, fault_state, ts_ms, attempt, ok, status_code, error)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (hook["id"], fault.get("fault_id", "?"), fault.get("state", "?"), int(time.time() * 1000),
                        attempt, int(ok), code, error))
