"""Every alert type of the protocol, end to end: a short scenario per type against the real
broker, InfluxDB, gateway and controller, judged by what the platform publishes.

The library's other scenarios cover lamp_failure, cable_fault, comm_loss, leakage, day_burning,
detector_stuck and clock_skew (``streetlight scenario run all``); these four, 30-40 minutes of
road time each, cover the rest: a driver off its curve, a feeder's breaker, a feeder's supply
out of the 220 V band and a lamp going off and on by itself.
"""

from __future__ import annotations

import pytest

from runtime.scenario_check import run_check

pytestmark = [pytest.mark.servers, pytest.mark.slow]


@pytest.mark.parametrize(
    ("name", "alert", "where"),
    [
        ("driver-fault", "driver_fault", {"pole": "NH-033"}),
        ("feeder-outage", "feeder_outage", {"pole": None, "feeder": "C1-L2"}),
        ("voltage-sag", "voltage_out_of_band", {"pole": None, "feeder": "C2-L2"}),
        ("cycling", "cycling", {"pole": "NH-075"}),
    ],
)
def test_each_alert_type_is_found_where_it_is_and_nowhere_else(name: str, alert: str,
                                                                where: dict[str, str | None]) -> None:
    result = run_check(name)
    out = result.verdict
    assert out.passed, (out.rows, [f.to_dict() for f in out.false_alarms])
    assert not out.false_alarms
    row = next(r for r in out.rows if r.fault == alert)
    assert row.ok and row.reported == row.expected
    assert result.readings.accounted, result.readings.line()  # every published reading stored or counted
    # one fault, opened once, at the place the crew must go to
    opened = [a for a in result.alerts if a["state"] == "open"]
    assert {a["fault_id"] for a in opened} == {opened[0]["fault_id"]}
    first = opened[0]
    assert first["type"] == alert
    assert all(first.get(k) == v for k, v in where.items()), first
    fault = result.scenario.faults[0]
    assert first["first_seen_ts"] >= fault.at_ms  # never before the fault
    if fault.until_ms is not None:  # the supply came back: the fault resolves, once
        resolved = [a for a in result.alerts if a["state"] == "resolved"]
        assert [a["fault_id"] for a in resolved] == [first["fault_id"]]
