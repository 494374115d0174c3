"""Finding 1: a webhook aimed inside the site (server-side request forgery).

The attack: an admin token (stolen, or a careless admin) points a webhook at an internal service
such as InfluxDB on loopback, or a cloud metadata address; the next alert makes the platform send
a request there, and the delivery log's errors tell open, closed and HTTP ports apart. Here the
internal service is a listener this test starts on 127.0.0.1: no request may reach it, unless
the site's allow-list names it on purpose.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from api.app import ApiOptions
from api.notify import AllowList, RefusedTarget, resolve_target
from ops.servers import free_port

from .conftest import Listener, Site


def _deliveries(site: Site, hook_id: str, n: int, timeout_s: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        log = site.client.get(f"/api/v1/webhooks/{hook_id}/deliveries", headers=site.auth("admin")).json()
        if len(log) >= n or time.monotonic() > deadline:
            return log  # type: ignore[no-any-return]
        time.sleep(0.05)


def _internal_urls(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/query?q=CREATE+DATABASE+pwned",
        f"http://localhost:{port}/hook",
        f"http://[::1]:{port}/hook",
        f"http://2130706433:{port}/hook",  # 127.0.0.1 as one number
        f"http://0x7f.1:{port}/hook",
        f"http://[::ffff:127.0.0.1]:{port}/hook",
        f"http://0.0.0.0:{port}/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://192.168.1.1/hook",
        "http://100.64.0.1/hook",
        "http://[fd00::1]/hook",
    ]


def test_internal_webhook_targets_are_refused_and_nothing_reaches_them(site: Site, listener: Listener) -> None:
    for url in _internal_urls(listener.port):
        r = site.client.post("/api/v1/webhooks", headers=site.auth("admin"),
                             json={"name": "probe", "kind": "json", "url": url})
        assert r.status_code == 422, (url, r.status_code, r.text)
        assert "internal address" in r.json()["detail"] or "does not resolve" in r.json()["detail"], url
    assert site.client.get("/api/v1/webhooks", headers=site.auth("admin")).json() == []
    # the refusals are in the audit log, with the URL masked
    refused = site.client.get("/api/v1/audit", headers=site.auth("viewer"),
                              params={"action": "add_webhook", "result": "rejected", "limit": 100}).json()
    assert refused["count"] == len(_internal_urls(listener.port))
    assert listener.count() == 0


def test_a_stored_internal_webhook_is_refused_at_delivery(site: Site, listener: Listener, platform: Any) -> None:
    # a webhook written before these checks existed (or straight into the file) still cannot be used
    store = site.app.state.store
    with store.tx() as db:
        db.execute("INSERT INTO webhooks VALUES ('wh_old', 'old', 'json', ?, NULL, 'minor', 0)",
                   (f"http://127.0.0.1:{listener.port}/query?q=CREATE+DATABASE+pwned",))
    platform.inject_fault("nanhuan-1", type="lamp_failure", pole="NH-010", severity="critical")
    log = _deliveries(site, "wh_old", 1)
    assert log and not log[0]["ok"] and log[0]["error"].startswith("refused:"), log
    assert listener.count() == 0


def test_the_delivery_log_does_not_tell_ports_apart(make_site: Callable[..., Site], platform: Any) -> None:
    # allowed on purpose, so the attempts are made: a closed port and an open port that is not HTTP
    closed = free_port()
    raw = socket.socket()
    raw.bind(("127.0.0.1", 0))
    raw.listen(8)
    try:
        site = make_site(webhook_allow=["127.0.0.1"])
        ids = []
        for port in (closed, raw.getsockname()[1]):
            r = site.client.post("/api/v1/webhooks", headers=site.auth("admin"),
                                 json={"name": f"p{port}", "kind": "json", "url": f"http://127.0.0.1:{port}/x"})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        # the open port accepts and then closes at once (no HTTP answer)
        raw.settimeout(0.1)
        platform.inject_fault("nanhuan-1", type="lamp_failure", pole="NH-011", severity="critical")
        deadline = time.monotonic() + 20
        logs: list[list[dict[str, Any]]] = []
        while time.monotonic() < deadline:
            try:
                conn, _ = raw.accept()
                conn.close()
            except TimeoutError:
                pass
            logs = [site.client.get(f"/api/v1/webhooks/{i}/deliveries", headers=site.auth("admin")).json() for i in ids]
            if all(logs):
                break
        errors = {log[0]["error"] for log in logs}
        assert len(errors) == 1 and next(iter(errors)).startswith("no HTTP answer"), logs
    finally:
        raw.close()


def test_an_allow_list_can_name_an_internal_target(make_site: Callable[..., Site], listener: Listener,
                                                   platform: Any) -> None:
    site = make_site(webhook_allow=["127.0.0.1/32"])
    r = site.client.post("/api/v1/webhooks", headers=site.auth("admin"),
                         json={"name": "lan", "kind": "json", "url": f"http://127.0.0.1:{listener.port}/hook"})
    assert r.status_code == 201, r.text
    # still only what is named: localhost resolves to the same address but ::1 is not listed
    r = site.client.post("/api/v1/webhooks", headers=site.auth("admin"),
                         json={"name": "v6", "kind": "json", "url": f"http://[::1]:{listener.port}/hook"})
    assert r.status_code == 422
    platform.inject_fault("nanhuan-1", type="lamp_failure", pole="NH-012", severity="critical")
    log = _deliveries(site, site.client.get("/api/v1/webhooks", headers=site.auth("admin")).json()[0]["id"], 1)
    assert log and log[0]["ok"], log
    assert listener.count() == 1 and listener.hits[0][1] == "/hook"


def test_a_name_that_changes_its_answer_is_checked_again_before_delivery(make_site: Callable[..., Site],
                                                                         listener: Listener, platform: Any) -> None:
    # DNS rebinding: public when configured, loopback when used; the delivery checks again and
    # posts to the address it checked, so the change cannot reach the listener
    answers = iter([["93.184.216.34"]] + [["127.0.0.1"]] * 20)
    site = make_site(ApiOptions(webhook_attempts=1, webhook_backoff_s=0.01, resolve=lambda host, port: next(answers)))
    r = site.client.post("/api/v1/webhooks", headers=site.auth("admin"),
                         json={"name": "rebind", "kind": "json", "url": f"http://crew.example:{listener.port}/hook"})
    assert r.status_code == 201, r.text
    platform.inject_fault("nanhuan-1", type="lamp_failure", pole="NH-013", severity="critical")
    log = _deliveries(site, r.json()["id"], 1)
    assert log and log[0]["error"].startswith("refused:") and "127.0.0.1" in log[0]["error"], log
    assert listener.count() == 0


@pytest.mark.parametrize("answers", [["8.8.8.8", "127.0.0.1"], ["::1"], ["169.254.169.254"]])
def test_every_address_of_a_name_must_be_outside(answers: list[str]) -> None:
    with pytest.raises(RefusedTarget):
        resolve_target("https://crew.example/hook", AllowList(), resolve=lambda host, port: answers)
