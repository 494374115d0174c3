"""The controller's side of the control channel: what an API process asks of the controller process.

An API process runs apart from the gateway and the controller (``streetlight serve``, roles in
:mod:`runtime.roles`). It reads what it can itself (the road from the broker, faults and
schedules from the state database, readings from InfluxDB) and sends everything the controller
owns here, over HTTP with a shared secret (on loopback unless ``STREETLIGHT_CONTROL_HOST`` says
otherwise: API processes on other machines or in other containers):

    POST /v1/call      {"method": "dim", "args": {...}}  -> {"result": ...}   (the port's methods)
    GET  /v1/snapshot  the controller's levels and reasons, restarts, emergencies, readiness, stats
    GET  /v1/events?after=N&wait=S   command and alert events after sequence N (long poll)

Port errors travel as 404 / 409 / 503 answers (:mod:`runtime.port_codec`). Every controller
process writes its address and secret to ``control-channels/<its client id>.json`` in the data
folder (mode 0600), which API processes read (:class:`runtime.control_client.ControlRouter`); a
restarted controller writes a new one, with a new ``epoch`` for its event sequence. Its snapshot
says which roads it ``holding`` (decides for, by lease): an API process sends each road's calls
there, so controllers that serve different roads, and their standbys, run side by side.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import secrets
import threading
from collections import deque
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from api.platform import LiveEvent, PlatformError

from . import port_codec
from .live_platform import LivePlatform
from .port_codec import encode, error_answer

log = logging.getLogger(__name__)
CHANNELS = "control-channels"
EVENT_KINDS = ("command", "alert")  # twins an API process builds itself from the broker
BUFFER = 20_000  # events kept for API processes that fell behind or came back


def channels_dir(data_dir: Path) -> Path:
    return Path(data_dir) / CHANNELS


def channel_file(data_dir: Path, name: str) -> Path:
    """Where the controller process ``name`` (its client id) advertises its channel."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:100] or "controller"
    return channels_dir(data_dir) / f"{safe}.json"


def channel_files(data_dir: Path) -> list[Path]:
    """Every channel advertised in the data folder."""
    return sorted(channels_dir(data_dir).glob("*.json"))


class _Events:
    """The controller's command and alert events, numbered, kept in a bounded buffer."""

    def __init__(self) -> None:
        self.epoch = secrets.token_hex(8)
        self._buf: deque[tuple[int, dict[str, Any]]] = deque(maxlen=BUFFER)
        self._next = 1
        self._cond = threading.Condition()

    def add(self, e: LiveEvent) -> None:
        with self._cond:
            self._buf.append((self._next, {"kind": e.kind, "data": e.data, "ts_ms": e.ts_ms}))
            self._next += 1
            self._cond.notify_all()

    def after(self, seq: int, wait_s: float) -> tuple[int, list[dict[str, Any]]]:
        with self._cond:
            if self._next - 1 <= seq:
                self._cond.wait(wait_s)
            out = [e for n, e in self._buf if n > seq]
            return self._next - 1, out


