"""Fixtures of the security suite: the API served by uvicorn on a loopback port with a site's
default defences (no webhook allow-list, the default body cap and failure throttle), and a
listener the tests start themselves to see whether anything reaches it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import ApiOptions, create_app
from api.auth import ROLES
from api.memory_platform import MemoryPlatform
from api.platform import PlatformPort
from api.serve import served
from ops.servers import free_port
from streetlight.registry import Road, load_road
from streetlight.settings import Settings


@pytest.fixture(scope="session")
def road() -> Road:
    return load_road("nanhuan-1")


@pytest.fixture
def platform(road: Road) -> Iterator[PlatformPort]:
    p = MemoryPlatform(road, ack_delay_s=0.01, expire_s=0.5)
    yield p
    p.close()


@dataclass
class Site:
    """A served API: its app, base URL, a client, and one token per role."""

    app: FastAPI
    url: str
    client: httpx.Client
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture
def make_site(platform: PlatformPort, tmp_path: Path) -> Iterator[Callable[..., Site]]:
    """Serve an API with the given settings (defaults: a site's own defaults)."""
    stack: list[Any] = []

    def make(options: ApiOptions | None = None, **settings: Any) -> Site:
        folder = tmp_path / f"site{len(stack)}"
        app = create_app(platform, Settings(data_dir=folder, **settings), folder / "api.sqlite3",
                         options or ApiOptions(webhook_attempts=1, webhook_backoff_s=0.01))
        cm = served(app)
        url = cm.__enter__()
        client = httpx.Client(base_url=url, timeout=30)
        stack.append((cm, client))
        tokens = {role: app.state.ctx.tokens.create(role, f"sec-{role}")[0] for role in ROLES}
        return Site(app, url, client, tokens)

    yield make
    for cm, client in reversed(stack):
        client.close()
        cm.__exit__(None, None, None)


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    return make_site()


class Listener:
    """An HTTP server on 127.0.0.1 that records every request that reaches it."""

    def __init__(self) -> None:
        self.hits: list[tuple[str, str, bytes]] = []
        self.lock = threading.Lock()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with listener.lock:
                    listener.hits.append((self.command, self.path, body))
                data = json.dumps({"errcode": 0}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _any  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self) -> int:
        with self.lock:
            return len(self.hits)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()
