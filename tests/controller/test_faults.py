"""Fault rules on synthetic road streams: each fault found at the right place, and no others."""

from __future__ import annotations

import pytest

from controller.errors import FaultStateError
from streetlight.protocol import DriverFaultEvent, Event, LampFaultEvent

from .road_stream import RoadStream

INTERVAL_MS = 10_000


def warm(minutes: float = 6, **kw) -> RoadStream:
    s = RoadStream(**kw)
    s.run_minutes(minutes)
    assert s.events == [], [f.summary for f in s.events]
    return s


def only(s: RoadStream, ftype: str):
    assert s.types_opened() == [ftype], [f.summary for f in s.events]
    faults = s.opened(ftype)
    assert len(faults) == 1, [f.summary for f in faults]
    return faults[0]


def test_normal_night_raises_nothing():
    s = RoadStream(start="2026-11-23 17:30")
    s.run_minutes(60)
    assert s.events == []
    assert s.ctl.open_faults() == []


def test_quiet_road_at_3am_is_not_a_stuck_detector():
    s = RoadStream(start="2026-11-24 03:00", vehicles_per_report=0.02)
    s.patches.append(lambda pid, d: {**d, "vehicles": 0} if pid == "NH-040" else d)
    s.run_minutes(30)
    assert s.events == []


@pytest.mark.parametrize(("feeder", "first_dead"), [(0, 15), (1, 5), (2, 15), (3, 21), (2, 1)])
def test_cable_cut_is_one_cable_fault_at_the_span(feeder, first_dead):
    s = warm()
    poles = s.road.feeders[feeder].poles
    dead = poles[first_dead:]
    s.silenced |= set(dead)
    t_cut = s.now
    s.run(6)
    f = only(s, "cable_fault")
    assert f.span == [poles[first_dead - 1], poles[first_dead]]
    assert f.pole is None and f.feeder == s.road.feeders[feeder].id and f.severity == "critical"
    assert f"{len(dead)} poles dark" in f.summary and poles[first_dead] in f.summary
    assert f.chainage and f.chainage.startswith("K")
    # silence counts after 3 report intervals; located on the tick it becomes certain
    assert f.first_seen_ts - t_cut <= 4 * INTERVAL_MS
    # repaired: the fault resolves by itself
    s.silenced.clear()
    s.run(2)
    assert s.ctl.open_faults() == []
    assert s.events[-1].state == "resolved" and s.events[-1].fault_id == f.fault_id


def test_cable_cut_reported_by_a_concentrator_as_no_supply():
    s = warm()
    dead = set(s.road.feeder_by_id["C1-L2"].poles[10:])
    s.patches.append(lambda pid, d: {**d, "voltage_v": 0.0, "power_w": 0.0, "dim": 0.0} if pid in dead else d)
    s.run(3)
    f = only(s, "cable_fault")
    assert f.span == ["NH-033", "NH-034"]


def test_feeder_outage_and_cabinet_outage():
    s = warm()
    s.silenced |= set(s.road.feeder_by_id["C1-L2"].poles)
    s.run(5)
    f = only(s, "feeder_outage")
    assert (f.feeder, f.cabinet) == ("C1-L2", "C1")
    s2 = warm()
    s2.silenced |= set(s2.road.feeder_by_id["C2-L1"].poles) | set(s2.road.feeder_by_id["C2-L2"].poles)
    s2.run(5)
    f2 = only(s2, "feeder_outage")
    assert (f2.feeder, f2.cabinet) == (None, "C2") and "Cabinet C2" in f2.summary


@pytest.mark.parametrize("pole", ["NH-030", "NH-093", "NH-001"])
def test_one_silent_pole_is_a_comm_loss(pole):
    s = warm()
    s.silenced.add(pole)
    s.run(6)
    f = only(s, "comm_loss")
    assert f.pole == pole and f.span is None


def test_offline_status_is_comm_loss_at_once():
    s = warm()
    s.ctl.on_status("NH-050", False, s.now)
    s.silenced.add("NH-050")
    s.step()
    assert only(s, "comm_loss").pole == "NH-050"


def test_lamp_failure_within_two_intervals():
    s = warm()
    s.patches.append(lambda pid, d: {**d, "power_w": 1.2} if pid == "NH-012" else d)
    first_evidence = s.now + s.phase["NH-012"]
    s.run(3)
    f = only(s, "lamp_failure")
    assert f.pole == "NH-012" and f.segment == "S1" and f.side == "S" and f.feeder == "C1-L1"
    assert f.first_seen_ts == first_evidence
    assert f.last_seen_ts - first_evidence <= 2 * INTERVAL_MS
    assert "NH-012" in f.summary and "K0+395" in f.summary
    s.patches.clear()
    s.run(3)
    assert s.events[-1].state == "resolved"


