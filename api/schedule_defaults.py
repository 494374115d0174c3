"""The schedule entry a road starts with when nothing else is configured: the road's default
schedule (``streetlight/data/default_schedule.yaml``), the same steps the poles fall back to."""

from __future__ import annotations

from controller.schedule import default_steps
from streetlight.protocol import default_schedule
from streetlight.registry import Road

from .platform import Schedule


def default_schedules(road: Road) -> list[Schedule]:
    return [Schedule(id=f"{road.id}-default", road=road.id, name=default_schedule().name, kind="default",
                     steps=default_steps())]
