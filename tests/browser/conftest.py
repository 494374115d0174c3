"""The dashboard in headless Chromium on the live stack, started as ``make demo`` starts it: real
Mosquitto and InfluxDB on free loopback ports, gateway, controller and API in one process over a
temporary data folder, and a simulated road on its own clock (a night at ×30, a lamp failing, a
cable cut and a camera hanging early on).

One stack per test session (it costs seconds to start); each test opens its own page and leaves a
screenshot under ``tests/artifacts/``. Every page records console errors, page errors, failed
requests and requests leaving the API, which each test asserts are none.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.app import ApiOptions, create_app
from api.auth import ROLES
from api.platform import FaultView
from api.serve import served
from ops.servers import InfluxServer, MosquittoServer, free_port
from runtime.live_platform import LivePlatform
from simulators.runner import SimulationThread
from simulators.scenario import load_scenario
from streetlight.settings import Settings

from ..waiting import wait_until  # noqa: F401  (the tests import it from here too)

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 2}
DESK = {"viewport": {"width": 1440, "height": 1000}}

SCENARIO = {
    "name": "browser-night",
    "description": "An evening on the reference road for the dashboard's tests: a lamp fails, a cable is cut, "
                   "a camera hangs.",
    "road": "nanhuan-1",
    "start": "2026-11-23 19:30",
    "duration": "10h",
    "speed": 30,
    "seed": 2026,
    "report_interval_s": 10,
    "faults": [
        {"type": "lamp_failure", "pole": "NH-012", "at": "+2m"},
        {"type": "cable_cut", "span": ["NH-061", "NH-060"], "at": "+3m"},
        {"type": "equipment_hung", "pole": "NH-024", "port": "cam-1", "at": "+2m"},
    ],
    "expected": [
        {"type": "lamp_failure", "pole": "NH-012", "within_reports": 3},
        {"type": "cable_fault", "span": ["NH-061", "NH-060"], "within_reports": 4},
        {"type": "equipment_fault", "pole": "NH-024", "within_reports": 3},
    ],
}




@dataclass
class Stack:
    url: str
    tokens: dict[str, str]
    platform: LivePlatform
    road: str = "nanhuan-1"

    def open_faults(self) -> list[FaultView]:
        return [f for f in self.platform.faults(self.road) if f.state != "resolved"]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("browser")
    mq = MosquittoServer(name="mosquitto", port=free_port(), data_dir=tmp / "mosquitto").start()
    db = InfluxServer(name="influxd", port=free_port(), data_dir=tmp / "influxd").start()
    settings = Settings(mqtt_url=mq.url, influx_url=db.url, influx_db="streetlight", data_dir=tmp / "data")
    scenario_file = tmp / "browser-night.yaml"
    scenario_file.write_text(yaml.safe_dump(SCENARIO))
    scenario = load_scenario(str(scenario_file))
    platform = LivePlatform(settings, [scenario.road])
    platform.start()
    sim = SimulationThread(scenario, mqtt_url=mq.url, speed=scenario.speed).start()
    try:
        wait_until(lambda: platform.ready()["road_time"], 60, "the road's time (two thirds of its poles reporting)")
        app = create_app(platform, settings, tmp / "api.sqlite3",
                         ApiOptions(commands_per_minute=6000, command_burst=1000, deliver_webhooks=False))
        with served(app) as url:
            tokens = {role: app.state.ctx.tokens.create(role, f"{role} on duty")[0] for role in ROLES}
            s = Stack(url, tokens, platform)
            wait_until(lambda: {f.type for f in s.open_faults()} >= {"lamp_failure", "cable_fault"}, 90,
                       "the lamp failure and the cable fault to open")
            yield s
    finally:
        sim.stop_event.set()
        sim.join(30)
        platform.stop()
        mq.stop()
        db.stop()


@pytest.fixture(scope="module")  # one Playwright per module: another module may start its own after it
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (make install sets it up)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@dataclass
class Page:
    """A signed-in dashboard page and what went wrong on it."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def shot(self, name: str, full_page: bool = True) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def assert_clean(self) -> None:
        assert self.console_errors == [], self.console_errors
        assert self.failed == [], self.failed
        assert self.foreign == [], self.foreign


@pytest.fixture
def open_dashboard(stack: Stack, browser: Any) -> Iterator[Callable[..., Page]]:
    """``open_dashboard(role, phone=False)``: a new page signed in with a token of ``role``, the
    page's content security policy enforced."""
    contexts: list[Any] = []

    def open_(role: str = "operator", phone: bool = False) -> Page:
        ctx = browser.new_context(**(PHONE if phone else DESK))
        contexts.append(ctx)
        page = ctx.new_page()
        rec = Page(page)
        page.on("console", lambda m: rec.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: rec.console_errors.append(f"page error: {e}"))
        page.on("response", lambda r: rec.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        # the live stream is cut when the page closes: that is not a failure of the page
        page.on("requestfailed", lambda r: rec.failed.append(f"{r.failure} {r.url}")
                if "/api/v1/stream" not in r.url else None)
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(stack.url)
                   else (rec.foreign.append(r.request.url), r.abort()))
        page.goto(stack.url + "/")
        page.fill("#token", stack.tokens[role])
        button = page.locator("#login-form button[type=submit]")
        if phone:
            button.tap()  # a finger, not Enter in the field: the button itself must be reachable
        else:
            button.click()
        page.locator("circle.pole[data-state]").nth(92).wait_for(timeout=20000)
        page.locator("#live.on").wait_for(timeout=15000)
        return rec

    yield open_
    for ctx in contexts:
        ctx.close()