def test_device_reported_faults_open_at_once():
    s = warm()
    s.ctl.on_event("NH-020", LampFaultEvent(ts=s.now, seq=999, code="E12"))
    s.ctl.on_event("NH-021", DriverFaultEvent(ts=s.now, seq=999, code="OVT"))
    s.ctl.watches["NH-020"].lamp.good = 0
    s.patches.append(lambda pid, d: {**d, "power_w": 1.0} if pid == "NH-020" else d)
    s.step()
    assert sorted((f.type, f.pole) for f in s.opened()) == [("driver_fault", "NH-021"), ("lamp_failure", "NH-020")]


def test_a_controllers_own_day_burner_and_cycling_flags_open_their_faults():
    s = warm()
    s.ctl.on_event("NH-030", Event(ts=s.now, seq=999, type="day_burner", code="LWM2M_DAY_BURNER"))
    s.ctl.on_event("NH-031", Event(ts=s.now, seq=999, type="cycling_failure", code="LWM2M_CYCLING_FAILURE"))
    s.step()
    assert sorted((f.type, f.pole) for f in s.opened()) == \
        [("cycling", "NH-031"), ("day_burning", "NH-030")]
    assert "device reports" in s.opened("cycling")[0].summary
    s.run(5)  # normal reports between the lamp's cycles do not clear what the device saw
    assert "NH-031" in {f.pole for f in s.ctl.open_faults() if f.type == "cycling"}


def test_driver_power_off_its_curve():
    s = warm()
    s.patches.append(lambda pid, d: {**d, "power_w": d["power_w"] * 0.45} if pid == "NH-060" else d)
    s.run(3)
    assert only(s, "driver_fault").pole == "NH-060"


def test_leakage_is_critical_on_the_first_report():
    s = warm()
    s.patches.append(lambda pid, d: {**d, "leakage_ma": 42.0} if pid == "NH-077" else d)
    s.step()
    f = only(s, "leakage")
    assert f.pole == "NH-077" and f.severity == "critical" and "42 mA" in f.summary


@pytest.mark.parametrize("ma", [25.5, 28.0, 30.0])
def test_leakage_between_the_clear_and_open_thresholds_opens_nothing(ma: float):
    s = warm()
    s.patches.append(lambda pid, d: {**d, "leakage_ma": ma} if pid == "NH-077" else d)
    s.run(5)
    assert s.events == [], [f.summary for f in s.events]


def test_leakage_inside_the_band_keeps_an_open_fault_open_with_its_measured_value():
    s = warm()
    level = {"ma": 36.0}
    s.patches.append(lambda pid, d: {**d, "leakage_ma": level["ma"]} if pid == "NH-077" else d)
    s.step()
    f = only(s, "leakage")
    assert f.evidence["leakage_ma"] == 36.0 and f.evidence["limit_ma"] == 30.0 and "36 mA" in f.summary
    level["ma"] = 27.0  # back inside the band: not resolved, however long
    s.run(8)
    assert [e.state for e in s.events if e.fault_id == f.fault_id] == ["open"]
    assert [x.fault_id for x in s.ctl.open_faults()] == [f.fault_id]
    level["ma"] = 3.0  # below the clear threshold: resolved after the clear count
    s.run(8)
    assert [e.state for e in s.events if e.fault_id == f.fault_id][-1] == "resolved"


def test_voltage_out_of_band_per_pole_and_per_feeder():
    s = warm()
    s.patches.append(lambda pid, d: {**d, "voltage_v": 241.0} if pid == "NH-066" else d)
    s.run(3)
    assert only(s, "voltage_out_of_band").pole == "NH-066"
    s2 = warm()
    feeder = set(s2.road.feeder_by_id["C1-L1"].poles)
    s2.patches.append(lambda pid, d: {**d, "voltage_v": 190.0} if pid in feeder else d)
    s2.run(3)
    f = only(s2, "voltage_out_of_band")
    assert f.pole is None and f.feeder == "C1-L1"


def test_day_burning():
    s = warm(start="2026-11-23 12:00")
    s.patches.append(lambda pid, d: {**d, "dim": 100.0, "power_w": 152.0} if pid == "NH-044" else d)
    s.run(4)
    assert only(s, "day_burning").pole == "NH-044"


