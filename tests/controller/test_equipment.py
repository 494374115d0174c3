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


def test_unknown_port_is_counted_and_ignored():
    s = stream()
    event(s, "NH-003", '"type": "port_trip", "port": "cam-9", "current_a": 1')
    s.run(1)
    assert s.events == [] and s.ctl.equipment.rejected == {"unknown_port": 1}