class ControlChannel:
    """Serves a :class:`LivePlatform`'s controller-owned methods to API processes."""

    METHODS = ("dim", "identify", "command", "emergency", "put_schedule", "delete_schedule",
               "ack_fault", "resolve_fault", "energy", "switch_port", "power_cycle", "maintenance", "cabinet")

    CHANGES = ("dim", "emergency", "put_schedule", "delete_schedule")  # answered with a fresh snapshot

    def __init__(self, platform: LivePlatform, data_dir: Path, host: str = "127.0.0.1", port: int = 0,
                 advertise: str | None = None, name: str = "controller") -> None:
        """Listen on ``host``:``port`` (0: any free port); API processes are told to call ``advertise``
        (``host`` when not given), the name by which they reach this one from where they run."""
        self.platform = platform
        self.file = channel_file(data_dir, name)
        self.secret = secrets.token_urlsafe(32)
        self.events = _Events()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://{advertise or host}:{self._server.server_address[1]}"
        self._threads: list[threading.Thread] = []

    def start(self, advertise: bool = True) -> ControlChannel:
        sub = self.platform.subscribe()

        def pump() -> None:
            try:
                while not self._stop.is_set():
                    e = sub.get(0.2)
                    if e is not None and e.kind in EVENT_KINDS:
                        self.events.add(e)
            finally:
                sub.close()

        self._threads = [threading.Thread(target=pump, name="control-channel-events", daemon=True),
                         threading.Thread(target=self._server.serve_forever, name="control-channel", daemon=True)]
        for t in self._threads:
            t.start()
        if advertise:
            self.advertise()
        return self

    def advertise(self) -> None:
        """Write the address and secret where API processes look for the controllers."""
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"url": self.url, "secret": self.secret, "epoch": self.events.epoch, "pid": os.getpid()}, f)
        tmp.replace(self.file)
        log.info("control channel on %s", self.url)

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        for t in self._threads:
            t.join(5)
        try:
            if json.loads(self.file.read_text()).get("epoch") == self.events.epoch:
                self.file.unlink()
        except (OSError, ValueError):
            pass

    # -- what the handler calls ----------------------------------------------------------------
    def call(self, method: str, args: dict[str, Any]) -> Any:
        """One of :attr:`METHODS` of the platform, its result encoded for JSON."""
        # what JSON cannot carry as the port's own types is read back into them here, in one place
        if method == "energy":
            args = {**args, "day": date.fromisoformat(args["day"])}
        elif method == "put_schedule":
            args = {**args, "schedule": port_codec.schedule(args["schedule"])}
        return encode(getattr(self.platform, method)(**args))

    def snapshot(self) -> dict[str, Any]:
        p = self.platform
        levels: dict[str, dict[str, Any]] = {}
        restarts: dict[str, dict[str, int]] = {}
        for rid, road in p.roads.items():
            levels[rid] = {pole: list(p.control.level_of(rid, pole)) for pole in road.pole_ids}
            restarts[rid] = {pole: n for (r, pole), n in p.gateway.metrics.restarts.items() if r == rid and n}
        return {"epoch": self.events.epoch, "levels": levels, "restarts": restarts,
                "holding": [rid for rid in p.roads if p.control.holds(rid)],
                "desired": {rid: p.gateway.config.versions.get(rid) for rid in p.roads},
                "emergency": {rid: p.control.emergency_active(rid) for rid in p.roads},
                "ready": p.ready(), "stats": p.stats()}


def _handler(channel: ControlChannel) -> type[BaseHTTPRequestHandler]:
    expected = f"Bearer {channel.secret}".encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: an API process holds its connections
        # headers and body leave in two writes: without this the body waits for the peer's delayed
        # ACK of the headers (40 ms on Linux), on every call
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            log.debug("control channel: " + format, *args)

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            given = (self.headers.get("Authorization") or "").encode()
            if hmac.compare_digest(given, expected):
                return True
            self._answer(401, {"error": "unauthorized", "detail": "wrong or missing channel secret"})
            return False

        def do_GET(self) -> None:  # noqa: N802 - the base class's name
            if not self._authorized():
                return
            url = urlsplit(self.path)
            q = parse_qs(url.query)
            if url.path == "/v1/snapshot":
                self._answer(200, channel.snapshot())
            elif url.path == "/v1/events":
                after = int(q.get("after", ["0"])[0])
                wait = min(float(q.get("wait", ["0"])[0]), 10.0)
                last, events = channel.events.after(after, wait)
                self._answer(200, {"epoch": channel.events.epoch, "last": last, "events": events})
            else:
                self._answer(404, {"error": "no_route", "detail": url.path})

        def do_POST(self) -> None:  # noqa: N802 - the base class's name
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not self._authorized():
                return
            if self.path != "/v1/call":
                self._answer(404, {"error": "no_route", "detail": self.path})
                return
            try:
                req = json.loads(raw)
                method, args = req["method"], dict(req.get("args") or {})
            except (ValueError, KeyError, TypeError) as err:
                self._answer(400, {"error": "bad_request", "detail": f"not a call: {err}"})
                return
            if method not in channel.METHODS:
                self._answer(400, {"error": "bad_request", "detail": f"no method {method!r}; the channel serves "
                                                                      f"{', '.join(channel.METHODS)}"})
                return
            try:
                body = {"result": channel.call(method, args)}
                if method in channel.CHANGES:  # the state it changed, in the same answer (no second call)
                    body["snapshot"] = channel.snapshot()
                self._answer(200, body)
            except PlatformError as err:
                self._answer(*error_answer(err))
            except Exception as err:  # the controller process keeps serving; the API gets a 503
                log.exception("control channel call %s failed", method)
                self._answer(503, {"error": "unavailable", "detail": f"{method} failed in the controller: {err}"})

    return Handler
