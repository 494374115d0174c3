"""Persistence of faults, overrides and schedules (SQLite and PostgreSQL), and taking them up after a restart."""

from __future__ import annotations

import pytest

from controller.engine import Controller
from controller.errors import FaultStateError, UnknownFaultError
from controller.overrides import Override
from controller.schedule import ScheduleBook
from runtime.schedules import book_to_entries, load_book
from runtime.state import ControllerStore

from .road_stream import RoadStream


def test_fault_lifecycle_is_stored_with_who_and_when(state_location):
    store = ControllerStore(state_location)
    s = RoadStream()
    s.run_minutes(6)
    s.patches.append(lambda pid, d: {**d, "leakage_ma": 55.0} if pid == "NH-009" else d)
    s.step()
    for f in s.decisions[-1].faults:
        store.save_fault(f)
    fid = s.decisions[-1].faults[0].fault_id
    assert [f.fault_id for f in store.live_faults("nanhuan-1")] == [fid]
    acked = store.acknowledge(fid, "crew-3", s.now, "on our way")
    assert acked.state == "acknowledged" and acked.evidence["acknowledged_by"] == "crew-3"
    with pytest.raises(FaultStateError):
        store.acknowledge(fid, "crew-3", s.now)
    store.resolve(fid, "crew-3", s.now + 60_000, "RCD replaced")
    log = store.fault_log(fid)
    assert [(e["state"], e["actor"]) for e in log] == [("open", "controller"), ("acknowledged", "crew-3"),
                                                       ("resolved", "crew-3")]
    assert store.faults("nanhuan-1", "resolved")[0].fault_id == fid
    assert store.next_fault_seq() == int(fid[2:]) + 1
    with pytest.raises(UnknownFaultError):
        store.resolve("F-999999", "x", 1)
    store.close()


def test_restart_keeps_live_faults_and_overrides(state_location):
    path = state_location
    store = ControllerStore(path)
    s = RoadStream()
    s.run_minutes(6)
    s.silenced |= set(s.road.feeder_by_id["C2-L1"].poles[15:])
    s.run(5)
    for f in s.events:
        store.save_fault(f)
    ov = Override("o1", "segment", "S1", 80.0, s.now, s.now + 3_600_000, actor="op")
    store.save_override("nanhuan-1", ov)
    store.close()

    store2 = ControllerStore(path)
    s2 = RoadStream(start="2026-11-23 19:07")
    s2.ctl.restore(store2.live_faults("nanhuan-1"), store2.active_overrides("nanhuan-1", s2.now))
    s2.silenced |= set(s2.road.feeder_by_id["C2-L1"].poles[15:])
    s2.run(8)
    live = s2.ctl.open_faults()
    assert [(f.type, f.span) for f in live] == [("cable_fault", ["NH-056", "NH-055"])]
    assert live[0].fault_id == s.events[0].fault_id  # the same fault, not a new one
    # the override is back; until traffic is measured again the floor is the schedule's 100 %
    assert s2.ctl.level_of("NH-001") == (100.0, "override")
    assert s2.ctl.overrides.winner(s2.road.pole("NH-001"), s2.now).level == 80.0
    assert s2.ctl.faults.next_seq > int(live[0].fault_id[2:])


def test_schedule_versions(state_location):
    store = ControllerStore(state_location)
    road = RoadStream().road
    entries = book_to_entries(road, ScheduleBook.default())
    v1 = store.save_schedule("nanhuan-1", entries, 3.0, "planner", 1)
    late = [{**e, "name": "Late"} if e["kind"] == "default" else e for e in entries]
    v2 = store.save_schedule("nanhuan-1", late, 3.0, "planner", 2)
    assert (v1, v2) == (1, 2)
    assert store.schedule("nanhuan-1").version == 2
    assert store.schedule("nanhuan-1", 1).entries == entries  # ids and names as given, per version
    assert store.schedule("nanhuan-1").entries[0]["name"] == "Late"
    assert [v["version"] for v in store.schedule_versions("nanhuan-1")] == [1, 2]
    assert store.schedule("other-road") is None
    book = load_book(store, road)
    assert book.version == 2
    assert book.road_schedule().steps == ScheduleBook.default().road_schedule().steps
    ctl = Controller(road, schedules=book)
    assert ctl.fallback_config(2).fallback.schedule[0].at == "dusk"
