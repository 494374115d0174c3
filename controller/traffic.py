"""Traffic-adaptive dimming: measured volume per segment -> lighting class -> level.

Each pole's detector counts feed a sliding window. A segment's volume is the median over its
healthy detectors (reporting, not stuck) of vehicles (pedestrians) per hour. The segment is
*trusted* only when enough of its detectors are healthy, the window is filled enough, and it is
not reading an empty road while a neighbouring segment is busy (traffic flows through an
arterial; silence there means broken detectors). Classes step up at once and step down only
with hysteresis after a minimum hold, so lights do not flap.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from streetlight.registry import Road

from .tables import FaultTable, LightingTable


@dataclass(frozen=True, slots=True)
class SegmentTraffic:
    segment: str
    trusted: bool
    why: str  # "ok" or why the estimate is not trusted
    vehicles_h: float
    pedestrians_h: float
    raw_class: int  # class index the volume alone selects (0 = busiest)
    held_class: int  # after hysteresis and hold
    floor: float  # level the measured volume requires (raw class, safety floor)
    level: float  # level of the held class (>= floor)


class TrafficEstimator:
    """Sliding-window counts per pole and the segment classes derived from them."""

    def __init__(self, road: Road, lighting: LightingTable, faults: FaultTable, interval_ms: int) -> None:
        self.road = road
        self.t = lighting
        self.f = faults
        self.interval_ms = interval_ms
        self.window_ms = int(lighting.window_s * 1000)
        self.stuck_ms = int(faults.stuck_window_s * 1000)
        self.short_ms = int(lighting.short_window_s * 1000)
        self.keep_ms = max(self.window_ms, self.stuck_ms, self.short_ms)
        n = len(road.poles)
        self.has_veh = np.array([p.has("traffic_detector") for p in road.poles])
        self.has_ped = np.array([p.has("pedestrian_detector") for p in road.poles])
        self.seg_of = road.arrays.segment
        self.nseg = len(road.segments)
        self._buf: list[deque[tuple[int, int, int]]] = [deque() for _ in range(n)]
        self._veh = np.zeros(n)
        self._ped = np.zeros(n)
        self._first = np.full(n, -1, dtype=np.int64)
        self._last_count = np.full(n, -1, dtype=np.int64)
        self._held = np.full(self.nseg, 0, dtype=np.int64)  # start at the busiest class: safe
        self._since = np.full(self.nseg, -1, dtype=np.int64)
        self.stuck = np.zeros(n, dtype=bool)

    # --- input ---------------------------------------------------------------------------
    def add(self, idx: int, ts: int, vehicles: int | None, pedestrians: int | None) -> None:
        """One telemetry report's counts (``None`` = the pole did not report counts)."""
        if vehicles is None and pedestrians is None:
            return
        v, p = vehicles or 0, pedestrians or 0
        buf = self._buf[idx]
        if buf and ts <= buf[-1][0]:
            return  # out of order or duplicate: the window is built on message time
        buf.append((ts, v, p))
        self._veh[idx] += v
        self._ped[idx] += p
        if self._first[idx] < 0:
            self._first[idx] = ts
        self._last_count[idx] = ts
        self._evict(idx, ts)

    def reset_pole(self, idx: int) -> None:
        self._buf[idx].clear()
        self._veh[idx] = self._ped[idx] = 0
        self._first[idx] = self._last_count[idx] = -1

    def _evict(self, idx: int, now: int) -> None:
        buf = self._buf[idx]
        while buf and buf[0][0] <= now - self.keep_ms:
            _, v, p = buf.popleft()
            self._veh[idx] -= v
            self._ped[idx] -= p

    def _window_sums(self, now: int, span_ms: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(self._buf)
        veh = np.zeros(n)
        ped = np.zeros(n)
        lo = now - span_ms
        for i, buf in enumerate(self._buf):
            if not buf:
                continue
            if span_ms >= self.keep_ms and buf[0][0] > lo:
                veh[i], ped[i] = self._veh[i], self._ped[i]
                continue
            for ts, v, p in reversed(buf):
                if ts <= lo:
                    break
                veh[i] += v
                ped[i] += p
        return veh, ped

    # --- evaluation ----------------------------------------------------------------------
    def fresh(self, now: int) -> np.ndarray:
        silent_ms = self.f.silent_after_intervals * self.interval_ms
        return (self._last_count >= 0) & (now - self._last_count <= silent_ms)

    def update_stuck(self, now: int) -> np.ndarray:
        """Detectors reading zero over the stuck window while their road neighbours count; a stuck
        one stays stuck until it counts again (or falls silent)."""
        for i in range(len(self._buf)):
            self._evict(i, now)
        veh, _ = self._window_sums(now, self.stuck_ms)
        fresh = self.fresh(now) & self.has_veh
        covered = fresh & (now - self._first >= self.stuck_ms)
        k = self.f.stuck_neighbours
        n = len(veh)
        # once stuck, a detector stays stuck until it counts again: quieter neighbours late at night
        # take away the evidence, not the fault (one fault, not one per busy spell)
        stuck: np.ndarray = np.asarray(self.stuck & fresh & (veh == 0), dtype=bool)
        for i in np.flatnonzero(covered & (veh == 0) & ~stuck).tolist():
            nb = [j for j in range(max(0, i - k), min(n, i + k + 1)) if j != i and fresh[j]]
            counts = veh[nb] if nb else np.zeros(0)
            if len(counts) >= 2 and float(np.median(counts)) >= self.f.stuck_min_neighbour_count:
                stuck[i] = True
        self.stuck = stuck
        return stuck

    def _class_of(self, vph: float, pph: float, scale: float = 1.0) -> int:
        for i, c in enumerate(self.t.classes):
            if vph * scale >= c.min_vehicles_h or (c.min_pedestrians_h > 0 and pph * scale >= c.min_pedestrians_h):
                return i
        return len(self.t.classes) - 1

    def evaluate(self, now: int) -> list[SegmentTraffic]:
        """Classify every segment at ``now`` (call :meth:`update_stuck` first)."""
        veh, ped = self._window_sums(now, self.window_ms)
        fresh = self.fresh(now)
        cover_ms = np.clip(now - self._first + self.interval_ms, 0, self.window_ms)
        hours = np.maximum(cover_ms, 1) / 3_600_000
        vph, pph = veh / hours, ped / hours
        # a short window too, so that rising traffic is seen within a couple of minutes
        sveh, sped = self._window_sums(now, self.short_ms)
        shours = np.maximum(np.clip(now - self._first + self.interval_ms, 0, self.short_ms), 1) / 3_600_000
        vph, pph = np.maximum(vph, sveh / shours), np.maximum(pph, sped / shours)
        healthy_v = self.has_veh & fresh & ~self.stuck & (cover_ms >= self.t.min_coverage_s * 1000)
        healthy_p = self.has_ped & fresh & (cover_ms >= self.t.min_coverage_s * 1000)
        seg_v = np.full(self.nseg, np.nan)
        seg_p = np.zeros(self.nseg)
        why = ["ok"] * self.nseg
        for s in range(self.nseg):
            in_seg = self.seg_of == s
            dets = int((in_seg & self.has_veh).sum())
            ok = in_seg & healthy_v
            if dets == 0 or ok.sum() < max(1, self.t.min_healthy_fraction * dets):
                why[s] = "detectors silent or stuck"
                continue
            seg_v[s] = float(np.median(vph[ok]))
            okp = in_seg & healthy_p
            seg_p[s] = float(np.median(pph[okp])) if okp.any() else 0.0
        out = []
        for s, seg in enumerate(self.road.segments):
            v = seg_v[s]
            if why[s] == "ok":
                nbrs = [seg_v[j] for j in (s - 1, s + 1) if 0 <= j < self.nseg and not np.isnan(seg_v[j])]
                if v <= self.t.quiet_vehicles_h and any(x >= self.t.busy_neighbour_vehicles_h for x in nbrs):
                    why[s] = "reads an empty road while a neighbouring segment is busy"
            if why[s] != "ok":
                self._held[s], self._since[s] = 0, now  # when trust returns, start from the top
                # untrusted: the engine uses the schedule's level as both floor and level
                out.append(SegmentTraffic(seg.id, False, why[s], float("nan") if np.isnan(v) else float(v),
                                          float(seg_p[s]), 0, 0, float("nan"), float("nan")))
                continue
            raw = self._class_of(v, seg_p[s])
            down = self._class_of(v, seg_p[s], scale=1.0 + self.t.hysteresis)
            held = int(self._held[s])
            if raw < held or self._since[s] < 0:
                held, self._since[s] = raw, now
            elif down > held and now - self._since[s] >= self.t.min_hold_s * 1000:
                held, self._since[s] = down, now
            self._held[s] = held
            floor = max(self.t.classes[raw].level, self.t.safety_floor)
            level = max(self.t.classes[held].level, self.t.safety_floor)
            out.append(SegmentTraffic(seg.id, True, "ok", float(v), float(seg_p[s]), raw, held, floor, level))
        return out
