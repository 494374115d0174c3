"""Finding 3 and the stream cap: a revoked or expired token keeps no live stream, and one token
holds a bounded number of streams."""

from __future__ import annotations

import threading
from typing import Any

import httpx

from .conftest import Site


def _read_events(client: httpx.Client, token: str, events: list[str], done: threading.Event) -> None:
    try:
        with client.stream("GET", "/api/v1/stream", headers={"Authorization": f"Bearer {token}"},
                           timeout=httpx.Timeout(30.0)) as resp:
            for line in resp.iter_lines():
                if line.startswith("event:"):
                    events.append(line.split(":", 1)[1].strip())
    except httpx.HTTPError as err:  # the server went away under the stream: say so
        events.append(f"error: {err}")
    finally:
        done.set()


def _open(site: Site, token: str) -> tuple[list[str], threading.Event]:
    events: list[str] = []
    done = threading.Event()
    threading.Thread(target=_read_events, args=(site.client, token, events, done), daemon=True).start()
    return events, done


def _busy_road(site: Site, stop: threading.Event) -> None:
    while not stop.is_set():
        site.client.post("/api/v1/poles/NH-001/dim", headers=site.auth("admin"), json={"level": 50})
        stop.wait(0.05)


def test_a_revoked_tokens_stream_is_closed(site: Site, platform: Any) -> None:
    token, record = site.app.state.ctx.tokens.create("viewer", "to-revoke")
    events, done = _open(site, token)
    stop = threading.Event()
    busy = threading.Thread(target=_busy_road, args=(site, stop), daemon=True)
    busy.start()
    try:
        while "hello" not in events:
            assert not done.wait(0.05), "the stream did not open"
        r = site.client.delete(f"/api/v1/tokens/{record['id']}", headers=site.auth("admin"))
        assert r.status_code == 200
        assert done.wait(20), "the stream stayed open after its token was revoked"
    finally:
        stop.set()
        busy.join(5)
    assert events[-1] == "bye"
    metrics = site.client.get("/metrics", headers=site.auth("viewer")).text
    assert 'streetlight_api_streams_closed_total{reason="token_revoked"} 1.0' in metrics


def test_an_expired_tokens_stream_is_closed(site: Site) -> None:
    token, _ = site.app.state.ctx.tokens.create("viewer", "short", expires_in_s=2.0)
    events, done = _open(site, token)
    assert done.wait(25), "the stream stayed open after its token expired"
    assert events[0] == "hello" and events[-1] == "bye"
    assert site.client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_one_token_holds_a_bounded_number_of_streams(make_site: Any) -> None:
    site = make_site(streams_per_token=2)
    token = site.tokens["viewer"]
    opened = [_open(site, token) for _ in range(2)]
    for events, done in opened:
        while "hello" not in events:
            assert not done.wait(0.05)
    third = site.client.get("/api/v1/stream", headers=site.auth("viewer"), params={"max_events": 1})
    assert third.status_code == 429 and "live streams" in third.json()["detail"]
    # another token is not affected
    other = site.client.get("/api/v1/stream", headers=site.auth("operator"), params={"max_events": 1})
    assert other.status_code == 200
    # revoking the token ends both streams, and their places are given back
    ctx = site.app.state.ctx
    viewer = ctx.tokens.authenticate(token)
    assert ctx.streams[viewer.token_id] == 2
    site.client.delete(f"/api/v1/tokens/{viewer.token_id}", headers=site.auth("admin"))
    for events, done in opened:
        assert done.wait(20) and events[-1] == "bye"
    assert viewer.token_id not in ctx.streams
