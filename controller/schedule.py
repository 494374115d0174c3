"""Dimming schedules: steps at local times and at dusk/dawn, calendar exceptions, versions.

A schedule applies to the road, a segment or a pole; the most specific one wins. Steps are
anchored to a *night*: the night of local date D runs from noon on D to noon on D+1, so
``dusk`` is D's dusk, ``22:00`` is on D, ``00:00`` and ``dawn`` are on D+1. Before a night's first
step the previous night's last level holds (usually 0 after dawn).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streetlight.protocol import Config, Fallback, ScheduleStep
from streetlight.registry import Pole

from .astro import AstroClock
from .errors import ScheduleError, TableError
from .tables import schedule_data

AT_RE = re.compile(r"^(?:(?P<hh>[01]\d|2[0-3]):(?P<mm>[0-5]\d)|(?P<sun>dusk|dawn)(?P<off>[+-]\d{1,3})?)$")
NOON_MIN = 12 * 60


@dataclass(frozen=True, slots=True)
class Step:
    at: str  # HH:MM, dusk, dawn, dusk+15, dawn-10 (the protocol's fallback syntax)
    level: float

    def __post_init__(self) -> None:
        if not AT_RE.match(self.at):
            raise ScheduleError(f"step time {self.at!r}: expected HH:MM, dusk, dawn, dusk+N or dawn-N")
        if not 0 <= self.level <= 100:
            raise ScheduleError(f"step level {self.level}: expected 0 … 100")

    def instant_ms(self, night: date, astro: AstroClock) -> int:
        m = AT_RE.match(self.at)
        assert m is not None  # checked in __post_init__
        if m["sun"]:
            off = int(m["off"] or 0) * 60_000
            base = astro.dusk_ms(night) if m["sun"] == "dusk" else astro.dawn_ms(night + timedelta(days=1))
            return base + off
        minutes = int(m["hh"]) * 60 + int(m["mm"])
        day = night if minutes >= NOON_MIN else night + timedelta(days=1)
        return astro.local_midnight_ms(day) + minutes * 60_000


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
    at: str = Field(pattern=AT_RE.pattern)
    level: float = Field(ge=0, le=100)


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
    steps: list[_StepIn] = Field(min_length=1)
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
            Schedule(s.id, s.scope, s.target, _steps(s.steps),
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
        night = astro.local_date(ts_ms - 12 * 3_600_000)
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
