"""Pure parts of the wiring: judging a scenario's outcome, translating schedules."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from controller.schedule import ScheduleBook
from runtime.control import _scopes
from runtime.outcome import compare, format_table
from runtime.schedules import book_to_entries, entries_to_book
from streetlight.registry import load_road


@dataclass
class Exp:
    type: str
    pole: str | None
    span: tuple[str, str] | None
    within_reports: int
    after_ms: int


def alert(fid: str, type_: str, state: str, seen: int, pole: str | None = None, span: list[str] | None = None) -> dict:
    return {"fault_id": fid, "type": type_, "state": state, "pole": pole, "span": span,
            "first_seen_ts": seen - 30_000, "last_seen_ts": seen}


def test_a_fault_at_the_right_place_in_time_passes() -> None:
    out = compare([Exp("cable_fault", None, ("NH-061", "NH-060"), 3, 1_000_000)],
                  [alert("F-1", "cable_fault", "open", 1_020_000, span=["NH-061", "NH-060"]),
                   alert("F-1", "cable_fault", "resolved", 2_000_000, span=["NH-061", "NH-060"])], 10)
    assert out.passed and out.rows[0].delay_reports == 2.0


def test_late_wrong_place_and_false_alarms_fail() -> None:
    late = compare([Exp("lamp_failure", "NH-012", None, 2, 0)], [alert("F-1", "lamp_failure", "open", 50_000, "NH-012")], 10)
    assert not late.passed and "later" in late.rows[0].note
    wrong = compare([Exp("lamp_failure", "NH-012", None, 2, 0)], [alert("F-1", "lamp_failure", "open", 10_000, "NH-013")], 10)
    assert not wrong.passed and wrong.rows[0].reported == "pole NH-013"
    assert [a["pole"] for a in wrong.false_alarms] == ["NH-013"]
    table = format_table(wrong)
    assert "MISS" in table and "FALSE ALARM" in table


def test_a_quiet_night_with_no_alert_passes_and_one_alert_fails() -> None:
    assert compare([], [], 10).passed
    assert not compare([], [alert("F-9", "comm_loss", "open", 5, "NH-001")], 10).passed


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
