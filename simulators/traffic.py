"""Traffic on an urban arterial, vectorized: vehicles that drive along the road, pedestrians.

Vehicles enter at the road's ends and at its intersections (segment boundaries), drive in either
direction at a speed that drops with congestion, and leave at an intersection. Every pole's
detector counts each vehicle passing its chainage, so a vehicle shows up pole after pole with
plausible gaps. Pedestrians are Poisson arrivals at poles with a pedestrian detector.

Nothing here knows about MQTT: ``TrafficModel.step`` returns arrays, so the same model drives
the pole simulators and the energy benchmark's simulated week.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streetlight.registry import Road

# Vehicles per hour and direction on a busy 8-lane urban arterial, by local hour (0..23).
WEEKDAY_VPH = np.array([150, 90, 60, 50, 60, 150, 500, 1100, 1200, 900, 800, 850,
                        900, 850, 850, 950, 1100, 1300, 1250, 900, 700, 550, 400, 250], dtype=float)
WEEKEND_VPH = np.array([250, 160, 100, 70, 60, 80, 180, 350, 550, 750, 850, 900,
                        900, 900, 880, 880, 900, 950, 950, 850, 700, 600, 500, 350], dtype=float)
# Pedestrians per hour passing one pole with a detector (weekday, weekend), same hours.
PED_PH = np.array([4, 2, 1, 1, 1, 3, 15, 40, 45, 30, 30, 35, 40, 35, 30, 35, 45, 60, 60, 50, 40, 25, 15, 8], dtype=float)
INTERIOR_ENTRY_SHARE = 0.3  # share of the through flow that turns in at an intersection
LEAVE_PROB = 0.3  # chance a vehicle turns off at each intersection it reaches
FREE_SPEED_KMH = 56.0
JAM_SPEED_KMH = 32.0


@dataclass(frozen=True, slots=True)
class Surge:
    """Extra traffic for a while (an event lets out): ``factor`` times the usual rate."""

    start_ms: int
    end_ms: int
    factor: float
    segment: int | None = None  # index into Road.segments; None = the whole road
    pedestrian_factor: float | None = None  # defaults to ``factor``


@dataclass(slots=True)
class TrafficStep:
    """What the detectors saw during one step, per pole (index order = chainage order)."""

    vehicles: np.ndarray  # int64 counts
    pedestrians: np.ndarray  # int64 counts
    vehicle_pole: np.ndarray  # one entry per detection, sorted by time
    vehicle_ts: np.ndarray  # ms
    vehicle_speed_kmh: np.ndarray
    vehicle_direction: np.ndarray  # +1 / -1
    pedestrian_pole: np.ndarray
    pedestrian_ts: np.ndarray


def _interp_hour(profile: np.ndarray, hour: float) -> float:
    h0 = int(hour) % 24
    frac = hour - int(hour)
    return float(profile[h0] * (1 - frac) + profile[(h0 + 1) % 24] * frac)


@dataclass
class TrafficModel:
    """Vehicles and pedestrians along ``road``; deterministic for one ``seed``."""

    road: Road
    seed: int = 0
    utc_offset_s: int = 8 * 3600
    scale: float = 1.0  # multiply every rate (a quieter or busier road)
    surges: list[Surge] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng([self.seed, 1])
        arr = self.road.arrays
        self.chainage = arr.chainage_m
        self.n = len(self.chainage)
        seg = self.road.segments
        self.bounds = np.array([seg[0].start_m] + [s.end_m for s in seg], dtype=float) if seg else \
            np.array([0.0, float(self.chainage[-1]) + 10.0])
        self.seg_of_pole = arr.segment
        self.has_vehicle_det = np.array([p.has("traffic_detector") for p in self.road.poles])
        self.has_ped_det = np.array([p.has("pedestrian_detector") for p in self.road.poles])
        # vehicles in flight: position (m), speed (m/s), direction, where they leave (m)
        self.pos = np.empty(0)
        self.speed = np.empty(0)
        self.dir = np.empty(0, dtype=np.int8)
        self.exit = np.empty(0)

    def _local_hour(self, t_ms: int) -> tuple[float, bool]:
        local_s = t_ms / 1000.0 + self.utc_offset_s
        day = int(local_s // 86400)
        weekend = (day + 3) % 7 >= 5  # 1970-01-01 was a Thursday (index 3, Monday = 0)
        return (local_s % 86400) / 3600.0, weekend

    def rate_vph(self, t_ms: int) -> float:
        """Vehicles per hour and direction at ``t_ms`` (before surges)."""
        hour, weekend = self._local_hour(t_ms)
        return _interp_hour(WEEKEND_VPH if weekend else WEEKDAY_VPH, hour) * self.scale

    def _surge_factors(self, t_ms: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-segment multipliers for vehicles and pedestrians."""
        nseg = len(self.bounds) - 1
        veh = np.ones(nseg)
        ped = np.ones(nseg)
        for s in self.surges:
            if s.start_ms <= t_ms < s.end_ms:
                sl = slice(None) if s.segment is None else slice(s.segment, s.segment + 1)
                veh[sl] *= s.factor
                ped[sl] *= s.pedestrian_factor if s.pedestrian_factor is not None else s.factor
        return veh, ped

    def _spawn(self, t_ms: int, dt_s: float, rate_vph: float, veh_factor: np.ndarray) -> tuple[np.ndarray, ...]:
        """New vehicles entering during the step: (t0 offset s, x0, speed, dir, exit)."""
        b = self.bounds
        nb = len(b)
        base = np.full(nb, INTERIOR_ENTRY_SHARE)
        parts = []
        for direction in (1, -1):
            share = base.copy()
            if direction == 1:
                share[0], share[-1] = 1.0, 0.0
                seg_factor = np.append(veh_factor, 0.0)  # entering into the segment ahead
            else:
                share[-1], share[0] = 1.0, 0.0
                seg_factor = np.insert(veh_factor, 0, 0.0)
            lam = rate_vph / 3600.0 * dt_s * share * seg_factor
            k = self.rng.poisson(lam)
            total = int(k.sum())
            if total == 0:
                continue
            entry = np.repeat(np.arange(nb), k)
            x0 = b[entry]
            # how many intersections it passes before turning off (geometric), then leaves there
            hops = self.rng.geometric(LEAVE_PROB, total)
            exit_idx = np.clip(entry + direction * hops, 0, nb - 1)
            parts.append((self.rng.uniform(0, dt_s, total), x0, np.full(total, direction, dtype=np.int8), b[exit_idx]))
        if not parts:
            return np.empty(0), np.empty(0), np.empty(0, dtype=np.int8), np.empty(0)
        return tuple(np.concatenate(c) for c in zip(*parts, strict=True))

    def step(self, t_ms: int, dt_s: float) -> TrafficStep:
        """Traffic during ``[t_ms, t_ms + dt_s)``."""
        rng = self.rng
        rate = self.rate_vph(t_ms)
        veh_factor, ped_factor = self._surge_factors(t_ms)
        busy = min(1.0, rate * float(veh_factor.max()) / 1300.0)
        mean_speed = FREE_SPEED_KMH - (FREE_SPEED_KMH - JAM_SPEED_KMH) * busy**2
        # vehicles already on the road: their speed wanders a little each step
        self.speed = np.clip(self.speed + rng.normal(0, 0.6, len(self.speed)), 4.0, 25.0)
        t_off, x0_new, dir_new, exit_new = self._spawn(t_ms, dt_s, rate, veh_factor)
        v_new = np.clip(rng.normal(mean_speed, 7.0, len(x0_new)), 15.0, 90.0) / 3.6
        t0 = np.concatenate([np.zeros(len(self.pos)), t_off])
        x0 = np.concatenate([self.pos, x0_new])
        v = np.concatenate([self.speed, v_new])
        d = np.concatenate([self.dir, dir_new]).astype(np.int8)
        ex = np.concatenate([self.exit, exit_new])
        x1 = x0 + d * v * (dt_s - t0)
        gone = (x1 - ex) * d >= 0
        x1 = np.where(gone, ex, x1)
        c = self.chainage
        fwd = d > 0
        lo = np.where(fwd, np.searchsorted(c, x0, "right"), np.searchsorted(c, x1, "left"))
        hi = np.where(fwd, np.searchsorted(c, x1, "right"), np.searchsorted(c, x0, "left"))
        npass = np.maximum(hi - lo, 0)
        total = int(npass.sum())
        if total:
            veh_i = np.repeat(np.arange(len(x0)), npass)
            start = np.cumsum(npass) - npass
            k = np.arange(total) - np.repeat(start, npass)
            pole = np.where(fwd[veh_i], lo[veh_i] + k, hi[veh_i] - 1 - k)
            t_pass = t0[veh_i] + np.abs(c[pole] - x0[veh_i]) / v[veh_i]
            keep = self.has_vehicle_det[pole]
            pole, t_pass, veh_i = pole[keep], t_pass[keep], veh_i[keep]
            ts = t_ms + np.minimum((t_pass * 1000.0).astype(np.int64), int(dt_s * 1000) - 1)
            order = np.lexsort((pole, ts))
            vp, vts = pole[order], ts[order]
            vspeed = np.round(v[veh_i[order]] * 3.6 + rng.normal(0, 1.5, len(order)), 1).clip(1.0, 250.0)
            vdir = d[veh_i[order]].astype(np.int64)
        else:
            vp = vts = np.empty(0, dtype=np.int64)
            vspeed = np.empty(0)
            vdir = np.empty(0, dtype=np.int64)
        vehicles = np.bincount(vp, minlength=self.n).astype(np.int64)
        stay = ~gone
        self.pos, self.speed, self.dir, self.exit = x1[stay], v[stay], d[stay], ex[stay]

        hour, weekend = self._local_hour(t_ms)
        ped_rate = _interp_hour(PED_PH, hour) * (0.7 if weekend else 1.0) * self.scale
        lam = ped_rate / 3600.0 * dt_s * ped_factor[self.seg_of_pole] * self.has_ped_det
        peds = rng.poisson(lam).astype(np.int64)
        pp = np.repeat(np.arange(self.n), peds)
        pts = t_ms + (rng.uniform(0, dt_s, len(pp)) * 1000).astype(np.int64)
        order = np.lexsort((pp, pts))
        return TrafficStep(vehicles, peds, vp, vts, vspeed, vdir, pp[order], pts[order])
