"""Translate between the API's flat schedule list and the controller's schedule book.

The API lists schedules as flat entries (a default or a calendar exception, for every segment or
some); the controller evaluates a book of road/segment schedules with dated exceptions. The flat
list is what operators edit, so it is what is stored (``runtime.state``, one version per change,
ids, names and priorities as given) and the book is compiled from it on every change and on load.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.errors import ScheduleError
from controller.schedule import CalendarException, Schedule, ScheduleBook, Step
from streetlight.registry import Road

if TYPE_CHECKING:
    from .state import ControllerStore

log = logging.getLogger(__name__)


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


def load_entries(store: ControllerStore, road: Road) -> list[dict[str, Any]]:
    """The road's schedule entries as last stored; the default book's when none are."""
    stored = store.schedule(road.id)
    if stored is None:
        return book_to_entries(road, ScheduleBook.default())
    if stored.entries is None:  # stored as a compiled book by an older release
        return book_to_entries(road, ScheduleBook.from_mapping(stored.book, f"schedules[{road.id}]"))
    return stored.entries


def load_book(store: ControllerStore, road: Road) -> ScheduleBook:
    """The book the controller runs: compiled from the last stored entries, else the default book."""
    stored = store.schedule(road.id)
    if stored is None:
        return ScheduleBook.default()
    if stored.entries is None:
        return ScheduleBook.from_mapping(stored.book, f"schedules[{road.id}]")
    try:
        return entries_to_book(road, stored.entries, stored.depression_deg, stored.version)
    except KeyError as err:
        raise ScheduleError(
            f"stored schedules of {road.id} (version {stored.version}) name segment {err.args[0]!r}, which "
            f"the road's registry no longer has; put the registry back or store schedules without it"
        ) from None


def import_schedule_file(store: ControllerStore, roads: list[Road], path: Path) -> list[str]:
    """Move schedule entries an older release kept in ``schedules.json`` beside the store into the
    store, once; the file is renamed ``*.imported``. Returns the roads imported."""
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        log.warning("could not read %s (%s); schedules come from the store alone", path, err)
        return []
    done = []
    for road in roads:
        entries = data.get(road.id) if isinstance(data, dict) else None
        stored = store.schedule(road.id)
        if not isinstance(entries, list) or stored is not None and stored.entries is not None:
            continue
        try:
            entries_to_book(road, entries, 3.0, 1)  # only entries that still compile are taken
        except (KeyError, ValueError, TypeError, ScheduleError) as err:
            log.warning("schedules of %s in %s do not compile (%s); not imported", road.id, path, err)
            continue
        depression = stored.depression_deg if stored else ScheduleBook.default().depression_deg
        store.save_schedule(road.id, entries, depression,
                            "import", int(path.stat().st_mtime * 1000), stored.version + 1 if stored else 1)
        done.append(road.id)
    path.rename(path.with_name(path.name + ".imported"))
    return done
