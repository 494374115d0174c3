"""Finding 7, the API part: token guessing, expiry, a blank token name, and what tokens cannot do."""

from __future__ import annotations

import time
from collections.abc import Callable

from .conftest import Site


def test_guessing_tokens_is_throttled_per_address_and_counted(make_site: Callable[..., Site]) -> None:
    site = make_site(auth_failures_per_minute=20)
    codes = [site.client.get("/api/v1/whoami", headers={"Authorization": f"Bearer sl_guess{i}"}).status_code
             for i in range(300)]
    assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}
    refused = site.client.get("/api/v1/whoami", headers={"Authorization": "Bearer sl_guess"})
    assert int(refused.headers["Retry-After"]) >= 1
    # during the block even a right token from that address waits: guesses are not even looked up
    assert site.client.get("/api/v1/whoami", headers=site.auth("viewer")).status_code == 429
    ctx = site.app.state.ctx
    assert ctx.metrics.auth_failures.labels("unknown")._value.get() == 20
    assert ctx.metrics.auth_throttled._value.get() >= 281
    ctx.audit.flush()
    rows = site.app.state.store.query("SELECT result, count FROM audit WHERE actor = 'anonymous'")
    assert {r["result"] for r in rows} == {"unauthenticated", "rate_limited"}
    assert sum(r["count"] for r in rows) >= 300 and len(rows) <= 4


def test_tokens_can_expire(site: Site) -> None:
    r = site.client.post("/api/v1/tokens", headers=site.auth("admin"),
                         json={"role": "viewer", "name": "contractor", "expires_in_days": 2 / 86_400})
    assert r.status_code == 201 and r.json()["expires_ms"] > r.json()["created_ms"]
    token = {"Authorization": f"Bearer {r.json()['token']}"}
    assert site.client.get("/api/v1/whoami", headers=token).status_code == 200
    deadline = time.monotonic() + 20
    while site.client.get("/api/v1/whoami", headers=token).status_code == 200:
        assert time.monotonic() < deadline, "the token did not expire"
        time.sleep(0.2)
    assert site.client.get("/api/v1/whoami", headers=token).status_code == 401


def test_a_blank_token_name_is_a_clear_422(site: Site) -> None:
    for name in ("   ", "\t"):
        r = site.client.post("/api/v1/tokens", headers=site.auth("admin"), json={"role": "viewer", "name": name})
        assert r.status_code == 422, r.text
