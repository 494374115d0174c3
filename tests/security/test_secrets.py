"""Finding 6: webhook secrets shown and stored in the clear.

The attack: a webhook whose URL carries its secret in the path or in parameters such as
``apikey``, ``sig`` or ``signature`` came back verbatim from ``GET /webhooks`` and from the
viewer-readable ``GET /audit``; the SQLite file holding them was readable by every local user.
"""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Callable

import pytest

from .conftest import Listener, Site

PATH_SECRET = "T0A1B2C3D4/B9Z8Y7X6W5/q1w2e3r4t5y6u7i8o9p0a1s2"
SECRETS = ("apikey-V4lue", "sig-V4lue", "signature-V4lue", "client-s3cret", "DING-S3CRET-sign")


def test_secrets_are_masked_wherever_shown(make_site: Callable[..., Site], listener: Listener,
                                           caplog: pytest.LogCaptureFixture) -> None:
    site = make_site(webhook_allow=["127.0.0.1"])
    url = (f"http://127.0.0.1:{listener.port}/services/{PATH_SECRET}?apikey={SECRETS[0]}&sig={SECRETS[1]}"
           f"&signature={SECRETS[2]}&client_secret={SECRETS[3]}&channel=night")
    caplog.set_level(logging.DEBUG)
    r = site.client.post("/api/v1/webhooks", headers=site.auth("admin"),
                         json={"name": "crew", "kind": "dingtalk", "url": url, "secret": SECRETS[4]})
    assert r.status_code == 201, r.text
    shown = [r.text,
             site.client.get("/api/v1/webhooks", headers=site.auth("admin")).text,
             site.client.get("/api/v1/audit", headers=site.auth("viewer"), params={"limit": 1000}).text,
             caplog.text]
    for text in shown:
        for secret in (*SECRETS, "q1w2e3r4t5y6u7i8o9p0a1s2"):
            assert secret not in text
    listed = json.loads(shown[1])[0]
    assert "channel=night" in listed["url"] and "apikey=***" in listed["url"] and "/services/***" in listed["url"]


def test_the_api_file_is_readable_by_its_owner_only(site: Site) -> None:
    site.client.post("/api/v1/webhooks", headers=site.auth("admin"),
                     json={"name": "x", "kind": "json", "url": "https://8.8.8.8/hook", "secret": "s"})
    path = site.app.state.store.path
    for p in (path, path.with_name(path.name + "-wal")):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
