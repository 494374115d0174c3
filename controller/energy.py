"""Energy accounting: kWh per pole, segment and road per night, against full power.

Power reports are integrated per pole (trapezoids between consecutive reports, gaps longer
than ``max_gap_ms`` are not bridged). Only time when the schedule has the lights on counts, and
the baseline is the same time at rated power. Nights are keyed by the local date of the
evening (noon to noon). Compliance is the time any lit segment spent under its floor.

:meth:`EnergyMeter.state` and :meth:`EnergyMeter.restore` carry the meter across a restart of
the process that runs it (the runtime keeps the state in its operational store), so a night's
figures are the same whether or not the platform was restarted during it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from streetlight.registry import Road

from .errors import EnergyStateError

CHINA_GRID_KG_PER_KWH = 0.5703  # national grid average emission factor, 2022 (MEE, 2024)


@dataclass(frozen=True, slots=True)
class EnergyReport:
    night: str  # local date of the evening, or "all"
    pole_kwh: dict[str, float]
    segment_kwh: dict[str, float]
    road_kwh: float
    baseline_kwh: float
    savings_kwh: float
    savings_pct: float
    co2_kg: float
    minutes_under_floor: dict[str, float]  # per segment; must be zero

    def to_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


STATE_VERSION = 1


class EnergyMeter:
    def __init__(self, road: Road, interval_ms: int, grid_kg_per_kwh: float = CHINA_GRID_KG_PER_KWH) -> None:
        self.road = road
        self.n = len(road.poles)
        self.rated = road.arrays.rated_power_w
        self.seg = road.arrays.segment
        self.tz = ZoneInfo(road.timezone)
        self.grid = grid_kg_per_kwh
        self.max_gap_ms = 3 * interval_ms
        self._prev_ts = np.full(self.n, -1, dtype=np.int64)
        self._prev_p = np.zeros(self.n)
        self._prev_lit = np.zeros(self.n, dtype=bool)
        self._wh: dict[str, np.ndarray] = {}
        self._base_wh: dict[str, np.ndarray] = {}
        self._under_ms: dict[str, np.ndarray] = {}

    def night_of(self, ts_ms: int) -> str:
        return (datetime.fromtimestamp(ts_ms / 1000, self.tz) - timedelta(hours=12)).date().isoformat()

    def _rows(self, night: str) -> tuple[np.ndarray, np.ndarray]:
        if night not in self._wh:
            self._wh[night] = np.zeros(self.n)
            self._base_wh[night] = np.zeros(self.n)
        return self._wh[night], self._base_wh[night]

    def add(self, idx: np.ndarray, ts: int, power_w: np.ndarray, lit: np.ndarray) -> None:
        """Reports of several poles at one instant (a single pole is a one-element array)."""
        idx = np.asarray(idx)
        prev = self._prev_ts[idx]
        dt = ts - prev
        ok = (prev >= 0) & (dt > 0) & (dt <= self.max_gap_ms)
        # an interval counts when the schedule had the lights on at either end of it
        counted = ok & (lit | self._prev_lit[idx])
        if counted.any():
            wh, base = self._rows(self.night_of(ts))
            i = idx[counted]
            hours = dt[counted] / 3_600_000
            np.add.at(wh, i, (self._prev_p[i] + power_w[counted]) / 2 * hours)
            np.add.at(base, i, self.rated[i] * hours)
        fresh = (prev < 0) | (dt > 0)
        self._prev_ts[idx[fresh]] = ts
        self._prev_p[idx[fresh]] = power_w[fresh]
        self._prev_lit[idx[fresh]] = lit[fresh]

    def add_compliance(self, ts: int, under_ms: np.ndarray) -> None:
        """Milliseconds each segment (lit) spent under its floor since the last call."""
        night = self.night_of(ts)
        if night not in self._under_ms:
            self._under_ms[night] = np.zeros(len(self.road.segments))
        self._under_ms[night] += under_ms

    def state(self) -> dict[str, Any]:
        """Everything the meter has accumulated, as plain JSON-able values."""
        return {
            "version": STATE_VERSION, "road": self.road.id, "poles": self.n,
            "prev_ts": self._prev_ts.tolist(), "prev_p": self._prev_p.tolist(), "prev_lit": self._prev_lit.tolist(),
            "wh": {k: v.tolist() for k, v in self._wh.items()},
            "base_wh": {k: v.tolist() for k, v in self._base_wh.items()},
            "under_ms": {k: v.tolist() for k, v in self._under_ms.items()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take up a state written by :meth:`state` for the same road."""
        if state.get("version") != STATE_VERSION or state.get("road") != self.road.id or state.get("poles") != self.n:
            raise EnergyStateError(self.road.id, f"stored for road {state.get('road')!r} with {state.get('poles')} "
                                                 f"poles (version {state.get('version')}), not {self.n} poles")
        nseg = len(self.road.segments)
        try:
            prev_ts = np.asarray(state["prev_ts"], dtype=np.int64)
            prev_p = np.asarray(state["prev_p"], dtype=float)
            prev_lit = np.asarray(state["prev_lit"], dtype=bool)
            wh = {k: np.asarray(v, dtype=float) for k, v in state["wh"].items()}
            base = {k: np.asarray(v, dtype=float) for k, v in state["base_wh"].items()}
            under = {k: np.asarray(v, dtype=float) for k, v in state["under_ms"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise EnergyStateError(self.road.id, f"malformed ({err})") from None
        shapes = [a.shape for a in (prev_ts, prev_p, prev_lit, *wh.values(), *base.values())]
        if any(sh != (self.n,) for sh in shapes) or any(a.shape != (nseg,) for a in under.values()):
            raise EnergyStateError(self.road.id, f"arrays do not match its {self.n} poles and {nseg} segments")
        self._prev_ts, self._prev_p, self._prev_lit = prev_ts, prev_p, prev_lit
        self._wh, self._base_wh, self._under_ms = wh, base, under

    def nights(self) -> list[str]:
        return sorted(set(self._wh) | set(self._under_ms))

    def report(self, night: str | None = None) -> EnergyReport:
        """One night's figures, or all nights together (``night=None``)."""
        keys = [night] if night else self.nights()
        wh = sum((self._wh.get(k, np.zeros(self.n)) for k in keys), np.zeros(self.n))
        base = sum((self._base_wh.get(k, np.zeros(self.n)) for k in keys), np.zeros(self.n))
        under = sum((self._under_ms.get(k, np.zeros(len(self.road.segments))) for k in keys),
                    np.zeros(len(self.road.segments)))
        seg_kwh = {s.id: float(wh[self.seg == i].sum() / 1000) for i, s in enumerate(self.road.segments)}
        road_kwh = float(wh.sum() / 1000)
        base_kwh = float(base.sum() / 1000)
        saved = base_kwh - road_kwh
        return EnergyReport(
            night=night or "all",
            pole_kwh={p.id: float(wh[i] / 1000) for i, p in enumerate(self.road.poles)},
            segment_kwh=seg_kwh, road_kwh=road_kwh, baseline_kwh=base_kwh, savings_kwh=saved,
            savings_pct=100.0 * saved / base_kwh if base_kwh > 0 else 0.0,
            co2_kg=saved * self.grid,
            minutes_under_floor={s.id: float(under[i] / 60_000) for i, s in enumerate(self.road.segments)},
        )
