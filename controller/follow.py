"""Light that follows traffic: a road user raises the poles ahead of it for a while.

A ``vehicle`` event at a pole raises the poles it will reach within ``lookahead_s`` (at its
speed, in its direction, between ``min_ahead_m`` and ``max_ahead_m``) to the level one vehicle
needs, until ``hold_s`` after it reaches each of them. A ``pedestrian`` raises the poles within
``pedestrian_radius_m`` for ``pedestrian_hold_s``. Vectorized, so a simulated week of
detections stays cheap.
"""

from __future__ import annotations

import math

import numpy as np

from streetlight.registry import Road

from .tables import FollowTable


class FollowMe:
    def __init__(self, road: Road, table: FollowTable) -> None:
        self.t = table
        self.c = road.arrays.chainage_m
        n = len(self.c)
        gaps = np.diff(self.c)
        spacing = float(gaps[gaps > 0].min()) if (gaps > 0).any() else 1.0
        self.kmax = min(n, int(math.ceil(max(table.max_ahead_m, table.pedestrian_radius_m) / spacing)) + 1)
        self.until_v = np.full(n, -1, dtype=np.int64)
        self.until_p = np.full(n, -1, dtype=np.int64)

    def vehicles(self, pole: np.ndarray, ts: np.ndarray, speed_kmh: np.ndarray, direction: np.ndarray) -> None:
        if len(pole) == 0:
            return
        n = len(self.c)
        v = np.maximum(np.asarray(speed_kmh, dtype=float), 5.0) / 3.6
        ahead = np.clip(v * self.t.lookahead_s, self.t.min_ahead_m, self.t.max_ahead_m)
        hold = int(self.t.hold_s * 1000)
        x0 = self.c[pole]
        for k in range(0, self.kmax + 1):
            j = pole + direction * k
            ok = (j >= 0) & (j < n)
            jj = np.where(ok, j, 0)
            dist = np.abs(self.c[jj] - x0)
            ok &= dist <= ahead
            if not ok.any():
                break
            until = ts + (dist / v * 1000).astype(np.int64) + hold
            np.maximum.at(self.until_v, jj[ok], until[ok])

    def pedestrians(self, pole: np.ndarray, ts: np.ndarray) -> None:
        if len(pole) == 0:
            return
        n = len(self.c)
        until = ts + int(self.t.pedestrian_hold_s * 1000)
        x0 = self.c[pole]
        for k in range(-self.kmax, self.kmax + 1):
            j = pole + k
            ok = (j >= 0) & (j < n)
            jj = np.where(ok, j, 0)
            ok &= np.abs(self.c[jj] - x0) <= self.t.pedestrian_radius_m
            np.maximum.at(self.until_p, jj[ok], until[ok])

    def levels(self, now: int) -> np.ndarray:
        """Per pole, the level following asks for at ``now`` (0 where nobody is near)."""
        lv = np.where(self.until_v > now, self.t.vehicle_level, 0.0)
        return np.maximum(lv, np.where(self.until_p > now, self.t.pedestrian_level, 0.0))
