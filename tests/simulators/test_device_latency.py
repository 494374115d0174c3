"""Poles act on a command when it arrives, after their link's delay, not at their next report."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from simulators.device import LINKS, fixed_link
from simulators.engine import RoadSim
from simulators.runner import Simulation
from streetlight.protocol import parse_payload, pole_topic
from streetlight.registry import load_road

from .conftest import ROAD, write_scenario

START = 1_795_000_000_000  # a night in November 2026


@pytest.mark.parametrize("name", list(LINKS))
def test_link_draws_have_the_documented_median_and_p95(name: str) -> None:
    link = LINKS[name]
    rng = np.random.default_rng(5)
    draws = np.array([link.draw(rng) for _ in range(20_000)])
    assert abs(np.median(draws) / link.median_ms - 1) < 0.05
    assert abs(np.percentile(draws, 95) / link.p95_ms - 1) < 0.08
    again = np.random.default_rng(5)
    assert [link.draw(again) for _ in range(50)] == draws[:50].tolist()  # seeded: repeatable


def test_a_fixed_latency_is_exact_and_negative_is_refused() -> None:
    rng = np.random.default_rng(1)
    assert {fixed_link(250).draw(rng) for _ in range(20)} == {250}
    assert fixed_link(0).draw(rng) == 0
    with pytest.raises(ValueError):
        fixed_link(-1)


def test_energy_is_booked_at_the_level_in_force_on_each_side_of_a_command() -> None:
    road = load_road(ROAD)
    a = RoadSim(road, START, seed=3, heartbeat_required=False)
    b = RoadSim(road, START, seed=3, heartbeat_required=False)
    for sim in (a, b):
        sim.set_level(np.arange(sim.n), 100.0, 0, START)
        sim.commanded[:] = True
        sim.integrate_energy(START)
    e0 = a.energy.copy()
    a.step(START + 10_000)
    full = a.energy - e0  # ten seconds at 100 %
    b.integrate_energy(START + 2_000)
    b.set_level(np.arange(b.n), 0.0, 0, START + 2_000)  # a command two seconds into the step
    b.step(START + 10_000)
    part = b.energy - e0
    on = b.rated > 0
    # two seconds at full power and eight at standby, not a ramp spread over the whole step
    assert np.all(part[on] < 0.3 * full[on])
    assert np.all(part[on] > 0.15 * full[on])


@pytest.mark.servers
def test_a_command_is_acked_with_its_new_state_between_reports(broker, listener, tmp_path) -> None:
    sc = write_scenario(tmp_path, 'start: "2026-11-24 01:00"\nduration: 1h\n')
    latency_ms = 3_000
    sim = Simulation(sc, mqtt_url=broker.url, speed=20.0, heartbeat_required=False, link=fixed_link(latency_ms))
    sim.start()
    try:
        for _ in range(2):
            sim.step()
        sent_after = sim.now_ms
        listener.publish(pole_topic(ROAD, "NH-020", "cmd"),
                         orjson.dumps({"cmd_id": "now-1", "type": "dim", "issued_ts": sc.start_ms, "level": 35,
                                       "ramp_ms": 0}))

        def ack(got):
            return [parse_payload("ack", p) for t, p, _ in got if t == pole_topic(ROAD, "NH-020", "ack")]

        for _ in range(10):
            if ack(listener.drain()):
                break
            sim.step()
        assert listener.wait_for(lambda got: ack(got))
        a = ack(listener.drain())[0]
        assert a.ok and a.dim == 35
        assert a.ts >= sent_after + latency_ms  # the link's delay, on road time
        states = [parse_payload("state", p) for t, p, _ in listener.drain() if t == pole_topic(ROAD, "NH-020", "state")]
        assert any(s.ts == a.ts and s.dim == 35 for s in states)  # the State says so at once
    finally:
        sim.close()
