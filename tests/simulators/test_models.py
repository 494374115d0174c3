"""The road model without a broker: traffic, daylight, electrical, device state, faults, payloads."""

import dataclasses

import numpy as np
import pytest

from simulators.daylight import ambient_lux, solar_elevation_deg
from simulators.device import DeviceLogic, Inbound
from simulators.electrical import driver_power_w
from simulators.encode import Encoder
from simulators.engine import FALLBACK, RoadSim
from simulators.faults import Fault, FaultSchedule, FaultState
from simulators.schedule import DEFAULT_SCHEDULE, schedule_level
from simulators.traffic import Surge, TrafficModel
from streetlight.clock import parse_local
from streetlight.protocol import parse_payload, parse_topic, pole_topic
from streetlight.registry import load_road

ROAD = load_road("nanhuan-1")
T_EVENING = parse_local("2026-11-23 18:00")  # a Monday
T_NIGHT = parse_local("2026-11-24 03:00")


def _run_traffic(model: TrafficModel, t: int, steps: int):
    total = np.zeros(len(ROAD.poles), np.int64)
    last = None
    for k in range(steps):
        last = model.step(t + k * 10_000, 10)
        total += last.vehicles
    return total, last


def test_traffic_peaks_in_the_evening_and_is_quiet_at_night():
    evening, _ = _run_traffic(TrafficModel(ROAD, seed=1), T_EVENING, 60)
    night, _ = _run_traffic(TrafficModel(ROAD, seed=1), T_NIGHT, 60)
    assert evening.mean() > 8 * night.mean()
    # about 2 x 1,300 vehicles an hour pass a pole at the peak: 10 minutes ~ 430
    assert 250 < evening.mean() < 650


def test_vehicles_move_along_the_road_pole_by_pole():
    model = TrafficModel(ROAD, seed=3)
    _, step = _run_traffic(model, T_EVENING, 30)
    assert len(step.vehicle_pole) == step.vehicles.sum()
    assert set(np.unique(step.vehicle_direction)) == {-1, 1}
    assert np.all((step.vehicle_speed_kmh > 0) & (step.vehicle_speed_kmh < 120))
    assert np.all(np.diff(step.vehicle_ts) >= 0)
    assert np.all((step.vehicle_ts >= T_EVENING + 29 * 10_000) & (step.vehicle_ts < T_EVENING + 30 * 10_000))


def test_a_surge_fills_only_its_segment():
    s3 = [s.id for s in ROAD.segments].index("S3")
    surge = Surge(T_NIGHT, T_NIGHT + 3_600_000, factor=10.0, segment=s3)
    calm, _ = _run_traffic(TrafficModel(ROAD, seed=5), T_NIGHT, 60)
    busy, _ = _run_traffic(TrafficModel(ROAD, seed=5, surges=[surge]), T_NIGHT, 60)
    in_s3 = ROAD.arrays.segment == s3
    assert busy[in_s3].sum() > 3 * calm[in_s3].sum()


def test_same_seed_same_traffic_other_seed_other_traffic():
    a, _ = _run_traffic(TrafficModel(ROAD, seed=9), T_EVENING, 20)
    b, _ = _run_traffic(TrafficModel(ROAD, seed=9), T_EVENING, 20)
    c, _ = _run_traffic(TrafficModel(ROAD, seed=10), T_EVENING, 20)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_daylight_noon_bright_midnight_dark():
    lat, lon = np.array([ROAD.lat]), np.array([ROAD.lon])
    noon = solar_elevation_deg(parse_local("2026-06-21 12:00"), lat, lon)
    assert 75 < noon[0] < 85  # 90 - 31.7 + 23.4
    assert ambient_lux(noon)[0] > 50_000
    assert ambient_lux(solar_elevation_deg(parse_local("2026-11-24 00:00"), lat, lon))[0] < 1


def test_fallback_schedule_levels_through_the_night():
    def level(text):
        return schedule_level(DEFAULT_SCHEDULE, parse_local(text), 8 * 3600, ROAD.lat, ROAD.lon)

    assert [level(t) for t in ("2026-11-23 12:00", "2026-11-23 18:00", "2026-11-23 23:00", "2026-11-24 02:00",
                               "2026-11-24 08:00")] == [0, 100, 75, 50, 0]


def test_driver_power_grows_with_dim_and_keeps_standby():
    p = driver_power_w(np.array([0.0, 50.0, 100.0]), np.array([150.0] * 3))
    assert 0 < p[0] < 3 < p[1] < p[2] < 160


def _sim(**kw):
    return RoadSim(ROAD, T_EVENING, seed=1, heartbeat_required=kw.pop("heartbeat_required", False), **kw)


