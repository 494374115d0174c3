"""The pole's local fallback schedule (``fallback.schedule`` of the Config) evaluated at an instant."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from streetlight.protocol import ScheduleStep, default_schedule, parse_step_time

from .daylight import dusk_dawn_ms

# what a pole runs before the platform has sent it a config: the road's default schedule
DEFAULT_SCHEDULE: tuple[tuple[str, float], ...] = default_schedule().pairs()


def step_time_ms(at: str, day: date, utc_offset_s: int, lat: float, lon: float) -> int:
    """The instant of a schedule step on a local calendar day (``ValueError`` for a bad time)."""
    t = parse_step_time(at)
    if t.anchor == "clock":
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() - utc_offset_s
        return int((midnight + t.minutes * 60) * 1000)
    dusk, dawn = dusk_dawn_ms(lat, lon, day)
    return (dusk if t.anchor == "dusk" else dawn) + t.minutes * 60_000


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
