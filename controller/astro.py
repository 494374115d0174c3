"""The astronomical clock of a road: dusk, dawn and the sun's elevation at its position.

Uses the ``astral`` library. Dusk and dawn are when the sun is ``depression_deg`` below the
horizon (0.833 = sunset/sunrise, 6 = civil twilight), a table value.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from astral import Observer
from astral.sun import dawn, dusk, elevation

from .errors import ScheduleError


class AstroClock:
    def __init__(self, lat: float, lon: float, tz: str, depression_deg: float = 3.0) -> None:
        self.observer = Observer(latitude=lat, longitude=lon)
        self.tz = ZoneInfo(tz)
        self.depression = depression_deg
        self._dusk = lru_cache(maxsize=64)(self._dusk_uncached)
        self._dawn = lru_cache(maxsize=64)(self._dawn_uncached)
        self._elev = lru_cache(maxsize=4096)(self._elev_uncached)

    def local_date(self, ts_ms: int) -> date:
        return datetime.fromtimestamp(ts_ms / 1000, self.tz).date()

    def local_midnight_ms(self, d: date) -> int:
        return int(datetime(d.year, d.month, d.day, tzinfo=self.tz).timestamp() * 1000)

    def _dusk_uncached(self, d: date) -> int:
        try:
            return int(dusk(self.observer, d, self.depression, tzinfo=self.tz).timestamp() * 1000)
        except ValueError as exc:  # polar day/night: no dusk on this date
            raise ScheduleError(f"no dusk on {d} at this position: {exc}") from exc

    def _dawn_uncached(self, d: date) -> int:
        try:
            return int(dawn(self.observer, d, self.depression, tzinfo=self.tz).timestamp() * 1000)
        except ValueError as exc:
            raise ScheduleError(f"no dawn on {d} at this position: {exc}") from exc

    def dusk_ms(self, d: date) -> int:
        """Dusk of local date ``d`` in epoch ms."""
        return self._dusk(d)

    def dawn_ms(self, d: date) -> int:
        """Dawn of local date ``d`` in epoch ms."""
        return self._dawn(d)

    def _elev_uncached(self, minute: int) -> float:
        return float(elevation(self.observer, datetime.fromtimestamp(minute * 60, UTC)))

    def sun_elevation(self, ts_ms: int) -> float:
        """The sun's elevation in degrees at ``ts_ms`` (to the minute)."""
        return self._elev(ts_ms // 60_000)
