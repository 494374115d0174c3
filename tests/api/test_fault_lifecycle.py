"""The fault lifecycle through the API: every (from, to) pair a person can ask for, 200 or 409,
the same rule as the controller's book and the store (tests/controller/test_fault_lifecycle.py)."""

from __future__ import annotations

from typing import Any

import pytest

from controller.faults import lifecycle

from .conftest import Api

OPEN, ACK, RES = lifecycle.OPEN, lifecycle.ACKNOWLEDGED, lifecycle.RESOLVED
PATH = {ACK: "ack", RES: "resolve"}
ALLOWED = {(OPEN, ACK), (OPEN, RES), (ACK, RES)}


@pytest.mark.parametrize("frm", lifecycle.STATES)
@pytest.mark.parametrize("to", [ACK, RES])
def test_every_transition_through_the_api(api: Api, inject_fault: Any, frm: str, to: str) -> None:
    fid = inject_fault("nanhuan-1", "NH-030")
    if frm != OPEN:
        assert api.post(f"/api/v1/faults/{fid}/{PATH[frm]}", role="maintenance").status_code == 200
    r = api.post(f"/api/v1/faults/{fid}/{PATH[to]}", role="maintenance", json={"note": "n"})
    if (frm, to) in ALLOWED:
        assert r.status_code == 200, r.text
        assert r.json()["state"] == to
    else:
        assert r.status_code == 409, r.text
        assert f"is {frm}; it cannot become {to}" in r.json()["detail"]
        assert api.get(f"/api/v1/faults/{fid}").json()["state"] == frm  # refused: nothing changed
