"""Dimming schedules: steps at local times and at dusk/dawn, calendar exceptions, versions.

A schedule applies to the road, a segment or a pole; the most specific one wins. Steps are
anchored to a *night*: the night of local date D runs from noon on D to noon on D+1, so
``dusk`` is D's dusk, ``22:00`` is on D, ``00:00`` and ``dawn`` are on D+1. Before a night's first
step the previous night's last level holds (usually 0 after dawn). :func:`night_of` is that rule,
and a calendar exception for date D is in force for the night of D (so at 03:00 on D+1 too).

The step-time grammar is the protocol's (:func:`streetlight.protocol.parse_step_time`); the
default steps are the road's default schedule (:func:`streetlight.protocol.default_schedule`).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from streetlight.protocol import Config, Fallback, ScheduleStep, StepTime, default_schedule, parse_step_time
from streetlight.registry import Pole

from .astro import AstroClock
from .errors import ScheduleError, TableError
from .tables import schedule_data

NOON_MIN = 12 * 60
NIGHT_SHIFT_MS = NOON_MIN * 60_000


@lru_cache(maxsize=32)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def night_of(ts_ms: int, tz: str | tzinfo) -> date:
    """The night ``ts_ms`` belongs to: the local date of its evening (a night runs noon to noon),
    so 03:00 on D+1 is the night of D. Schedules and calendar exceptions are chosen by it."""
    zone = _zone(tz) if isinstance(tz, str) else tz
    return datetime.fromtimestamp((ts_ms - NIGHT_SHIFT_MS) / 1000, zone).date()


def _parse_at(at: str) -> StepTime:
    try:
        return parse_step_time(at)
    except ValueError as exc:
        raise ScheduleError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Step:
    at: str  # HH:MM, dusk, dawn, dusk+15, dawn-10 (the protocol's fallback syntax)
    level: float
    time: StepTime = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "time", _parse_at(self.at))
        if not 0 <= self.level <= 100:
            raise ScheduleError(f"step level {self.level}: expected 0 … 100")

    def instant_ms(self, night: date, astro: AstroClock) -> int:
        t = self.time
        if t.anchor == "dusk":
            return astro.dusk_ms(night) + t.minutes * 60_000
        if t.anchor == "dawn":
            return astro.dawn_ms(night + timedelta(days=1)) + t.minutes * 60_000
        day = night if t.minutes >= NOON_MIN else night + timedelta(days=1)
        return astro.local_midnight_ms(day) + t.minutes * 60_000


def default_steps() -> tuple[Step, ...]:
    """The road's default schedule (``streetlight/data/default_schedule.yaml``) as steps."""
    return tuple(Step(at, level) for at, level in default_schedule().pairs())


@dataclass(frozen=True, slots=True)
class CalendarException:
    """Other steps on the nights from ``start`` to ``end`` inclusive (holidays, events)."""

    name: str
    start: date
    end: date
    steps: tuple[Step, ...]

    def covers(self, night: date) -> bool:
        return self.start <= night <= self.end


@dataclass(frozen=True, slots=True)
class Schedule:
    id: str
    scope: Literal["road", "segment", "pole"]
    target: str | None  # segment or pole id; None for the road
    steps: tuple[Step, ...]
    exceptions: tuple[CalendarException, ...] = ()

    def steps_for(self, night: date) -> tuple[Step, ...]:
        for exc in self.exceptions:
            if exc.covers(night):
                return exc.steps
        return self.steps


# --- the file format (pydantic at the edge) -----------------------------------------------

class _StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: str
    level: float = Field(ge=0, le=100)

    @field_validator("at")
    @classmethod
    def _at(cls, v: str) -> str:
        parse_step_time(v)
        return v


class _ExceptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    start: date
    end: date
    steps: list[_StepIn] = Field(min_length=1)


