"""Multi-function poles and cabinets on the dashboard, live stack in headless Chromium: a hung
camera flagged on the road drawing and named in the crews' list, the cabinets drawn with a breaker
per feeder, and the camera power-cycled from the pole's panel by a maintenance crew until it is
back and its fault resolves."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from api.platform import FaultView

from .conftest import Page, Stack, wait_until

pytestmark = [pytest.mark.servers, pytest.mark.slow]


def hung_camera(stack: Stack) -> list[FaultView]:
    return [f for f in stack.open_faults() if f.type == "equipment_fault" and f.pole == "NH-024"]


def test_a_crew_power_cycles_a_hung_camera_from_the_dashboard(stack: Stack,
                                                              open_dashboard: Callable[..., Page]) -> None:
    wait_until(lambda: hung_camera(stack), 90, "the hung camera's equipment fault on NH-024", every_s=0.5)
    d = open_dashboard("maintenance")
    page = d.page
    # flagged on the road drawing, and the crews' list names the equipment to fix
    page.locator('#road rect.eq-mark[data-pole="NH-024"][data-type="equipment_fault"]').wait_for(timeout=10000)
    card = page.locator(".fault-card", has_text="equipment fault").filter(has_text="NH-024")
    assert "cam-1" in card.locator(".equip").inner_text() and "camera" in card.inner_text()
    # the cabinets with their breakers, closed as the cabinets report them
    page.locator('#road rect.breaker[data-breaker="closed"]').nth(3).wait_for(timeout=15000)
    assert page.locator("#road rect.breaker").count() == 4
    # the pole's equipment: the camera powered but hung, with a power-cycle button
    page.locator('circle.pole[data-pole="NH-024"]').click()
    cam = page.locator('#pole-equipment li[data-port="cam-1"]')
    cam.wait_for(timeout=10000)
    assert "hung" in (cam.get_attribute("data-state") or ""), cam.inner_text()
    d.shot("browser-equipment-hung-camera")
    cam.locator("button.power-cycle").click()
    page.locator('#pole-msg[data-power-cycle="acked"]').wait_for(timeout=30000)
    assert "power-cycled" in page.locator("#pole-msg").inner_text()
    # the camera boots afresh: its link is up, its fault resolves, and the panel shows it on
    wait_until(lambda: not hung_camera(stack), 60, "the equipment fault on NH-024 to resolve", every_s=0.5)
    page.locator('#pole-equipment li[data-port="cam-1"][data-state="on"]').wait_for(timeout=30000)
    page.locator("#pole-audit li", has_text="power cycle pole NH-024 port cam-1").first.wait_for(timeout=10000)
    assert "maintenance on duty" in page.locator("#pole-audit").inner_text()
    d.shot("browser-equipment-power-cycle")
    d.assert_clean()
