"""The road's schedule entries in the controller's store, and the book compiled from them.

The flat entries operators edit (``controller.schedule_entries``) are what is stored
(``runtime.state``, one version per change, ids, names and priorities as given), and the book is
compiled from them on every change and on load. The platform port's :class:`api.platform.Schedule`
and the controller's entries meet here, in :func:`load_schedules` and :func:`entries_of`, and
nowhere else in the runtime.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.platform import Schedule
from controller.errors import ScheduleError
from controller.schedule import ScheduleBook
from controller.schedule_entries import book_to_entries, entries_to_book
from streetlight.registry import Road

if TYPE_CHECKING:
    from .state import ControllerStore

log = logging.getLogger(__name__)
__all__ = ["book_to_entries", "entries_of", "entries_to_book", "import_schedule_file", "load_book", "load_entries",
           "load_schedules"]


def load_entries(store: ControllerStore, road: Road) -> list[dict[str, Any]]:
    """The road's schedule entries as last stored; the default book's when none are."""
    stored = store.schedule(road.id)
    if stored is None:
        return book_to_entries(road, ScheduleBook.default())
    if stored.entries is None:  # stored as a compiled book by an older release
        return book_to_entries(road, ScheduleBook.from_mapping(stored.book, f"schedules[{road.id}]"))
    return stored.entries


def load_schedules(store: ControllerStore, road: Road) -> list[Schedule]:
    """The road's schedules as the port shows them: :func:`load_entries`, typed."""
    return [Schedule.from_dict(e) for e in load_entries(store, road)]


def entries_of(schedules: list[Schedule]) -> list[dict[str, Any]]:
    """Schedules as the controller's entries, to compile and store (``ControlService.set_schedules``)."""
    return [s.to_dict() for s in schedules]


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
