"""A feeder's metered energy against what its poles report (protocol 1.1 cabinets).

The simulated road's poles and cabinets feed the controller directly (no broker): the cable-loss
model keeps a healthy feeder inside the allowance, an illegal tap takes its feeder out of it, and
a gap in a pole's reports restarts the window instead of counting its unreported draw as theft.
"""

from __future__ import annotations

import numpy as np

from controller.engine import Controller
from controller.faults.cabinets import BalanceLimits
from simulators.encode import Encoder
from simulators.engine import RoadSim
from streetlight.protocol import parse_cabinet_telemetry, parse_telemetry
from streetlight.registry import load_road

START = 1_763_895_600_000  # 2026-11-23 19:00 in Changzhou
LIMITS = BalanceLimits(min_window_s=600)


def run(minutes: int, tap: tuple[str, float, int] | None = None, mute: tuple[str, int, int] | None = None,
        ) -> tuple[Controller, RoadSim, list, list]:
    road = load_road("nanhuan-1")
    sim = RoadSim(road, START, seed=5, heartbeat_required=False)
    enc = Encoder(sim, vehicle_events=False, pedestrian_events=False)
    ctl = Controller(road)
    ctl.cabinets.balance.limits = LIMITS  # a shorter window than a night's 20 minutes: a quicker test
    opened, changes = [], []
    fids = [f.id for f in road.feeders]
    for step in range(1, minutes * 6 + 1):
        t = START + step * 10_000
        if tap is not None and step == tap[2]:
            sim.cabinets.tap_w[fids.index(tap[0])] = tap[1]
        for m in enc.step(sim.step(t)):
            if m.kind == "telemetry":
                pid = road.poles[m.pole].id
                if mute is None or pid != mute[0] or not mute[1] <= step < mute[2]:
                    ctl.on_telemetry(pid, parse_telemetry(m.payload))
        for k, _topic, payload in sim.cabinets.step(t):
            ctl.on_cabinet(sim.cabinets.ids[k], parse_cabinet_telemetry(payload))
        seen = {o.fault_id for o in opened}
        faults = ctl.tick(t).faults
        changes += faults
        opened += [f for f in faults if f.state == "open" and f.fault_id not in seen]
    return ctl, sim, opened, changes


def test_a_healthy_road_stays_inside_the_cable_loss_allowance():
    ctl, _, opened, _ = run(16)
    assert [f for f in opened if f.type == "energy_imbalance"] == []
    for fid, b in ctl.cabinets.balance.feeders.items():
        assert b.metered_wh > 500, fid  # judged: a real window
        loss = (b.metered_wh - b.reported_wh) / b.metered_wh
        # the cable's loss is there (the meter counts more than the poles) and under the allowance
        assert 0.002 < loss < LIMITS.allowance_fraction, (fid, loss)


def test_an_illegal_tap_is_an_energy_imbalance_on_its_feeder_alone():
    _, _, opened, changes = run(20, tap=("C2-L2", 900.0, 30))
    found = [f for f in opened if f.type == "energy_imbalance"]
    assert [(f.feeder, f.cabinet, f.pole, f.severity) for f in found] == [("C2-L2", "C2", None, "major")]
    f = found[0]
    assert f.evidence["gap_wh"] > f.evidence["allowance_wh"] and "illegal tap" in f.summary
    # about the tap's 900 W over the time it has been on, of the window's length
    assert 200 < f.evidence["mean_unaccounted_w"] < 900
    # the fault is published when it opens, not again on every report as its figures move
    assert [x.fault_id for x in changes if x.type == "energy_imbalance"] == [f.fault_id]


def test_a_pole_gone_quiet_restarts_its_feeders_window_instead_of_looking_like_theft():
    pole = "NH-070"  # on C2-L2
    ctl, _, opened, _ = run(20, mute=(pole, 30, 60))
    assert [f for f in opened if f.type == "energy_imbalance"] == []
    b = ctl.cabinets.balance.feeders[ctl.road.pole(pole).feeder]
    assert b.start_ts >= START + 60 * 10_000  # restarted when the pole came back
    assert np.isfinite(b.reported_wh) and b.reported_wh > 0