def test_every_payload_of_a_step_passes_the_protocol_parsers():
    sim = _sim()
    enc = Encoder(sim)
    msgs = []
    for k in range(1, 4):
        msgs += enc.step(sim.step(T_EVENING + k * 10_000))
    kinds = {m.kind for m in msgs}
    assert kinds == {"telemetry", "event"}
    for m in msgs:
        parse_payload(parse_topic(m.topic).kind, m.payload)
    tele = [m for m in msgs if m.kind == "telemetry"]
    assert len(tele) == 3 * 93


def test_seq_counts_every_telemetry_and_event_of_a_pole():
    sim = _sim()
    enc = Encoder(sim)
    seqs: dict[int, list[int]] = {}
    for k in range(1, 6):
        for m in enc.step(sim.step(T_EVENING + k * 10_000)):
            seqs.setdefault(m.pole, []).append(parse_payload(m.kind, m.payload).seq)
    for s in seqs.values():
        assert s == list(range(len(s)))


def test_lamp_failure_drops_power_and_reports_event():
    sim = _sim()
    enc = Encoder(sim)
    i = ROAD.pole("NH-012").index
    FaultSchedule(FaultState(sim), [Fault("lamp_failure", T_EVENING + 5_000, (i,))]).due(T_EVENING + 10_000)
    msgs = enc.step(sim.step(T_EVENING + 10_000))
    tele = {m.pole: parse_payload("telemetry", m.payload) for m in msgs if m.kind == "telemetry"}
    assert tele[i].power_w < 5 and tele[i].dim == 100
    assert tele[i + 1].power_w > 100
    assert any(m.pole == i and b'"lamp_fault"' in m.payload for m in msgs)


def test_cable_cut_darkens_exactly_downstream_and_reboots_on_repair():
    sim = _sim()
    enc = Encoder(sim)
    feeder = ROAD.feeder_by_id["C2-L1"]
    down = tuple(ROAD.pole(p).index for p in feeder.poles[10:])
    sched = FaultSchedule(FaultState(sim), [Fault("cable_cut", T_EVENING, down, until_ms=T_EVENING + 20_000)])
    sched.due(T_EVENING)
    msgs = enc.step(sim.step(T_EVENING + 10_000))
    senders = {m.pole for m in msgs}
    assert senders.isdisjoint(down) and len(senders) == 93 - len(down)
    enc.step(sim.step(T_EVENING + 20_000))
    sched.due(T_EVENING + 20_000)  # as the runner does: faults after the step's physics
    msgs = enc.step(sim.step(T_EVENING + 30_000))
    reboots = [parse_payload("event", m.payload) for m in msgs if b'"reboot"' in m.payload]
    assert len(reboots) == len(down) and all(e.seq == 0 for e in reboots)


def test_commands_ack_once_and_repeats_are_not_executed_again():
    sim = _sim()
    dev = DeviceLogic(sim)
    topic = pole_topic(ROAD.id, "NH-005", "cmd")
    dim = b'{"cmd_id":"c-1","type":"dim","issued_ts":1,"level":30,"ramp_ms":0}'
    first = dev.handle([Inbound(0, 4, topic, dim)], T_EVENING)
    sim.set_level(4, 80.0, 0, T_EVENING)  # something else changes the level meanwhile
    again = dev.handle([Inbound(1, 4, topic, dim)], T_EVENING + 10_000)
    assert first == again and len(first) == 1
    assert parse_payload("ack", first[0][1]).dim == 30
    assert sim.ramp_to[4] == 80.0  # the repeat did not run the command again
    bad = dev.handle([Inbound(2, 4, topic, b'{"cmd_id":"c-2","type":"explode","issued_ts":1}')], T_EVENING)
    ack = parse_payload("ack", bad[0][1])
    assert not ack.ok and "unknown_type" in ack.error
    assert dev.handle([Inbound(3, 4, topic, b"not json")], T_EVENING) == []
    assert dev.counts["invalid_invalid_json"] == 1
    # without a cmd_id there is nothing to acknowledge: counted, not answered
    assert dev.handle([Inbound(4, 4, topic, b'{"type":"dim","issued_ts":1,"level":30}')], T_EVENING) == []
    assert dev.counts["invalid_missing_field"] == 1
    # an invalid body under a known cmd_id gets that command's ack again, not a refusal
    assert dev.handle([Inbound(5, 4, topic, b'{"cmd_id":"c-1","type":"dim","level":300}')], T_EVENING) == first


def test_no_heartbeat_means_fallback_and_heartbeat_ends_it():
    sim = _sim(heartbeat_required=True)
    dev = DeviceLogic(sim)
    sim.apply_targets(T_EVENING + 301_000)
    assert np.all(sim.mode == FALLBACK)
    hb = pole_topic(ROAD.id, "NH-001", "state").replace("NH-001/state", "heartbeat")
    dev.handle([Inbound(0, None, hb, b'{"ts": %d}' % (T_EVENING + 301_000))], T_EVENING + 301_000)
    sim.apply_targets(T_EVENING + 302_000)
    assert not np.any(sim.mode == FALLBACK)


