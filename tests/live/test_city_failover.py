"""A small synthetic city as processes by role, one process of each role killed in turn.

The same run as ``streetlight bench failover`` (:func:`benchmarks.failover.run_city`), on a city
small enough for CI: three roads of twelve poles reporting every 4 s; ``streetlight serve
--processes`` with two gateways, two controllers and two API processes on real Mosquitto,
InfluxDB and PostgreSQL. Judged from outside the platform: readings the poles published against
InfluxDB, commands and acks on the broker, faults in the state database, the API's one port.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.failover import CityPlan, interleaved, run_city

pytestmark = pytest.mark.servers


def test_killing_a_gateway_a_controller_and_an_api_process_loses_and_doubles_nothing(tmp_path: Path) -> None:
    plan = CityPlan(roads=3, poles=12, report_s=4, warm_s=20, between_s=20, tail_s=20)
    report = run_city(plan, tmp_path, say=print)
    for row in report.rows():
        print(row)
    assert report.problems() == []
    # what the promises above rest on, so that a run that judged nothing cannot pass
    assert [k.role for k in report.kills] == ["gateway", "controller", "api"]
    assert all(k.restarted_s is not None for k in report.kills), report.kills  # the supervisor restarted each
    assert sum(report.published.values()) >= plan.roads * plan.poles * 10
    assert len(report.senders) >= 2  # the controller that took over sent commands of its own
    assert len(report.injected) == 4 and report.faults_exactly_once
    assert report.dim_poles == plan.poles == report.dim_acked
    assert report.probes > 0 and report.probe_failures <= 4  # a request cut by the kill may fail once


def test_the_judge_sees_two_controllers_commanding_one_pole() -> None:
    # a: first sender; b took over; then a sends again to p1: two deciders for p1 at once
    sent = [(1, "r/p1", "aaaa-1"), (2, "r/p2", "aaaa-2"), (3, "r/p1", "bbbb-1"), (4, "r/p1", "aaaa-3"),
            (5, "r/p2", "bbbb-2")]
    order, bad = interleaved(sent)
    assert order == ["aaaa", "bbbb"] and bad == ["r/p1"]
    assert interleaved(sent[:3] + sent[4:]) == (["aaaa", "bbbb"], [])
