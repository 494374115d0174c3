"""Equipment on multi-function poles: port faults, tilt and door, located like the lamp faults."""

from __future__ import annotations

from streetlight.protocol import parse_event

from .road_stream import RoadStream

CAM_POLE = "NH-001"  # carries cam-1 and cell-1


def healthy_ports(pid: str, d: dict, s: RoadStream) -> dict:
    ports = {q.id: {"on": True, "power_w": q.rated_power_w * 0.9, "link": "up"} for q in s.road.pole(pid).ports}
    return {**d, "ports": ports} if ports else d


def stream() -> RoadStream:
    s = RoadStream()
    s.patches.append(lambda pid, d: healthy_ports(pid, d, s))
    s.run_minutes(6)
    assert s.events == [], [f.summary for f in s.events]
    return s


def event(s: RoadStream, pole: str, body: str) -> None:
    s.ctl.on_event(pole, parse_event(f'{{"ts": {s.now + 1}, "seq": 1, {body}}}'.encode()))


def test_hung_camera_is_an_equipment_fault_on_its_port_and_clears_when_back():
    s = stream()
    hung = {"on": True, "power_w": 22.0, "link": "down"}
    patch = lambda pid, d: {**d, "ports": {**d["ports"], "cam-1": hung}} if pid == CAM_POLE else d  # noqa: E731
    s.patches.append(patch)
    s.run(2)
    assert s.types_opened() == ["equipment_fault"]
    f = s.opened("equipment_fault")[0]
    assert (f.pole, f.equipment, f.severity, f.feeder) == (CAM_POLE, "cam-1", "major", "C1-L1")
    assert f.evidence["cause"] == "link_down" and "power-cycle" in f.summary and "K0+010" in f.summary
    assert f.to_alert().equipment == "cam-1"
    s.patches.remove(patch)
    s.run(2)
    assert s.events[-1].state == "resolved" and s.events[-1].fault_id == f.fault_id


def test_trip_then_power_far_from_rated_are_separate_causes_of_one_port():
    s = stream()
    event(s, CAM_POLE, '"type": "port_trip", "port": "cell-1", "current_a": 4.2')
    s.patches.append(lambda pid, d: {**d, "ports": {**d["ports"], "cell-1": {"on": False, "power_w": 0.0}}}
                     if pid == CAM_POLE else d)
    s.run(1)
    faults = s.opened("equipment_fault")
    assert [(f.equipment, f.evidence["cause"]) for f in faults] == [("cell-1", "port_trip")]
    assert "4.2 A" in faults[0].summary
    s.patches[-1] = lambda pid, d: ({**d, "ports": {**d["ports"], "cell-1": {"on": True, "power_w": 5.0}}}
                                    if pid == CAM_POLE else d)
    s.run(4)
    latest = [f for f in s.events if f.equipment == "cell-1"][-1]
    assert latest.state == "open" and latest.evidence["cause"] == "power" and "5 W against 80 W" in latest.summary


def test_tilt_is_critical_and_stays_until_the_pole_stands():
    s = stream()
    event(s, "NH-050", '"type": "tilt", "degrees": 14.0')
    s.run(3)
    f = s.opened("pole_tilt")[0]
    assert f.severity == "critical" and f.pole == "NH-050" and "leans 14°" in f.summary
    assert s.types_opened() == ["pole_tilt"]
    event(s, "NH-050", '"type": "tilt", "degrees": 0.5')
    s.run(1)
    assert s.events[-1].state == "resolved"


def test_door_open_is_minor_and_not_raised_in_a_maintenance_window():
    s = stream()
    s.ctl.equipment.set_maintenance("NH-010", s.now + 3_600_000)
    event(s, "NH-010", '"type": "door_open"')
    event(s, "NH-011", '"type": "door_open"')
    s.run(1)
    faults = s.opened()
    assert [(f.type, f.pole, f.severity) for f in faults] == [("door_open", "NH-011", "minor")]


def test_a_maintenance_window_covers_doors_opened_in_it_not_before_it():
    s = stream()
    event(s, "NH-012", '"type": "door_open"')
    s.run(1)
    assert [f.pole for f in s.opened("door_open")] == ["NH-012"]
    # a crew declares itself at NH-012 afterwards: the earlier opening stays a fault
    s.ctl.equipment.set_maintenance("NH-012", s.now + 3_600_000, from_ms=s.now)
    s.run(1)
    assert all(f.state != "resolved" for f in s.events if f.type == "door_open")
    assert s.ctl.equipment.in_maintenance("NH-012", s.now)
    assert not s.ctl.equipment.in_maintenance("NH-012", s.now + 3_600_001)
    s.ctl.equipment.set_maintenance("NH-999", s.now + 1)
    assert s.ctl.equipment.rejected == {"unknown_pole": 1}


def test_unknown_port_is_counted_and_ignored():
    s = stream()
    event(s, "NH-003", '"type": "port_trip", "port": "cam-9", "current_a": 1')
    s.run(1)
    assert s.events == [] and s.ctl.equipment.rejected == {"unknown_port": 1}


def _cabinet(s: RoadStream, cab: str, breakers: dict[str, str]) -> None:
    from streetlight.protocol import CabinetTelemetry

    feeders = {f: {"breaker": b, "current_a": 0.0 if b == "open" else 10.0, "energy_wh": 1000.0}
               for f, b in breakers.items()}
    s.ctl.on_cabinet(cab, CabinetTelemetry.model_validate({"ts": s.now, "seq": 1, "feeders": feeders}))


def test_open_breaker_is_a_feeder_outage_on_the_report_that_shows_it():
    s = stream()
    _cabinet(s, "C1", {"C1-L1": "open", "C1-L2": "closed"})
    s.run(1)  # its poles still report this interval: silence would take three more
    f = s.opened("feeder_outage")[0]
    assert (f.feeder, f.cabinet, f.pole, f.evidence["breaker"]) == ("C1-L1", "C1", None, "open")
    assert "Breaker of feeder C1-L1 is open in cabinet C1" in f.summary
    s.silenced |= set(s.road.feeder_by_id["C1-L1"].poles)
    for _ in range(6):
        _cabinet(s, "C1", {"C1-L1": "open", "C1-L2": "closed"})
        s.run(1)
    assert [x.fault_id for x in s.opened()] == [f.fault_id]  # the poles' silence is the same fault
    s.silenced.clear()
    _cabinet(s, "C1", {"C1-L1": "closed", "C1-L2": "closed"})
    s.run(2)
    assert s.events[-1].fault_id == f.fault_id and s.events[-1].state == "resolved"


def test_silent_cabinet_is_told_apart_from_its_feeders_losing_supply():
    s = stream()
    _cabinet(s, "C2", {"C2-L1": "closed", "C2-L2": "closed"})
    s.run(6)  # the cabinet says nothing more while its poles report
    f = s.opened("comm_loss")[0]
    assert (f.cabinet, f.pole, f.feeder) == ("C2", None, None) and "not the supply" in f.summary
    s2 = stream()
    _cabinet(s2, "C2", {"C2-L1": "closed", "C2-L2": "closed"})
    s2.silenced |= {p for fd in s2.road.feeders_of("C2") for p in fd.poles}
    s2.run(8)
    assert s2.types_opened() == ["feeder_outage"] and "Cabinet C2 out" in s2.opened()[0].summary