def test_normal_day_raises_nothing():
    s = RoadStream(start="2026-11-24 06:00")  # across dawn into the day
    s.run_minutes(90)
    assert s.events == []


def test_cycling_lamp_is_one_cycling_fault():
    s = warm()
    n = {"k": 0}

    def blink(pid, d):
        if pid != "NH-031":
            return d
        n["k"] += 1
        return {**d, "power_w": 1.0} if n["k"] % 3 == 0 else d

    s.patches.append(blink)
    s.run(12)
    assert only(s, "cycling").pole == "NH-031"


def test_stuck_detector_is_found_and_ignored_by_dimming():
    s = warm()
    s.patches.append(lambda pid, d: {**d, "vehicles": 0} if pid == "NH-040" else d)
    s.run(14)
    assert only(s, "detector_stuck").pole == "NH-040"


def test_a_stuck_detector_stays_one_fault_when_the_road_quietens_and_clears_when_it_counts_again():
    """Late at night its neighbours count too little to prove it stuck: that takes away the
    evidence, not the fault (one work order, not one per busy spell)."""
    s = warm()
    s.patches.append(lambda pid, d: {**d, "vehicles": 0} if pid == "NH-040" else d)
    s.run(14)
    first = only(s, "detector_stuck")
    s.vehicles_per_report = 0.02  # the road empties: the neighbours' median falls under the threshold
    s.run(30)
    s.vehicles_per_report = 3.0  # and fills again
    s.run(20)
    assert [f.fault_id for f in s.opened("detector_stuck")] == [first.fault_id]
    assert not any(f.state == "resolved" for f in s.events if f.fault_id == first.fault_id)
    s.patches.clear()  # repaired: it counts again
    s.run(20)
    assert any(f.state == "resolved" for f in s.events if f.fault_id == first.fault_id)


def test_acknowledge_and_manual_resolve():
    s = warm()
    s.patches.append(lambda pid, d: {**d, "leakage_ma": 40.0} if pid == "NH-002" else d)
    s.step()
    f = only(s, "leakage")
    ack = s.ctl.acknowledge(f.fault_id, "crew-7", s.now)
    assert ack.state == "acknowledged"
    s.step()
    assert s.events[-1].state == "acknowledged" and s.events[-1].evidence["acknowledged_by"] == "crew-7"
    s.ctl.resolve(f.fault_id, "crew-7", s.now)
    s.run(3)  # evidence still there: not reopened
    assert [e.state for e in s.events if e.fault_id == f.fault_id][-1] == "resolved"
    assert len(s.opened("leakage")) == 1
    with pytest.raises(FaultStateError):
        s.ctl.acknowledge(f.fault_id, "crew-7", s.now)
    s.patches.clear()
    s.run(3)
    s.patches.append(lambda pid, d: {**d, "leakage_ma": 40.0} if pid == "NH-002" else d)
    s.step()  # a new occurrence after the evidence cleared is a new fault
    assert len(s.opened("leakage")) == 2


def test_alert_matches_the_protocol():
    s = warm()
    s.silenced |= set(s.road.feeder_by_id["C2-L1"].poles[15:])
    s.run(5)
    alert = s.opened("cable_fault")[0].to_alert()
    d = alert.to_dict()
    assert d["type"] == "cable_fault" and d["span"] == ["NH-056", "NH-055"] and d["fault_id"].startswith("F-")
    assert "cabinet" not in d and d["road"] == "nanhuan-1"


def test_every_cut_position_on_every_feeder_is_located_exactly():
    from controller.faults.detect import Detector
    from controller.faults.pole_rules import PoleWatch
    from controller.tables import fault_table

    road = RoadStream().road
    table = fault_table()
    now = 10_000_000
    for feeder in road.feeders:
        for k in range(1, len(feeder.poles) - table.min_cable_run + 1):
            watches = {p.id: PoleWatch(p, table, last_msg_ts=now - 5_000) for p in road.poles}
            for pid in feeder.poles[k:]:
                watches[pid].last_msg_ts = now - 60_000
            found, covered = Detector(road, table, INTERVAL_MS).supply_findings(watches, now, 0)
            assert [(f.type, f.location["span"]) for f in found] == [("cable_fault", [feeder.poles[k - 1], feeder.poles[k]])]
            assert covered == set(feeder.poles[k:])
