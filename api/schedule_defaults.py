"""The schedule a road starts with when nothing else is configured (matches the poles' fallback)."""

from __future__ import annotations

from typing import Any

from streetlight.registry import Road


def default_schedules(road: Road) -> list[dict[str, Any]]:
    return [{
        "id": f"{road.id}-default", "road": road.id, "name": "Every night", "kind": "default",
        "segments": None, "dates": [], "priority": 0,
        "steps": [{"at": "dusk", "level": 100}, {"at": "22:00", "level": 70},
                  {"at": "00:00", "level": 50}, {"at": "dawn", "level": 0}],
    }]
