"""The operators' flat schedule entries and the controller's schedule book, both ways (pure).

Operators list schedules as flat entries (a default or a calendar exception, for every segment or
some); the controller evaluates a book of road/segment schedules with dated exceptions. Every
platform compiles the entries with :func:`entries_to_book`, so the rules an edit must keep (one
road-wide default, known segments) are the same wherever the entries are kept.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from streetlight.registry import Road

from .schedule import CalendarException, Schedule, ScheduleBook, Step


def book_to_entries(road: Road, book: ScheduleBook) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for s in book.schedules:
        segments = [s.target] if s.scope == "segment" and s.target else None
        if s.scope == "pole":
            pole = road.pole(s.target) if s.target and road.has_pole(s.target) else None
            segments = [pole.segment] if pole else None
        out.append({"id": s.id, "road": road.id, "name": s.id.replace("-", " ").title(), "kind": "default",
                    "segments": segments, "dates": [], "priority": {"road": 0, "segment": 1, "pole": 2}[s.scope],
                    "steps": [{"at": st.at, "level": st.level} for st in s.steps]})
        for e in s.exceptions:
            days = [date.fromordinal(d).isoformat() for d in range(e.start.toordinal(), e.end.toordinal() + 1)]
            out.append({"id": f"{s.id}~{_slug(e.name)}", "road": road.id, "name": e.name, "kind": "exception",
                        "segments": segments, "dates": days, "priority": 10,
                        "steps": [{"at": st.at, "level": st.level} for st in e.steps]})
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "exception"


def _steps(items: list[dict[str, Any]]) -> tuple[Step, ...]:
    return tuple(Step(str(s["at"]), float(s["level"])) for s in items)


def entries_to_book(road: Road, entries: list[dict[str, Any]], depression_deg: float, version: int) -> ScheduleBook:
    """Compile flat entries: the highest-priority road-wide default is the road schedule, a default
    for some segments becomes their schedule, and each exception is attached to the schedules of
    the segments it names (every schedule when it names none)."""
    defaults = sorted((e for e in entries if e["kind"] == "default"), key=lambda e: e.get("priority", 0))
    road_default = [e for e in defaults if not e.get("segments")]
    if not road_default:
        raise ValueError("keep one default schedule for every segment (segments: null): it is what the "
                         "poles run by themselves when they lose the platform")
    road_steps = _steps(road_default[-1]["steps"])
    per_segment: dict[str, tuple[str, tuple[Step, ...]]] = {}
    for e in defaults:
        for seg in e.get("segments") or []:
            per_segment[seg] = (e["id"], _steps(e["steps"]))
    exceptions: dict[str | None, list[CalendarException]] = {}
    for e in sorted((e for e in entries if e["kind"] == "exception"), key=lambda e: -e.get("priority", 0)):
        days = sorted(date.fromisoformat(d) for d in e.get("dates") or [])
        excs = [CalendarException(e["name"], d, d, _steps(e["steps"])) for d in days]
        targets = e.get("segments") or [None]
        for seg in targets:
            exceptions.setdefault(seg, []).extend(excs)
            if seg is not None and seg not in per_segment:
                per_segment[seg] = (f"{road_default[-1]['id']}@{seg}", road_steps)
    road_excs = exceptions.get(None, [])
    schedules = [Schedule(road_default[-1]["id"], "road", None, road_steps, tuple(road_excs))]
    for seg, (sid, steps) in per_segment.items():
        if seg not in road.segment_by_id:
            raise KeyError(seg)
        schedules.append(Schedule(f"{sid}@{seg}" if "@" not in sid else sid, "segment", seg, steps,
                                  tuple(exceptions.get(seg, []) + road_excs)))
    return ScheduleBook(schedules, version, depression_deg)
