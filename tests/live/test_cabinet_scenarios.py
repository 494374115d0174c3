"""Distribution cabinets (protocol 1.1) against the whole platform: an open breaker named from the
cabinet's own report, a silent cabinet told apart from its feeders losing supply, and an illegal
tap found from the feeder's energy balance; each by what the platform publishes, nothing else."""

from __future__ import annotations

import pytest

from runtime.scenario_check import run_check

pytestmark = [pytest.mark.servers, pytest.mark.slow]


@pytest.mark.parametrize(
    ("name", "alert", "where"),
    [
        ("breaker-open", "feeder_outage", {"pole": None, "feeder": "C2-L1"}),
        ("cabinet-silent", "comm_loss", {"pole": None, "feeder": None}),
        ("illegal-tap", "energy_imbalance", {"pole": None, "feeder": "C2-L2"}),
    ],
)
def test_a_cabinets_fault_is_found_at_the_cabinet_and_nowhere_else(name: str, alert: str,
                                                                    where: dict[str, str | None]) -> None:
    result = run_check(name)
    out = result.verdict
    assert out.passed and not out.false_alarms, (out.rows, [f.to_dict() for f in out.false_alarms])
    assert result.readings.accounted, result.readings.line()
    opened = [a for a in result.alerts if a["state"] == "open"]
    assert {a["fault_id"] for a in opened} == {opened[0]["fault_id"]}  # one fault, opened once
    first = opened[0]
    assert first["type"] == alert and all(first.get(k) == v for k, v in where.items()), first
    assert first["first_seen_ts"] >= result.scenario.faults[0].at_ms
    if name == "breaker-open":  # the cabinet's word, not the poles' silence: within a report or two
        assert first["evidence"].get("breaker") == "open" and out.rows[0].delay_reports <= 2
    if name == "cabinet-silent":  # the cabinet's modem, not its 46 poles' supply
        assert first["evidence"]["cabinet"] == "C1" and "not the supply" in first["summary"]
    if name == "illegal-tap":
        ev = first["evidence"]
        assert ev["gap_wh"] > ev["allowance_wh"] > 0
        # one alert when it opens: its summary names no figure that changes with every report
        assert len([a for a in result.alerts if a["fault_id"] == first["fault_id"]]) <= 2
