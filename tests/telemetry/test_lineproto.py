from __future__ import annotations

from streetlight.protocol import LampFaultEvent, Telemetry, VehicleEvent
from streetlight.registry import load_road
from telemetry import event_line, point_time_ns, tag_set, telemetry_line


def test_telemetry_line_tags_fields_and_time() -> None:
    road = load_road("nanhuan-1")
    p = road.poles[0]
    tags = tag_set(road.id, p, p.id)
    t = Telemetry(ts=1_700_000_000_123, seq=7, dim=70, power_w=84.5, voltage_v=230.0, vehicles=3)
    line = telemetry_line(tags, t)
    assert line.startswith(f"telemetry,feeder={p.feeder},pole={p.id},road=nanhuan-1,segment={p.segment},side={p.side} ")
    assert "seq=7i" in line and "dim=70.0" in line and "vehicles=3i" in line and "power_w=84.5" in line
    assert "pf=" not in line  # absent optional readings are not written
    assert line.endswith(f" {1_700_000_000_123_000_007}")


def test_point_time_is_stable_and_distinct() -> None:
    assert point_time_ns(1000, 5) == point_time_ns(1000, 5)
    assert point_time_ns(1000, 5) != point_time_ns(1000, 6)


def test_event_line_escapes_strings() -> None:
    e = LampFaultEvent(ts=1, seq=2, code='E "7", x=1')
    line = event_line(",pole=NH-001,road=r", e)
    assert ',type=lamp_fault seq=2i,code="E \\"7\\", x=1" ' in line
    v = VehicleEvent(ts=1, seq=3, speed_kmh=50, direction=-1)
    assert "direction=-1i" in event_line(",pole=a,road=r", v)
