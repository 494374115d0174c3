"""Daylight at each pole: solar elevation (NOAA's approximation) and the illuminance it gives.

Dusk and dawn for the fallback schedule are sunset and sunrise at the road's reference point, from
``astral`` (the same definition the platform's astronomical clock uses for ``dusk``/``dawn``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache

import numpy as np
from astral import Observer
from astral.sun import sunrise, sunset


def solar_elevation_deg(t_ms: int, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Sun elevation above the horizon in degrees, per position, at one instant (±0.5°)."""
    jd = t_ms / 86_400_000.0 + 2440587.5
    n = jd - 2451545.0
    mean_long = np.radians((280.460 + 0.9856474 * n) % 360)
    g = np.radians((357.528 + 0.9856003 * n) % 360)
    ecl_long = mean_long + np.radians(1.915) * np.sin(g) + np.radians(0.020) * np.sin(2 * g)
    obliq = np.radians(23.439 - 0.0000004 * n)
    decl = np.arcsin(np.sin(obliq) * np.sin(ecl_long))
    ra = np.arctan2(np.cos(obliq) * np.sin(ecl_long), np.cos(ecl_long))
    gmst_h = (18.697374558 + 24.06570982441908 * n) % 24
    hour_angle = np.radians(gmst_h * 15.0 + lon) - ra
    la = np.radians(lat)
    sin_el = np.sin(la) * np.sin(decl) + np.cos(la) * np.cos(decl) * np.cos(hour_angle)
    return np.degrees(np.arcsin(np.clip(sin_el, -1.0, 1.0)))


def ambient_lux(elevation_deg: np.ndarray, cloud: np.ndarray | float = 1.0) -> np.ndarray:
    """Horizontal illuminance for a sun elevation: ~100 klx at zenith, ~400 lx at sunset, dark below -6°."""
    el = np.asarray(elevation_deg, dtype=float)
    day = 400.0 + 110_000.0 * np.sin(np.radians(np.clip(el, 0, 90))) ** 1.15
    # civil twilight: roughly a factor of ten per two degrees from 400 lx at the horizon
    twilight = 400.0 * 10.0 ** (np.clip(el, -6, 0) / 2.0)
    lux = np.where(el >= 0, day, np.where(el > -6, twilight, 0.4))
    return lux * cloud


@lru_cache(maxsize=512)
def dusk_dawn_ms(lat: float, lon: float, day: date) -> tuple[int, int]:
    """(sunset, sunrise) of a calendar day at a place, epoch milliseconds."""
    obs = Observer(latitude=lat, longitude=lon)
    try:
        dusk = sunset(obs, day, tzinfo=UTC)
        dawn = sunrise(obs, day, tzinfo=UTC)
    except ValueError:  # polar day or night: pick noon +/- 6 h, the lamp still cycles daily
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        return int(noon.timestamp() * 1000) + 6 * 3_600_000, int(noon.timestamp() * 1000) - 6 * 3_600_000
    return int(dusk.timestamp() * 1000), int(dawn.timestamp() * 1000)
