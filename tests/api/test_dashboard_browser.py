"""The dashboard in headless Chromium: 93 poles drawn, a pole dimmed from its slider changes colour,
an injected fault appears in the crews' list. Saves a screenshot under tests/artifacts/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from api.serve import served

from .conftest import ARTIFACTS

# the page on the in-memory road; on the live stack the browser tests start it as `make demo` does
pytestmark = pytest.mark.parametrize("platform", ["memory"], indirect=True)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make install sets it up)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_dashboard_shows_the_road_dims_a_pole_and_lists_a_fault(app: FastAPI, platform: Any, inject_fault: Any,
                                                                 browser: Any, road: Any) -> None:
    token = app.state.ctx.tokens.create("admin", "browser")[0]
    blocked: list[str] = []
    with served(app) as url:
        # this test's waits evaluate strings, which the page's content security policy forbids;
        # tests/security/test_web.py shows the dashboard working under that policy
        page = browser.new_page(viewport={"width": 1440, "height": 1000}, bypass_csp=True)
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(url)
                   else (blocked.append(r.request.url), r.abort()))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        page.fill("#token", token)
        page.click("#login-form button[type=submit]")
        page.wait_for_function("document.querySelectorAll('circle.pole[data-state]').length === 93", timeout=15000)
        assert page.locator("#pole-count").inner_text() == f"{len(road.poles)} poles"
        assert page.locator("#road .seg-label").all_text_contents() == [s.id for s in road.segments]
        page.wait_for_selector("#live.on", timeout=10000)  # the live stream is connected

        mark = page.locator('circle.pole[data-pole="NH-047"]')
        before = (mark.get_attribute("data-state"), mark.evaluate("e => getComputedStyle(e).fill"))
        assert before[0] == "lit"
        mark.click()
        page.wait_for_function("document.getElementById('pole-id').textContent === 'NH-047'")
        slider = page.locator("#level")
        box = slider.bounding_box()
        slider.click(position={"x": box["width"] * 0.3, "y": box["height"] / 2})
        page.wait_for_function(
            "document.querySelector('circle.pole[data-pole=\"NH-047\"]').dataset.state === 'dimmed'", timeout=10000)
        # the fill fades over 0.3 s: wait for the new colour rather than read it mid-transition
        page.wait_for_function(
            "([c]) => getComputedStyle(document.querySelector('circle.pole[data-pole=\"NH-047\"]')).fill !== c",
            arg=[before[1]], timeout=5000)
        level = platform.twin("nanhuan-1", "NH-047")["level"]
        assert 20 <= level <= 40, level

        fid = inject_fault("nanhuan-1", "NH-060", type="lamp_failure", severity="critical")
        item = page.locator(f'li.fault-card[data-fault="{fid}"]')
        item.wait_for(timeout=10000)
        assert "pole NH-060" in item.locator(".where").inner_text()
        page.wait_for_function(
            "document.querySelector('circle.pole[data-pole=\"NH-060\"]').dataset.state === 'fault'", timeout=10000)
        item.click()
        page.wait_for_function("document.getElementById('pole-id').textContent === 'NH-060'")
        page.wait_for_timeout(300)  # let the chart and the pulse ring paint before the picture
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        assert errors == []
        page.close()  # ends the live stream before the server stops
    assert blocked == []  # nothing outside this API was fetched
