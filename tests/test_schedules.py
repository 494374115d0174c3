"""Schedules have one default, one step-time grammar, one rule for the night in force, one store."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from api.memory_platform import MemoryPlatform
from api.platform import Schedule, active_schedule_ids
from api.schedule_defaults import default_schedules
from controller.astro import AstroClock
from controller.errors import ScheduleError
from controller.schedule import ScheduleBook, Step, night_of
from runtime.live_platform import LivePlatform
from runtime.schedules import book_to_entries, entries_to_book
from simulators.engine import DEFAULT_CONFIG
from simulators.schedule import DEFAULT_SCHEDULE, step_time_ms
from streetlight.clock import parse_local
from streetlight.protocol import ScheduleStep, StepTime, default_schedule, parse_step_time
from streetlight.registry import load_road
from streetlight.settings import Settings

ROAD = load_road("nanhuan-1")
EXC_DATE = "2026-11-24"
EXCEPTION = {"name": "Lantern walk", "kind": "exception", "segments": None, "dates": [EXC_DATE], "priority": 10,
             "steps": [{"at": "dusk", "level": 100}, {"at": "dawn", "level": 0}]}
ON_THE_DATE = parse_local(f"{EXC_DATE} 03:00")  # still the night before: the default runs
MORNING_AFTER = parse_local("2026-11-25 03:00")  # the exception's night: it runs until noon


# --- one default ------------------------------------------------------------------------------

def test_the_default_schedule_is_the_same_for_the_controller_the_api_and_the_poles() -> None:
    shared = default_schedule().pairs()
    assert shared == (("dusk", 100.0), ("22:00", 75.0), ("00:00", 50.0), ("dawn", 0.0))
    book = ScheduleBook.default()
    controller = tuple((s.at, s.level) for s in book.road_schedule().steps)
    sent_to_poles = tuple((s.at, s.level) for s in book.fallback_config(1, 10).fallback.schedule)
    api_entry = tuple((s.at, s.level) for s in default_schedules(ROAD)[0].steps)
    live_entry = next(e for e in book_to_entries(ROAD, book) if e["kind"] == "default" and not e["segments"])
    live = tuple((s["at"], s["level"]) for s in live_entry["steps"])
    simulated = DEFAULT_SCHEDULE
    simulated_config = tuple((s.at, s.level) for s in DEFAULT_CONFIG.fallback.schedule)
    assert controller == sent_to_poles == api_entry == live == simulated == simulated_config == shared


# --- one step-time grammar ----------------------------------------------------------------------

@pytest.mark.parametrize(("at", "parsed"), [
    ("00:00", StepTime("clock", 0)), ("22:30", StepTime("clock", 1350)), ("23:59", StepTime("clock", 1439)),
    ("dusk", StepTime("dusk", 0)), ("dusk+15", StepTime("dusk", 15)), ("dawn-10", StepTime("dawn", -10)),
    ("dawn+120", StepTime("dawn", 120)),
])
def test_step_times_parse_to_an_anchor_and_minutes(at: str, parsed: StepTime) -> None:
    assert parse_step_time(at) == parsed
    assert ScheduleStep(at=at, level=50.0).at == at
    assert Step(at, 50.0).time == parsed
    step_time_ms(at, date(2026, 11, 24), 8 * 3600, ROAD.lat, ROAD.lon)


@pytest.mark.parametrize("at", ["24:00", "7:00", "12:60", "noon", "dusk+1000", "dusk 15", "DAWN", "", "22:00 "])
def test_every_reader_of_step_times_rejects_the_same_bad_ones(at: str) -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_step_time(at)
    with pytest.raises(ValidationError):
        ScheduleStep(at=at, level=50.0)
    with pytest.raises(ScheduleError, match="HH:MM"):
        Step(at, 50.0)
    with pytest.raises(ValueError, match="HH:MM"):
        step_time_ms(at, date(2026, 11, 24), 8 * 3600, ROAD.lat, ROAD.lon)


# --- one rule for the schedule in force ----------------------------------------------------------

def test_a_night_runs_noon_to_noon() -> None:
    assert night_of(ON_THE_DATE, ROAD.timezone) == date(2026, 11, 23)
    assert night_of(MORNING_AFTER, ROAD.timezone) == date(2026, 11, 24)
    assert night_of(parse_local(f"{EXC_DATE} 11:59"), ROAD.timezone) == date(2026, 11, 23)
    assert night_of(parse_local(f"{EXC_DATE} 12:00"), ROAD.timezone) == date(2026, 11, 24)


def test_the_api_reports_the_exception_the_controller_is_running() -> None:
    schedules = [*default_schedules(ROAD), Schedule.from_dict({**EXCEPTION, "id": "lantern", "road": ROAD.id})]
    entries = [s.to_dict() for s in schedules]
    default_id = default_schedules(ROAD)[0].id
    # the controller: the exception's steps (100 % all night) at 03:00 the morning after, the
    # default's (50 % after midnight) at 03:00 on the date itself
    book = entries_to_book(ROAD, entries, 3.0, 2)
    astro = AstroClock(ROAD.lat, ROAD.lon, ROAD.timezone, book.depression_deg)
    assert book.level_at(book.road_schedule(), MORNING_AFTER, astro) == 100.0
    assert book.level_at(book.road_schedule(), ON_THE_DATE, astro) == 50.0
    # the rule the API uses, and the in-memory platform behind the API
    assert set(active_schedule_ids(ROAD, schedules, MORNING_AFTER).values()) == {"lantern"}
    assert set(active_schedule_ids(ROAD, schedules, ON_THE_DATE).values()) == {default_id}
    mem = MemoryPlatform(ROAD)
    try:
        sid = mem.put_schedule(ROAD.id, Schedule.from_dict(EXCEPTION), "op").id
        assert set(mem.active_schedules(ROAD.id, MORNING_AFTER).values()) == {sid}
        assert set(mem.active_schedules(ROAD.id, ON_THE_DATE).values()) == {default_id}
    finally:
        mem.close()


# --- stored once ---------------------------------------------------------------------------------

def _platform(data_dir: Path) -> LivePlatform:
    # not started: schedules are read and written without the broker or the database
    return LivePlatform(Settings(data_dir=data_dir), [ROAD], report_interval_s=10)


def test_a_restarted_platform_loads_the_schedules_it_stored(tmp_path: Path) -> None:
    first = _platform(tmp_path)
    try:
        before = first.schedules(ROAD.id)
        late = first.put_schedule(ROAD.id, Schedule(name="S4 late dim", kind="default", segments=("S4",), priority=5,
                                                    steps=(Step("dusk", 100), Step("23:00", 60), Step("dawn", 0))),
                                  "op")
        first.put_schedule(ROAD.id, Schedule.from_dict({**EXCEPTION, "id": "lantern"}), "op")
        first.delete_schedule(ROAD.id, str(before[-1].id), "op")
        stored = first.schedules(ROAD.id)
        version = first.control.roads[ROAD.id].ctl.schedules.version
    finally:
        first.store.close()
    assert not (tmp_path / "schedules.json").exists()
    again = _platform(tmp_path)
    try:
        assert again.schedules(ROAD.id) == stored
        assert late in stored and any(e.id == "lantern" for e in stored)
        assert late.id and late.road == ROAD.id and late.dates == ()
        assert before[-1].id not in {e.id for e in stored}
        book = again.control.roads[ROAD.id].ctl.schedules
        assert book.version == version
        s4 = book.for_pole(ROAD.poles_of_segment("S4")[0])
        assert s4.scope == "segment" and [st.level for st in s4.steps] == [100.0, 60.0, 0.0]
        assert set(again.active_schedules(ROAD.id, MORNING_AFTER).values()) == {"lantern"}
    finally:
        again.store.close()


def test_schedules_an_older_release_kept_in_a_json_file_are_moved_into_the_store(tmp_path: Path) -> None:
    entries = [*book_to_entries(ROAD, ScheduleBook.default()), {**EXCEPTION, "id": "lantern", "road": ROAD.id}]
    (tmp_path / "schedules.json").write_text(json.dumps({ROAD.id: entries}))
    first = _platform(tmp_path)
    try:
        assert [e.to_dict() for e in first.schedules(ROAD.id)] == entries
    finally:
        first.store.close()
    assert not (tmp_path / "schedules.json").exists() and (tmp_path / "schedules.json.imported").exists()
    again = _platform(tmp_path)
    try:
        assert [e.to_dict() for e in again.schedules(ROAD.id)] == entries
    finally:
        again.store.close()
