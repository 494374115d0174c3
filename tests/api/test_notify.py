"""Fault alerts to crews' webhooks: generic JSON, DingTalk (signed) and WeCom; retries; no secret in logs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from api.formats import dingtalk, generic, location, wecom
from api.notify import mask_url
from ops.servers import free_port

from .conftest import Api

DING_SECRET = "SECd1n9-s3cret"
TOKEN_IN_URL = "robot-access-t0ken"


class Receiver:
    def __init__(self) -> None:
        self.hits: list[tuple[str, dict[str, Any]]] = []
        self.answers: dict[str, list[tuple[int, dict[str, Any]]]] = {}  # path -> queued answers
        self.lock = threading.Lock()

    def wait(self, path: str, n: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                got = [b for p, b in self.hits if p.startswith(path)]
            if len(got) >= n:
                return got
            time.sleep(0.02)
        raise AssertionError(f"{path}: {len(got)} of {n} deliveries")


@pytest.fixture
def receiver() -> Iterator[tuple[str, Receiver]]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with rec.lock:
                rec.hits.append((self.path, body))
                queue = rec.answers.get(self.path.split("?")[0], [])
                status, answer = queue.pop(0) if queue else (200, {"errcode": 0, "errmsg": "ok"})
            if self.path.startswith("/ding"):
                q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                want = base64.b64encode(hmac.new(DING_SECRET.encode(), f"{q['timestamp']}\n{DING_SECRET}".encode(),
                                                 hashlib.sha256).digest()).decode()
                if q.get("sign") != want or q.get("access_token") != TOKEN_IN_URL:
                    status, answer = 200, {"errcode": 310000, "errmsg": "sign not match"}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_port}", rec
    server.shutdown()
    server.server_close()


def test_alerts_reach_every_kind_of_webhook_with_retries(api: Api, receiver: tuple[str, Receiver],
                                                         inject_fault: Any, caplog: pytest.LogCaptureFixture) -> None:
    url, rec = receiver
    rec.answers["/wecom"] = [(500, {}), (200, {"errcode": 93000, "errmsg": "invalid webhook url"})]
    hooks = {}
    for name, kind, path, secret in (("generic", "json", "/hook", None),
                                     ("ding", "dingtalk", f"/ding?access_token={TOKEN_IN_URL}", DING_SECRET),
                                     ("wecom", "wecom", f"/wecom?key={TOKEN_IN_URL}", None)):
        r = api.post("/api/v1/webhooks", role="admin",
                     json={"name": name, "kind": kind, "url": url + path, "secret": secret})
        assert r.status_code == 201, r.text
        assert TOKEN_IN_URL not in r.text and DING_SECRET not in r.text
        hooks[kind] = r.json()["id"]

    caplog.set_level(logging.DEBUG)
    fid = inject_fault("nanhuan-1", "NH-071", severity="critical")
    body = rec.wait("/hook", 1)[0]
    assert body["fault"]["fault_id"] == fid and "pole NH-071" in body["location"]
    ding = rec.wait("/ding", 1)[0]
    assert ding["msgtype"] == "markdown" and fid in ding["markdown"]["text"]
    wec = rec.wait("/wecom", 3)  # HTTP 500, then errcode 93000, then accepted
    assert wec[-1]["msgtype"] == "markdown" and "NH-071" in wec[-1]["markdown"]["content"]

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        log = api.get(f"/api/v1/webhooks/{hooks['wecom']}/deliveries", role="admin").json()
        if len(log) == 3:
            break
        time.sleep(0.05)
    assert [(d["attempt"], d["ok"]) for d in reversed(log)] == [(1, False), (2, False), (3, True)]
    assert log[-1]["error"] == "HTTP 500" and "errcode 93000" in log[-2]["error"]
    ding_log = api.get(f"/api/v1/webhooks/{hooks['dingtalk']}/deliveries", role="admin").json()
    assert ding_log[0]["ok"] and ding_log[0]["fault_id"] == fid

    listed = api.get("/api/v1/webhooks", role="admin")
    assert TOKEN_IN_URL not in listed.text and DING_SECRET not in listed.text
    assert any("key=***" in h["url"] for h in listed.json())
    everything = caplog.text + json.dumps(log)
    assert TOKEN_IN_URL not in everything and DING_SECRET not in everything
    assert "attempt 1 failed" in caplog.text


def test_min_severity_filters_and_minor_faults_are_skipped(api: Api, receiver: tuple[str, Receiver],
                                                           inject_fault: Any) -> None:
    url, rec = receiver
    api.post("/api/v1/webhooks", role="admin", json={"name": "crit", "kind": "json", "url": url + "/crit",
                                                     "min_severity": "critical"})
    api.post("/api/v1/webhooks", role="admin", json={"name": "all", "kind": "json", "url": url + "/all"})
    inject_fault("nanhuan-1", "NH-001", severity="minor")
    critical = inject_fault("nanhuan-1", "NH-002", severity="critical")
    assert len(rec.wait("/all", 2)) == 2
    got = rec.wait("/crit", 1)
    assert [b["fault"]["fault_id"] for b in got] == [critical]


def test_message_formats_name_the_location() -> None:
    fault = {"fault_id": "F-000123", "type": "cable_fault", "severity": "critical", "state": "open",
             "road": "nanhuan-1", "pole": None, "span": ["NH-046", "NH-047"], "segment": "S2", "side": "N",
             "chainage_m": 1592.5, "lat": 31.7182, "lon": 119.5603, "feeder": "C1-L2",
             "summary": "Supply lost between NH-046 and NH-047"}
    where = location(fault)
    assert where == "segment S2, north side, K1+592, between poles NH-046 and NH-047, feeder C1-L2"
    assert where in generic(fault)["text"]
    assert where in dingtalk(fault)["markdown"]["text"] and dingtalk(fault)["markdown"]["title"]
    assert "CRITICAL" in wecom(fault)["markdown"]["content"]


@pytest.mark.parametrize("url, masked", [
    ("https://oapi.dingtalk.com/robot/send?access_token=abc", "https://oapi.dingtalk.com/robot/send?access_token=***"),
    ("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k1&x=1", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***&x=1"),
    ("https://user:pw@example.org/h", "https://***@example.org/h"),
])
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_unusable_webhook_url_is_refused_when_configured(api: Api) -> None:
    # a label over 63 characters: refused by the schema's pattern, and said in words
    r = api.post("/api/v1/webhooks", role="admin", json={"name": "x", "kind": "json", "url": "http://" + "a" * 70 + ".org/h"})
    assert r.status_code == 422 and "labels of at most 63" in r.json()["detail"]
    assert "^https" not in r.json()["detail"]
