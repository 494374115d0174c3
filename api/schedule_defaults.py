"""The schedule entry a road starts with when nothing else is configured: the road's default
schedule (``streetlight/data/default_schedule.yaml``), the same steps the poles fall back to."""

from __future__ import annotations

from typing import Any

from streetlight.protocol import default_schedule
from streetlight.registry import Road


def default_schedules(road: Road) -> list[dict[str, Any]]:
    default = default_schedule()
    return [{
        "id": f"{road.id}-default", "road": road.id, "name": default.name, "kind": "default",
        "segments": None, "dates": [], "priority": 0,
        "steps": [{"at": at, "level": level} for at, level in default.pairs()],
    }]
