"""The dashboard in headless Chromium on the live stack, started as ``make demo`` starts it: real
Mosquitto and InfluxDB on free loopback ports, then ``streetlight serve`` as its own processes (a
core process with the gateway and the controller, an API process, supervised by ``serve``) over a
temporary data folder, and a simulated road on its own clock beside it (a night at ×30, a lamp
failing, a cable cut and a camera hanging early on).

One stack per test session (it costs seconds to start); each test opens its own page and leaves a
screenshot under ``tests/artifacts/``. Every page records console errors, page errors, failed
requests and requests leaving the API, which each test asserts are none. The tests see the
platform only as the dashboard does: through its HTTP API.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.auth import ROLES
from api.platform import FaultView
from ops.servers import InfluxServer, MosquittoServer, free_port
from simulators.runner import SimulationThread
from simulators.scenario import load_scenario

from ..serving import Served, serve
from ..waiting import wait_until

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
    """The served platform as the tests read it: over its API, with a viewer's token."""

    served: Served
    tokens: dict[str, str]
    road: str = "nanhuan-1"

    @property
    def url(self) -> str:
        return self.served.url

    def get(self, path: str, **params: Any) -> Any:
        r = self.served.get(path, self.tokens["viewer"], **params)
        assert r.status_code == 200, (f"GET {path} {params}: {r.status_code} {r.text[:500]}"
                                      + (f"\n{self.served.logs()}" if r.status_code >= 500 else ""))
        return r.json()

    def road_now(self) -> int:
        """Road time, as the platform keeps it."""
        return int(self.get("/api/v1/clock", road=self.road)["now_ms"])

    def pole(self, pole: str) -> dict[str, Any]:
        return dict(self.get(f"/api/v1/poles/{pole}", road=self.road))

    def open_faults(self) -> list[FaultView]:
        return [FaultView.from_dict(f) for f in self.get("/api/v1/faults", road=self.road, open=True)["faults"]]

    def fault(self, fault_id: str) -> FaultView:
        return FaultView.from_dict(self.get(f"/api/v1/faults/{fault_id}"))

    def command(self, cmd_id: str) -> dict[str, Any]:
        return dict(self.get(f"/api/v1/commands/{cmd_id}"))

    def readings(self, pole: str, start_ms: int, end_ms: int, every_s: int) -> int:
        """How many ``every_s`` intervals of ``pole`` InfluxDB holds readings for."""
        return int(self.get(f"/api/v1/poles/{pole}/readings", road=self.road, start_ms=start_ms, end_ms=end_ms,
                            every_s=every_s)["count"])


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("browser")
    scenario_file = tmp / "browser-night.yaml"
    scenario_file.write_text(yaml.safe_dump(SCENARIO))
    scenario = load_scenario(str(scenario_file))
    mq = MosquittoServer(name="mosquitto", port=free_port(), data_dir=tmp / "mosquitto").start()
    db = InfluxServer(name="influxd", port=free_port(), data_dir=tmp / "influxd").start()
    sim: SimulationThread | None = None
    served: Served | None = None
    try:
        served = serve(tmp, mqtt_url=mq.url, influx_url=db.url, port=free_port(), roads=[scenario.road.id])
        # as ``up`` does: the road starts once the platform's API answers
        wait_until(lambda: served.answers("/healthz"), 90, "the API to answer", every_s=0.5)
        sim = SimulationThread(scenario, mqtt_url=mq.url, speed=scenario.speed).start()
        tokens = served.tokens({role: f"{role} on duty" for role in ROLES})
        s = Stack(served, tokens)
        wait_until(served.ready, 90, "the platform ready: the road's time (two thirds of its poles reporting)",
                   every_s=0.5)
        [core], [api] = served.pids("core"), served.pids("api")  # the API apart from ingest and control
        assert core != api != served.proc.pid, served.logs()
        wait_until(lambda: {f.type for f in s.open_faults()} >= {"lamp_failure", "cable_fault"}, 90,
                   "the lamp failure and the cable fault to open", every_s=0.5)
        yield s
    finally:
        if sim is not None:
            sim.stop_event.set()
            sim.join(30)
        try:
            if served is not None:
                rc = served.stop()
                assert rc == 0, f"streetlight serve ended with code {rc} on SIGINT\n{served.logs()}"
        finally:
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
