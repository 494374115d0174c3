"""Ground truth of a run: beside the recording, deterministic, and what really happened."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from simulators.electrical import driver_power_w
from simulators.engine import RoadSim
from simulators.errors import RecordingError
from simulators.runner import Simulation, run_simulation
from simulators.truth import TruthRecorder, read_truth, truth_path
from streetlight.cli import app
from streetlight.clock import parse_local
from streetlight.registry import load_road

from .conftest import write_scenario

ROAD = load_road("nanhuan-1")
FAULTY = """\
start: "2026-11-24 04:30"
duration: 6m
seed: 21
faults:
  - {type: cable_cut, span: [NH-030, NH-031], at: "+1m", until: "+3m"}
  - {type: lamp_failure, pole: NH-005, at: "+30s"}
  - {type: detector_stuck, pole: NH-050, at: "+10s"}
  - {type: reboot, pole: NH-090, at: "+2m"}
"""


def test_truth_path_sits_beside_the_recording(tmp_path):
    assert truth_path(tmp_path / "night.jsonl") == tmp_path / "night.truth.jsonl"
    assert truth_path("runs/a.rec") == truth_path("runs/a.rec.jsonl").with_name("a.rec.truth.jsonl")


@pytest.mark.servers
def test_one_seed_writes_one_truth_byte_for_byte_and_the_file_reads_back(broker, tmp_path):
    sc = write_scenario(tmp_path, FAULTY)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    run_simulation(sc, mqtt_url=broker.url, speed=None, record=a, heartbeat_required=False)
    run_simulation(sc, mqtt_url=broker.url, speed=None, record=b, heartbeat_required=False)
    ta, tb = truth_path(a), truth_path(b)
    assert ta.exists() and ta.read_bytes() == tb.read_bytes()
    other = write_scenario(tmp_path, FAULTY.replace("seed: 21", "seed: 22"), name="other")
    c = tmp_path / "c.jsonl"
    run_simulation(other, mqtt_url=broker.url, speed=None, record=c, heartbeat_required=False)
    assert truth_path(c).read_bytes() != ta.read_bytes()

    truth = read_truth(ta)
    assert truth.steps == 36 and truth.light_pct.shape == (36, 93)
    spans = {(f.type, f.label): f for f in truth.faults}
    cut = spans[("cable_cut", "NH-030/NH-031")]
    t0 = parse_local("2026-11-24 04:30")
    assert (cut.began_ms, cut.ended_ms) == (t0 + 60_000, t0 + 180_000)
    assert cut.target == "span" and cut.poles[0] == "NH-031" and cut.feeder == ROAD.pole("NH-031").feeder
    assert spans[("lamp_failure", "NH-005")].ended_ms is None
    # the poles behind the cut really were dark and drew nothing while it lasted
    dark = [ROAD.pole(p).index for p in cut.poles]
    during = (truth.t0_ms >= cut.began_ms) & (truth.t1_ms <= cut.ended_ms)
    assert during.sum() == 12
    assert (truth.power_w[np.ix_(during, dark)] == 0).all() and (truth.light_pct[np.ix_(during, dark)] == 0).all()
    lamp = ROAD.pole("NH-005").index
    after = truth.t0_ms >= spans[("lamp_failure", "NH-005")].began_ms
    assert (truth.light_pct[after, lamp] == 0).all() and (truth.power_w[after, lamp] > 0).all()  # standby
    # a stuck detector counts nothing, but the truth still has the vehicles that passed it
    stuck = ROAD.pole("NH-050").index
    assert truth.vehicles[:, stuck].sum() > 0


@pytest.mark.servers
def test_simulate_command_writes_the_truth_and_the_simulation_hands_it_over(broker, tmp_path):
    f = tmp_path / "cli.yaml"
    f.write_text('name: cli\nroad: nanhuan-1\nstart: "2026-11-24 02:00"\nduration: 1m\nseed: 4\n')
    rec = tmp_path / "out" / "night.jsonl"
    res = CliRunner().invoke(app, ["--mqtt-url", broker.url, "simulate", "--scenario", str(f), "--speed", "max",
                                   "--record", str(rec), "--standalone"])
    assert res.exit_code == 0, res.output
    on_disk = read_truth(tmp_path / "out" / "night.truth.jsonl")
    sc = write_scenario(tmp_path, 'start: "2026-11-24 02:00"\nduration: 1m\nseed: 4\n')
    sim = Simulation(sc, mqtt_url=broker.url, speed=None, heartbeat_required=False).start()
    while sim.step():
        pass
    sim.close()
    in_memory = sim.truth.truth()  # judges read this object in-process, no file needed
    assert np.array_equal(in_memory.light_pct, on_disk.light_pct)
    assert np.array_equal(in_memory.vehicles, on_disk.vehicles) and in_memory.steps == 6


def test_light_follows_ramps_exactly_and_power_follows_the_driver_curve():
    t = parse_local("2026-11-23 21:00")
    sim = RoadSim(ROAD, t, seed=3, report_interval_s=10, heartbeat_required=False)
    rec = TruthRecorder(ROAD)
    for _ in range(2):
        t += 10_000
        rec.add(sim.step(t).truth)
    sim.set_level(np.arange(93), 40.0, 20_000, t)  # 100 -> 40 % over 20 s
    sim.commanded[:] = True
    t_cmd = t
    sim.set_level(np.array([7]), 80.0, 0, t_cmd + 5_000)  # a second command mid-step
    for _ in range(3):
        t += 10_000
        rec.add(sim.step(t).truth)
        sim.apply_targets(t)
    truth = rec.truth()
    assert truth.light_pct[1, 0] == 100.0
    assert truth.light_pct[2, 0] == pytest.approx(85.0, abs=1e-3)  # mean of 100 .. 70
    assert truth.light_pct[3, 0] == pytest.approx(55.0, abs=1e-3)  # mean of 70 .. 40
    assert truth.light_pct[4, 0] == pytest.approx(40.0, abs=1e-3)
    # pole 7: 5 s of the ramp (100 .. 85, mean 92.5), then 5 s at 80
    assert truth.light_pct[2, 7] == pytest.approx((92.5 + 80) / 2, abs=1e-3)
    expect = driver_power_w(np.array([40.0]), ROAD.arrays.rated_power_w[:1])[0]
    assert truth.power_w[4, 0] == pytest.approx(expect, abs=0.01)
    assert truth.energy_wh()[0] > 0


def test_a_broken_truth_file_names_its_line(tmp_path):
    f = tmp_path / "x.truth.jsonl"
    f.write_text('{"kind": "step"}\n')
    with pytest.raises(RecordingError, match=r"x.truth.jsonl:1: .*header"):
        read_truth(f)
    with pytest.raises(RecordingError, match="cannot open"):
        read_truth(tmp_path / "missing.truth.jsonl")
