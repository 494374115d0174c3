"""The compliance judge: did each segment get the light its real traffic required, minute by minute?

It reads only the ground truth of a run (``simulators.truth.Truth``) and its own table of
lighting classes (``lighting_classes.yaml``, CJJ 45-2015 / CIE 115:2010), never the platform's
code, settings or beliefs, so a controller that dims a busy road is caught whatever its own
estimate says.

For each minute and segment:

* **required**: while daylight is under ``dark_below_lux``, the class of the traffic that really
  passed (vehicles per hour at the segment's counting points, pedestrians per hour at its
  crossings, each the median over the segment's points, over the trailing ``window_s``), as a
  share of full output. A rise is owed once it has lasted ``reaction_s``.
* **got**: the lowest light output of the segment's luminaires over the minute. The lowest, not
  the mean: the standard's uniformity (CJJ 45 asks U0 >= 0.4 on an arterial) is broken by one dark
  pole, and a mean would let bright neighbours hide it. A failed or unpowered lamp gives 0.

A segment-minute is *under the floor* when got < required. Steps of the truth are given to the
minute holding their midpoint, so steps should divide a minute (10 s, 30 s, 60 s) for exact
minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import JudgeTableError, SimulatorError
from ..truth import Truth

TABLE = Path(__file__).with_name("lighting_classes.yaml")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LightingClass(_Model):
    name: str
    luminance_cd_m2: float = Field(gt=0)
    min_vehicles_h: float = Field(ge=0)
    min_pedestrians_h: float = Field(ge=0)


class ClassTable(_Model):
    full_output_cd_m2: float = Field(gt=0)
    classes: list[LightingClass] = Field(min_length=1)
    window_s: float = Field(ge=60)
    reaction_s: float = Field(ge=0)
    dark_below_lux: float = Field(ge=0)
    twilight_lux: float = Field(ge=0)
    tolerance_pct: float = Field(ge=0, le=5)

    @model_validator(mode="after")
    def _ordered(self) -> ClassTable:
        lum = [c.luminance_cd_m2 for c in self.classes]
        if lum != sorted(lum, reverse=True):
            raise ValueError("classes must be listed busiest (brightest) first")
        if self.classes[-1].min_vehicles_h != 0 or self.classes[-1].min_pedestrians_h != 0:
            raise ValueError("the last class must have zero thresholds, so every volume has a class")
        return self

    def level_pct(self) -> np.ndarray:
        return np.array([min(100.0, 100.0 * c.luminance_cd_m2 / self.full_output_cd_m2) for c in self.classes])


@lru_cache(maxsize=4)
def load_table(path: str = "") -> ClassTable:
    """The judge's class table (the shipped one unless ``path`` names another)."""
    p = Path(path) if path else TABLE
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as err:
        raise JudgeTableError(f"{p}: cannot read the lighting-class table: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise JudgeTableError(f"{p}: not valid YAML: {err}") from err
    try:
        return ClassTable.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(table)'}: {e['msg']}" for e in err.errors())
        raise JudgeTableError(f"{p}: {problems}") from err


@dataclass(frozen=True)
class ComplianceReport:
    segments: list[str]
    minute_ms: np.ndarray  # start of each judged minute
    dark: np.ndarray  # (minutes,) bool: the road needed lighting
    vehicles_h: np.ndarray  # (minutes, segments) real volume over the window
    pedestrians_h: np.ndarray
    required_class: np.ndarray  # (minutes, segments) index into ``class_names`` (-1: daylight)
    required_pct: np.ndarray  # (minutes, segments) light owed, % of full output
    got_pct: np.ndarray  # (minutes, segments) lowest output of the segment's luminaires
    under: np.ndarray  # (minutes, segments) bool
    class_names: list[str]
    ambient_lux: np.ndarray  # (minutes,) daylight at road level
    twilight_lux: float

    @property
    def twilight_under(self) -> int:
        """Segment-minutes under the floor while twilight still gave some light (switch-on/off time)."""
        return int(self.under[self.ambient_lux >= self.twilight_lux].sum())

    @property
    def night_under(self) -> int:
        """Segment-minutes under the floor in full night (the dimming itself)."""
        return self.total_under - self.twilight_under

    @property
    def minutes_under(self) -> dict[str, int]:
        """Segment-minutes under the floor, per segment."""
        return {s: int(self.under[:, k].sum()) for k, s in enumerate(self.segments)}

    @property
    def total_under(self) -> int:
        return int(self.under.sum())

    @property
    def dark_segment_minutes(self) -> int:
        return int(self.dark.sum()) * len(self.segments)

    @property
    def ok(self) -> bool:
        return self.total_under == 0

    def worst(self, limit: int = 5) -> list[dict[str, object]]:
        """The segment-minutes furthest under their floor, for a readable verdict."""
        gap = np.where(self.under, self.required_pct - self.got_pct, -np.inf)
        order = np.argsort(gap, axis=None)[::-1][:limit]
        out = []
        for flat in order:
            m, s = np.unravel_index(flat, gap.shape)
            if not np.isfinite(gap[m, s]):
                break
            out.append({"minute_ms": int(self.minute_ms[m]), "segment": self.segments[s],
                        "class": self.class_names[int(self.required_class[m, s])],
                        "required_pct": round(float(self.required_pct[m, s]), 1),
                        "got_pct": round(float(self.got_pct[m, s]), 1),
                        "vehicles_h": round(float(self.vehicles_h[m, s])),
                        "pedestrians_h": round(float(self.pedestrians_h[m, s]))})
        return out

    def summary(self) -> str:
        if self.ok:
            return f"compliant: 0 of {self.dark_segment_minutes} lit segment-minutes under the floor"
        per = ", ".join(f"{s} {n}" for s, n in self.minutes_under.items() if n)
        return (f"{self.total_under} of {self.dark_segment_minutes} lit segment-minutes under the floor ({per}; "
                f"{self.twilight_under} at twilight, {self.night_under} at night)")


def _per_minute(truth: Truth) -> tuple[np.ndarray, ...]:
    base = int(truth.t0_ms[0]) // 60_000 * 60_000
    mid = (truth.t0_ms + truth.t1_ms) // 2
    minute = ((mid - base) // 60_000).astype(np.int64)
    nmin = int(minute.max()) + 1
    n = len(truth.poles)
    dur = (truth.t1_ms - truth.t0_ms).astype(float)
    veh = np.zeros((nmin, n))
    ped = np.zeros((nmin, n))
    light = np.zeros((nmin, n))
    lux = np.zeros(nmin)
    span = np.zeros(nmin)
    np.add.at(veh, minute, truth.vehicles)
    np.add.at(ped, minute, truth.pedestrians)
    np.add.at(light, minute, truth.light_pct * dur[:, None])
    np.add.at(lux, minute, truth.ambient_lux * dur)
    np.add.at(span, minute, dur)
    seen = span > 0
    light[seen] /= span[seen, None]
    lux[seen] /= span[seen]
    lux[~seen] = np.inf  # a minute without truth is not judged
    return base + np.arange(nmin, dtype=np.int64) * 60_000, veh, ped, light, lux


def _segment_median(rate: np.ndarray, seg_of: np.ndarray, points: np.ndarray, nseg: int) -> np.ndarray:
    out = np.zeros((rate.shape[0], nseg))
    for s in range(nseg):
        cols = np.flatnonzero((seg_of == s) & points)
        if len(cols):
            out[:, s] = np.median(rate[:, cols], axis=1)
    return out


def judge_compliance(truth: Truth, table: ClassTable | None = None) -> ComplianceReport:
    """Minutes each segment spent under the light its real traffic required."""
    t = table or load_table()
    if truth.steps == 0:
        raise SimulatorError("the truth has no steps: nothing to judge")
    minute_ms, veh, ped, light, lux = _per_minute(truth)
    nmin = len(minute_ms)
    nseg = len(truth.segments)
    seg_of = truth.segment_of_pole
    # trailing window: the minutes up to and including this one, as an hourly rate
    w = max(1, int(round(t.window_s / 60)))
    covered_h = np.minimum(np.arange(1, nmin + 1), w)[:, None] / 60.0

    def windowed(x: np.ndarray) -> np.ndarray:
        cs = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
        lo = np.maximum(np.arange(1, nmin + 1) - w, 0)
        return (cs[1:] - cs[lo]) / covered_h  # type: ignore[no-any-return]

    vph = _segment_median(windowed(veh), seg_of, truth.vehicle_points, nseg)
    pph = _segment_median(windowed(ped), seg_of, truth.pedestrian_points, nseg)
    cls = np.full((nmin, nseg), len(t.classes) - 1)
    for k in range(len(t.classes) - 1, -1, -1):  # busiest last, so the first class reached wins
        c = t.classes[k]
        hit = vph >= c.min_vehicles_h
        if c.min_pedestrians_h > 0:
            hit |= pph >= c.min_pedestrians_h
        cls = np.where(hit, k, cls)
    level = t.level_pct()[cls]
    # what is owed in minute m: the need measured before it, once it has held reaction_s
    k = max(1, int(np.ceil(t.reaction_s / 60)))
    owed = np.empty_like(level)
    owed_cls = np.empty_like(cls)
    for m in range(nmin):
        lo, hi = max(0, m - k), max(1, m)
        j = lo + np.argmin(level[lo:hi], axis=0)
        owed[m] = level[j, np.arange(nseg)]
        owed_cls[m] = cls[j, np.arange(nseg)]
    dark = lux < t.dark_below_lux
    required = np.where(dark[:, None], owed, 0.0)
    got = np.zeros((nmin, nseg))
    for s in range(nseg):
        got[:, s] = light[:, seg_of == s].min(axis=1)
    under = dark[:, None] & (got < required - t.tolerance_pct)
    return ComplianceReport(
        segments=list(truth.segments), minute_ms=minute_ms, dark=dark, vehicles_h=vph, pedestrians_h=pph,
        required_class=np.where(dark[:, None], owed_cls, -1), required_pct=required, got_pct=got, under=under,
        class_names=[c.name for c in t.classes], ambient_lux=lux, twilight_lux=t.twilight_lux,
    )
