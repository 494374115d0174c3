"""The default dimming schedule of a road, read from ``streetlight/data/default_schedule.yaml``.

It has one home so that the platform's default, the API's default entry and the poles' fallback
cannot drift apart; each of them is derived from :func:`default_schedule`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .messages import ScheduleStep

FILE = "default_schedule.yaml"


@dataclass(frozen=True, slots=True)
class DefaultSchedule:
    name: str
    steps: tuple[ScheduleStep, ...]

    def pairs(self) -> tuple[tuple[str, float], ...]:
        """The steps as ``(at, level)`` pairs."""
        return tuple((s.at, float(s.level)) for s in self.steps)


class _FileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    steps: list[ScheduleStep] = Field(min_length=1, max_length=48)


@lru_cache(maxsize=1)
def default_schedule() -> DefaultSchedule:
    """The shipped default schedule (read and checked once)."""
    text = (resources.files("streetlight") / "data" / FILE).read_text(encoding="utf-8")
    try:
        data = _FileIn.model_validate(yaml.safe_load(text), strict=False)
    except ValidationError as exc:
        # a broken shipped file is a packaging error: say which file and what is wrong
        raise ValueError(f"streetlight/data/{FILE}: {exc}") from exc
    return DefaultSchedule(data.name, tuple(data.steps))
