"""Pure parts of the wiring: override scopes, translating schedules (the scenario judge is
tested in tests/simulators/test_fault_judge.py)."""

from __future__ import annotations

import pytest

from controller.schedule import ScheduleBook
from runtime.control import _scopes
from runtime.schedules import book_to_entries, entries_to_book
from streetlight.registry import load_road


def test_operator_overrides_use_the_fewest_scopes() -> None:
    road = load_road("nanhuan-1")
    assert _scopes(road, road.pole_ids) == [("road", None)]
    s2 = [p.id for p in road.poles_of_segment("S2")]
    assert _scopes(road, s2) == [("segment", "S2")]
    assert _scopes(road, [*s2, "NH-001"]) == [("segment", "S2"), ("pole", "NH-001")]


def test_schedules_round_trip_between_api_entries_and_the_book() -> None:
    road = load_road("nanhuan-1")
    book = ScheduleBook.default()
    entries = book_to_entries(road, book)
    assert any(e["kind"] == "default" and e["segments"] is None for e in entries)
    again = entries_to_book(road, entries, book.depression_deg, book.version + 1)
    assert [s.steps for s in again.schedules if s.scope == "road"] == [book.road_schedule().steps]
    # an exception for S3 on one date gives S3 its own schedule with that date
    extra = {"id": "fest", "road": road.id, "name": "Lantern festival", "kind": "exception", "segments": ["S3"],
             "dates": ["2027-02-20"], "priority": 10, "steps": [{"at": "dusk", "level": 100}, {"at": "dawn", "level": 0}]}
    withfest = entries_to_book(road, [*entries, extra], book.depression_deg, 9)
    s3 = withfest.for_pole(road.poles_of_segment("S3")[0])
    assert s3.scope == "segment" and any(e.name == "Lantern festival" for e in s3.exceptions)
    assert withfest.for_pole(road.poles_of_segment("S1")[0]).scope == "road"


def test_a_book_needs_a_default_for_every_segment() -> None:
    road = load_road("nanhuan-1")
    only_s1 = [{"id": "x", "road": road.id, "name": "x", "kind": "default", "segments": ["S1"], "dates": [],
                "priority": 0, "steps": [{"at": "dusk", "level": 100}]}]
    with pytest.raises(ValueError, match="every segment"):
        entries_to_book(road, only_s1, 3.0, 2)
    with pytest.raises(KeyError):
        entries_to_book(road, [*book_to_entries(road, ScheduleBook.default()),
                               {**only_s1[0], "id": "y", "segments": ["S9"]}], 3.0, 2)