def test_comm_loss_pole_keeps_its_lamp_on_the_fallback_schedule():
    sim = _sim()
    i = 7
    FaultSchedule(FaultState(sim), [Fault("comm_loss", T_EVENING, (i,))]).due(T_EVENING)
    for k in range(1, 40):
        sim.step(T_EVENING + k * 10_000)
        sim.apply_targets(T_EVENING + k * 10_000)
    assert sim.mode[i] == FALLBACK and sim.mode[i + 1] != FALLBACK
    assert sim.output_dim(sim.t_ms)[i] == 100.0  # evening: the schedule says full


@pytest.mark.parametrize("n", [10_000])
def test_large_road_steps_vectorized(n):
    road = load_road(f"synthetic:{n}")
    sim = RoadSim(road, T_EVENING, seed=1, heartbeat_required=False)
    out = sim.step(T_EVENING + 10_000)
    assert out.report.sum() == n
    assert out.columns["power_w"].shape == (n,)
    assert dataclasses.is_dataclass(out)


def _one_step_with(fault: Fault, t: int):
    sim = RoadSim(ROAD, t, seed=2, heartbeat_required=False)
    FaultSchedule(FaultState(sim), [fault]).due(t)
    sim.step(t + 300_000)  # five minutes: traffic fills the road
    sim.apply_targets(t + 300_000)
    return sim.step(t + 310_000).columns


def test_relay_stuck_burns_in_daylight():
    noon = parse_local("2026-11-24 12:00")
    i = ROAD.pole("NH-050").index
    cols = _one_step_with(Fault("relay_stuck", noon, (i,)), noon)
    assert cols["lux"][i] > 10_000
    assert cols["power_w"][i] > 150 and cols["dim"][i] == 0  # the controller thinks it is off
    assert cols["power_w"][i + 1] < 5


def test_voltage_sag_detector_stuck_and_driver_drift():
    feeder = [f.id for f in ROAD.feeders].index("C1-L1")
    on_feeder = ROAD.arrays.feeder == feeder
    cols = _one_step_with(Fault("voltage_sag", T_EVENING, tuple(np.flatnonzero(on_feeder)), feeder), T_EVENING)
    assert cols["voltage_v"][on_feeder].max() < 200 < cols["voltage_v"][~on_feeder].min()
    i = 30
    cols = _one_step_with(Fault("detector_stuck", T_EVENING, (i,)), T_EVENING)
    assert cols["vehicles"][i] == 0 and cols["vehicles"][i + 1] > 0
    base = _one_step_with(Fault("leakage", T_EVENING, (i,), params={"ma": 40}), T_EVENING)
    assert base["leakage_ma"][i] > 35 > base["leakage_ma"][i + 1]
    drift = _one_step_with(Fault("driver_degradation", T_EVENING, (i,), params={"drift": 1.3}), T_EVENING)
    ratio = drift["power_w"][i] / drift["power_w"][i + 2]
    assert 1.2 < ratio * ROAD.poles[i + 2].rated_power_w / ROAD.poles[i].rated_power_w < 1.4


def test_bench_stepping_row_has_the_ratio_to_target():
    from benchmarks.sim import _stepping

    row = _stepping(93, 3)
    assert row["poles"] == 93 and row["pole_steps_per_s"] > 0 and row["ratio_to_target"] < 1


def test_in_fallback_a_dim_command_is_refused_with_the_reason():
    sim = _sim(heartbeat_required=True)
    dev = DeviceLogic(sim)
    later = T_EVENING + 400_000
    sim.apply_targets(later)
    topic = pole_topic(ROAD.id, "NH-003", "cmd")
    acks = dev.handle([Inbound(0, 2, topic, b'{"cmd_id":"f-1","type":"dim","issued_ts":1,"level":20}')], later)
    ack = parse_payload("ack", acks[0][1])
    assert not ack.ok and "fallback" in ack.error and ack.dim == 100
    assert sim.ramp_to[2] == 100


def test_identify_blinks_the_lamp_for_its_seconds():
    sim = _sim()
    dev = DeviceLogic(sim)
    t = parse_local("2026-11-24 03:00")  # 50 % on the schedule
    sim.apply_targets(t)
    topic = pole_topic(ROAD.id, "NH-009", "cmd")
    dev.handle([Inbound(0, 8, topic, b'{"cmd_id":"i-1","type":"identify","issued_ts":1,"seconds":5}')], t)
    seen = {float(sim.output_dim(t + k * 1000)[8]) for k in range(5)}
    assert seen == {0.0, 100.0}
    assert float(sim.output_dim(t + 6000)[8]) == 50.0
    assert float(sim.output_dim(t + 1000)[9]) == float(sim.setpoint(t + 1000)[9])  # others do not blink


