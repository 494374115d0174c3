"""Fixtures of the API tests.

``platform`` is the road behind the API: here the in-memory road; a suite against the live stack
overrides ``platform`` (and ``inject_fault``) with the real adapter, and every test runs as is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
from streetlight.registry import Road, load_road
from streetlight.settings import Settings

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="session")
def road() -> Road:
    return load_road("nanhuan-1")


@pytest.fixture
def platform(road: Road) -> Iterator[PlatformPort]:
    p = MemoryPlatform(road, ack_delay_s=0.01, expire_s=0.5)
    yield p
    p.close()


@pytest.fixture
def inject_fault(platform: Any) -> Callable[..., str]:
    """Open a fault on the road; returns its id."""

    def inject(road: str, pole: str, type: str = "lamp_failure", severity: str = "major") -> str:
        return str(platform.inject_fault(road, type=type, pole=pole, severity=severity)["fault_id"])

    return inject


@pytest.fixture
def api_options() -> ApiOptions:
    return ApiOptions(commands_per_minute=6000, command_burst=1000, webhook_attempts=3, webhook_backoff_s=0.05)


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    # the webhook receivers of these tests listen on loopback, which a site must allow on purpose;
    # the route × role matrix makes more failed authentications than a real client would
    return Settings(data_dir=tmp_path, webhook_allow=["127.0.0.1"], auth_failures_per_minute=100_000)


@pytest.fixture
def app(platform: PlatformPort, tmp_path: Path, api_options: ApiOptions, api_settings: Settings) -> FastAPI:
    return create_app(platform, api_settings, tmp_path / "api.sqlite3", api_options)


@dataclass
class Api:
    client: httpx.Client
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}

    def get(self, path: str, role: str | None = "viewer", **kw: Any) -> httpx.Response:
        return self.client.get(path, headers=self.auth(role), **kw)

    def post(self, path: str, role: str | None = "operator", **kw: Any) -> httpx.Response:
        return self.client.post(path, headers=self.auth(role), **kw)

    def wait_command(self, cmd_id: str, timeout_s: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            body = self.get(f"/api/v1/commands/{cmd_id}").json()
            if body["done"] or time.monotonic() > deadline:
                return body  # type: ignore[no-any-return]
            time.sleep(0.02)


@pytest.fixture
def api(app: FastAPI) -> Iterator[Api]:
    with served(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        tokens = {role: app.state.ctx.tokens.create(role, f"test-{role}")[0] for role in ROLES}
        yield Api(client, tokens)