class _ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    scope: Literal["road", "segment", "pole"] = "road"
    target: str | None = None
    steps: list[_StepIn] | None = Field(None, min_length=1)  # none: the road's default schedule
    exceptions: list[_ExceptionIn] = Field(default_factory=list)


class _AstroIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    depression_deg: float = Field(3.0, ge=-5, le=18)


class _BookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(1, ge=0)
    astro: _AstroIn = Field(default_factory=_AstroIn)
    schedules: list[_ScheduleIn] = Field(min_length=1)


def _steps(items: list[_StepIn]) -> tuple[Step, ...]:
    return tuple(Step(s.at, s.level) for s in items)


@dataclass
class ScheduleBook:
    """All schedules of a road at one version; evaluate with :meth:`level_at`."""

    schedules: list[Schedule]
    version: int = 1
    depression_deg: float = 3.0
    _cache: dict[tuple[str, date], tuple[list[int], list[float]]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not any(s.scope == "road" for s in self.schedules):
            raise ScheduleError("a schedule book needs one road-wide schedule (scope: road)")

    @classmethod
    def from_mapping(cls, data: Any, source: str = "schedule") -> ScheduleBook:
        try:
            book = _BookIn.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise TableError(source, problems) from exc
        scheds = [
            Schedule(s.id, s.scope, s.target, _steps(s.steps) if s.steps else default_steps(),
                     tuple(CalendarException(e.name, e.start, e.end, _steps(e.steps)) for e in s.exceptions))
            for s in book.schedules
        ]
        return cls(scheds, book.version, book.astro.depression_deg)

    @classmethod
    def default(cls, path: str = "") -> ScheduleBook:
        name, data = schedule_data(path)
        return cls.from_mapping(data, name)

    def to_mapping(self) -> dict[str, Any]:
        def steps(ss: tuple[Step, ...]) -> list[dict[str, Any]]:
            return [{"at": s.at, "level": s.level} for s in ss]

        return {
            "version": self.version,
            "astro": {"depression_deg": self.depression_deg},
            "schedules": [
                {"id": s.id, "scope": s.scope, "target": s.target, "steps": steps(s.steps),
                 "exceptions": [{"name": e.name, "start": e.start.isoformat(), "end": e.end.isoformat(),
                                 "steps": steps(e.steps)} for e in s.exceptions]}
                for s in self.schedules
            ],
        }

    def road_schedule(self) -> Schedule:
        return next(s for s in self.schedules if s.scope == "road")

    def for_pole(self, pole: Pole) -> Schedule:
        """The most specific schedule: the pole's, else its segment's, else the road's."""
        best = None
        for s in self.schedules:
            if s.scope == "pole" and s.target == pole.id:
                return s
            if s.scope == "segment" and s.target == pole.segment:
                best = s
        return best or self.road_schedule()

    def _night_steps(self, sched: Schedule, night: date, astro: AstroClock) -> tuple[list[int], list[float]]:
        key = (sched.id, night)
        hit = self._cache.get(key)
        if hit is None:
            pairs = sorted((s.instant_ms(night, astro), s.level) for s in sched.steps_for(night))
            hit = ([p[0] for p in pairs], [p[1] for p in pairs])
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def level_at(self, sched: Schedule, ts_ms: int, astro: AstroClock) -> float:
        """The schedule's level at ``ts_ms``."""
        night = night_of(ts_ms, astro.tz)
        for d in (night, night - timedelta(days=1), night - timedelta(days=2)):
            times, levels = self._night_steps(sched, d, astro)
            i = bisect.bisect_right(times, ts_ms)
            if i:
                return levels[i - 1]
        return 0.0

    def fallback_config(self, version: int, report_interval_s: int, after_s: int = 300) -> Config:
        """The road schedule as the poles' own fallback (calendar exceptions cannot be sent)."""
        steps = [ScheduleStep(at=s.at, level=s.level) for s in self.road_schedule().steps]
        return Config(version=version, report_interval_s=report_interval_s,
                      fallback=Fallback(after_s=after_s, schedule=steps))
