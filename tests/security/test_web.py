"""Finding 7, the browser part: the dashboard's security headers, and API docs without a CDN."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from .conftest import Site

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_every_answer_carries_the_security_headers(site: Site) -> None:
    for path, headers in (("/", {}), ("/healthz", {}), ("/api/v1/poles", site.auth("viewer")),
                          ("/api/v1/poles", {}), ("/static/app.js", {})):
        r = site.client.get(path, headers=headers)
        assert r.headers["x-frame-options"] == "DENY", path
        assert r.headers["x-content-type-options"] == "nosniff", path
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp, path


def test_no_page_loads_anything_from_elsewhere(site: Site) -> None:
    assert site.client.get("/docs").status_code == 404  # the CDN-loading page is gone
    assert site.client.get("/openapi.json").json()["info"]["title"]
    page = site.client.get("/").text
    assert "http://" not in page and "https://" not in page


def test_the_dashboard_works_under_its_content_security_policy(site: Site) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make install sets it up)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()  # the policy enforced: no bypass
            console: list[str] = []
            errors: list[Any] = []
            page.on("console", lambda m: console.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(site.url + "/")
            page.fill("#token", site.tokens["viewer"])
            page.click("#login-form button[type=submit]")
            page.locator("circle.pole[data-state]").nth(92).wait_for(timeout=15000)
            page.wait_for_selector("#live.on", timeout=10000)
            page.close()
        finally:
            browser.close()
    assert errors == []
    assert not [m for m in console if "Content Security Policy" in m], console
