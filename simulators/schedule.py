"""The pole's local fallback schedule (``fallback.schedule`` of the Config) evaluated at an instant."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from streetlight.protocol import ScheduleStep

from .daylight import dusk_dawn_ms

_AT = re.compile(r"^(?:(\d\d):(\d\d)|(dusk|dawn)([+-]\d{1,3})?)$")

DEFAULT_SCHEDULE: tuple[tuple[str, float], ...] = (("dusk", 100.0), ("22:00", 70.0), ("00:00", 50.0), ("dawn", 0.0))


def step_time_ms(at: str, day: date, utc_offset_s: int, lat: float, lon: float) -> int:
    """The instant of a schedule step on a local calendar day."""
    m = _AT.match(at)
    if not m:
        raise ValueError(f"bad schedule time {at!r}")
    if m.group(1) is not None:
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() - utc_offset_s
        return int((midnight + int(m.group(1)) * 3600 + int(m.group(2)) * 60) * 1000)
    dusk, dawn = dusk_dawn_ms(lat, lon, day)
    base = dusk if m.group(3) == "dusk" else dawn
    return base + int(m.group(4) or 0) * 60_000


def schedule_level(
    steps: tuple[tuple[str, float], ...], t_ms: int, utc_offset_s: int, lat: float, lon: float
) -> float:
    """Level of the latest step at or before ``t_ms``, looking at today's and yesterday's steps."""
    if not steps:
        return 0.0
    today = datetime.fromtimestamp(t_ms / 1000 + utc_offset_s, tz=UTC).date()
    best_ts, best_level = -1, 0.0
    for day in (today - timedelta(days=1), today):
        for at, level in steps:
            ts = step_time_ms(at, day, utc_offset_s, lat, lon)
            if best_ts < ts <= t_ms:
                best_ts, best_level = ts, level
    return best_level


def steps_of(schedule: list[ScheduleStep]) -> tuple[tuple[str, float], ...]:
    return tuple((s.at, float(s.level)) for s in schedule)