def test_a_driver_drifts_gradually_over_its_ramp():
    sim = _sim()
    i = 20
    FaultSchedule(FaultState(sim), [Fault("driver_degradation", T_EVENING, (i,), params={"drift": 1.4, "ramp_s": 600})]) \
        .due(T_EVENING)
    assert sim.drift.at(T_EVENING)[i] == 1.0
    assert sim.drift.at(T_EVENING + 300_000)[i] == pytest.approx(1.2)
    assert sim.drift.at(T_EVENING + 900_000)[i] == pytest.approx(1.4)
    assert sim.drift.at(T_EVENING + 900_000)[i + 1] == 1.0


def test_the_supply_is_a_220_v_network_inside_its_band_with_drop_and_daily_swing():
    """GB/T 12325-2008: 220 V single-phase, +7 % / -10 % (198-235.4 V). A day and a night of
    normal operation stays inside with margin; the far end of a feeder sits lower than its
    cabinet end while the lamps burn; the cabinet end is higher in the small hours than at the
    evening peak of the network."""
    t0 = parse_local("2026-11-23 12:00")
    sim = RoadSim(ROAD, t0, seed=7, heartbeat_required=False)
    volts, hours = [], []
    for k in range(1, 24 * 60 + 1):
        t = t0 + k * 60_000
        sim.apply_targets(t)
        volts.append(sim.step(t).columns["voltage_v"])
        hours.append(sim._hour(t))
    v, h = np.array(volts), np.array(hours)
    assert 203 < v.min() and v.max() < 234
    assert 218 < np.median(v) < 226
    pos = ROAD.arrays.feeder_position
    near, far = pos == 1, pos >= 20
    night = (h > 19) & (h < 20)  # full output at the evening peak
    assert v[night][:, near].mean() - v[night][:, far].mean() > 4
    small_hours = (h > 3) & (h < 4)
    assert v[small_hours][:, near].mean() > v[night][:, near].mean() + 2


def test_a_breaker_trip_darkens_exactly_its_feeder_until_closed():
    sim = _sim()
    enc = Encoder(sim)
    fi = [f.id for f in ROAD.feeders].index("C1-L2")
    on_feeder = ROAD.arrays.feeder == fi
    trip = Fault("breaker_trip", T_EVENING + 10_000, tuple(np.flatnonzero(on_feeder)), fi, T_EVENING + 30_000)
    faults = FaultSchedule(FaultState(sim), [trip])
    reporting, events = [], []
    for k in range(1, 5):
        t = T_EVENING + k * 10_000
        out = sim.step(t)
        enc.step(out)
        faults.due(t)
        reporting.append(out.report.copy())
        events.append(out.events)
    assert reporting[0].all()
    assert not reporting[1][on_feeder].any() and reporting[1][~on_feeder].all()  # silent, as a power loss is
    assert sim.powered.all()  # closed again: the feeder's poles restart and say so
    assert sorted(e.pole for e in events[3] if e.type == "reboot") == np.flatnonzero(on_feeder).tolist()


def test_a_cycling_lamp_goes_out_once_a_minute_and_comes_back_by_itself():
    sim = _sim()
    i = ROAD.pole("NH-075").index
    at = T_EVENING + 60_000
    faults = FaultSchedule(FaultState(sim), [Fault("lamp_cycling", at, (i,))])
    power, light, dims = [], [], []
    for k in range(1, 20):
        t = T_EVENING + k * 10_000
        out = sim.step(t)
        faults.due(t)
        if t > at:
            power.append(out.columns["power_w"][i])
            dims.append(out.columns["dim"][i])
            assert out.truth is not None
            light.append(out.truth.light_pct[i])
    dark = [p < 5 for p in power]
    # the report after the fault is dark, then lit for five reports, dark again, ...
    assert dark == [k % 6 == 0 for k in range(len(power))]
    assert len(set(dims)) == 1 and dims[0] >= 10  # the level never moved: it goes out by itself
    assert [x == 0 for x in light] == dark  # the truth saw the same dark spells
    assert not any(e.type == "lamp_fault" for e in sim.pending_events)  # no diagnostics, unlike a failed lamp


def test_a_poles_state_row_is_its_row_of_the_state_key() -> None:
    from streetlight.registry import load_road

    sim = RoadSim(load_road("nanhuan-1"), 1_764_000_000_000, 7)
    sim.ramp_to[:] = np.linspace(0.0, 100.0, len(sim.ramp_to)) + 0.05  # halves, where rounding could differ
    sim.mode[3] = FALLBACK
    key = sim.state_key()
    assert all((sim.state_row(i) == key[i]).all() for i in range(len(key)))
