"""Ground truth of a simulated run: what really happened on the road, step by step.

The simulator knows what the platform can only infer: the vehicles and pedestrians that really
passed each pole (a stuck or unpowered detector misses them), the light each luminaire really
gave (after ramps, faults and a failed lamp's darkness), its real power, the daylight, and when
each injected fault really began and ended. A ``TruthRecorder`` collects that in memory (a
``Truth`` that judges read in-process) and, beside a recording, writes it as its own JSON-lines
file (``night.jsonl`` -> ``night.truth.jsonl``), deterministic like the recording.

The platform's packages (gateway, controller, telemetry, api) never read this: judges do.

File lines, in time order:

* ``{"kind": "truth", "version": 1, "road": ..., "poles": [...], "segments": [...],
  "segment_of_pole": [...], "rated_w": [...], "vehicle_points": [...], "pedestrian_points": [...]}``
  (first line);
* ``{"kind": "step", "t0": ms, "t1": ms, "vehicles": [...], "pedestrians": [...],
  "light_pct": [...], "power_w": [...], "ambient_lux": x}`` per step, one entry per pole;
* ``{"kind": "fault", "ts": ms, "state": "began" | "ended", "type": ..., "target": "pole" |
  "span" | "feeder", "label": ..., "poles": [...], "feeder": ...}`` when a fault takes effect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from streetlight.registry import Road

from .engine import TruthSample
from .errors import RecordingError
from .faults import FAULT_TYPES, Fault
from .recording import json_lines

VERSION = 1
LIGHT_DECIMALS = 3
POWER_DECIMALS = 2
LUX_DECIMALS = 3


def truth_path(recording: Path | str) -> Path:
    """Where the truth of a recording lives: ``night.jsonl`` -> ``night.truth.jsonl``."""
    p = Path(recording)
    stem = p.name.removesuffix(".jsonl")
    return p.with_name(f"{stem}.truth.jsonl")


@dataclass(frozen=True, slots=True)
class FaultSpan:
    """One injected fault as it really was: when it began and (if it did) ended."""

    type: str
    target: str  # pole, span or feeder
    label: str  # the pole, span (a/b) or feeder as the scenario names it
    poles: tuple[str, ...]  # every pole it affected
    feeder: str | None
    began_ms: int
    ended_ms: int | None = None


@dataclass
class Truth:
    """A run's ground truth as arrays: one row per step, one column per pole."""

    road: str
    poles: list[str]
    segments: list[str]
    segment_of_pole: np.ndarray
    rated_w: np.ndarray
    vehicle_points: np.ndarray  # bool: poles where passing vehicles are counted in the truth
    pedestrian_points: np.ndarray  # bool: poles where the road's pedestrians cross
    t0_ms: np.ndarray
    t1_ms: np.ndarray
    vehicles: np.ndarray
    pedestrians: np.ndarray
    light_pct: np.ndarray
    power_w: np.ndarray
    ambient_lux: np.ndarray
    faults: list[FaultSpan] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return len(self.t1_ms)

    def energy_wh(self) -> np.ndarray:
        """Energy each pole really drew over the run."""
        hours = (self.t1_ms - self.t0_ms) / 3_600_000
        return (self.power_w * hours[:, None]).sum(axis=0)  # type: ignore[no-any-return]


def _header(road: Road) -> dict[str, Any]:
    return {
        "kind": "truth", "version": VERSION, "road": road.id,
        "poles": [p.id for p in road.poles], "segments": [s.id for s in road.segments],
        "segment_of_pole": road.arrays.segment.astype(int).tolist(),
        "rated_w": [float(x) for x in road.arrays.rated_power_w],
        "vehicle_points": [p.has("traffic_detector") for p in road.poles],
        "pedestrian_points": [p.has("pedestrian_detector") for p in road.poles],
    }


class TruthRecorder:
    """Collects each step's ``TruthSample`` and the fault timeline; writes them when ``path`` is given."""

    def __init__(self, road: Road, path: Path | None = None) -> None:
        self.road = road
        self.head = _header(road)
        self.path = Path(path) if path is not None else None
        self._f: IO[bytes] | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = self.path.open("wb")
            self._f.write(orjson.dumps(self.head) + b"\n")
        self._rows: dict[str, list[Any]] = {k: [] for k in
                                            ("t0", "t1", "vehicles", "pedestrians", "light", "power", "lux")}
        self._open: dict[int, FaultSpan] = {}  # id(fault) -> the span that began
        self._spans: list[FaultSpan] = []

    def add(self, s: TruthSample | None) -> None:
        if s is None:
            return
        light = np.round(s.light_pct, LIGHT_DECIMALS)
        power = np.round(s.power_w, POWER_DECIMALS)
        lux = round(float(s.ambient_lux), LUX_DECIMALS)
        rows = self._rows
        rows["t0"].append(s.t0_ms)
        rows["t1"].append(s.t1_ms)
        rows["vehicles"].append(s.vehicles.astype(np.int64))
        rows["pedestrians"].append(s.pedestrians.astype(np.int64))
        rows["light"].append(light)
        rows["power"].append(power)
        rows["lux"].append(lux)
        if self._f is not None:
            self._f.write(orjson.dumps({
                "kind": "step", "t0": int(s.t0_ms), "t1": int(s.t1_ms),
                "vehicles": s.vehicles.astype(int).tolist(), "pedestrians": s.pedestrians.astype(int).tolist(),
                "light_pct": light.tolist(), "power_w": power.tolist(), "ambient_lux": lux,
            }) + b"\n")

    def faults(self, changes: list[tuple[Fault, bool]], t_ms: int) -> None:
        """Faults that took effect at ``t_ms`` (``FaultSchedule.due``'s answer)."""
        road = self.road
        for f, on in changes:
            target = FAULT_TYPES[f.type][0]
            poles = tuple(road.poles[i].id for i in f.poles)
            if f.feeder is not None:
                feeder: str | None = road.feeders[f.feeder].id
            else:
                feeder = road.poles[f.poles[0]].feeder if f.poles else None
            if on:
                span = FaultSpan(f.type, target, f.label, poles, feeder, t_ms)
                self._open[id(f)] = span
                self._spans.append(span)
            else:
                began = self._open.pop(id(f), None)
                if began is not None:
                    k = self._spans.index(began)
                    self._spans[k] = FaultSpan(began.type, began.target, began.label, began.poles,
                                               began.feeder, began.began_ms, t_ms)
            if self._f is not None:
                self._f.write(orjson.dumps({
                    "kind": "fault", "ts": int(t_ms), "state": "began" if on else "ended", "type": f.type,
                    "target": target, "label": f.label, "poles": list(poles), "feeder": feeder,
                }) + b"\n")

    def truth(self) -> Truth:
        return _build(self.head, self._rows, list(self._spans))

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def _build(head: dict[str, Any], rows: dict[str, list[Any]], spans: list[FaultSpan]) -> Truth:
    n = len(head["poles"])

    def stack(key: str, dtype: Any) -> np.ndarray:
        return np.array(rows[key], dtype=dtype).reshape(len(rows[key]), n)

    return Truth(
        road=head["road"], poles=list(head["poles"]), segments=list(head["segments"]),
        segment_of_pole=np.array(head["segment_of_pole"], dtype=np.int64),
        rated_w=np.array(head["rated_w"], dtype=float),
        vehicle_points=np.array(head["vehicle_points"], dtype=bool),
        pedestrian_points=np.array(head["pedestrian_points"], dtype=bool),
        t0_ms=np.array(rows["t0"], dtype=np.int64), t1_ms=np.array(rows["t1"], dtype=np.int64),
        vehicles=stack("vehicles", np.int64), pedestrians=stack("pedestrians", np.int64),
        light_pct=stack("light", float), power_w=stack("power", float),
        ambient_lux=np.array(rows["lux"], dtype=float), faults=spans,
    )


def read_truth(path: Path | str) -> Truth:
    """A truth file back as a ``Truth``; a bad line raises ``RecordingError`` naming it."""
    p = Path(path)
    head: dict[str, Any] | None = None
    rows: dict[str, list[Any]] = {k: [] for k in ("t0", "t1", "vehicles", "pedestrians", "light", "power", "lux")}
    spans: list[FaultSpan] = []
    open_: dict[tuple[str, str], int] = {}
    for n, obj in json_lines(p, "a truth line"):
        try:
            kind = obj["kind"]
            if n == 1 and kind != "truth":
                raise ValueError("the first line must be the truth header")
            if kind == "truth":
                if obj["version"] != VERSION:
                    raise ValueError(f"version {obj['version']} (this reader knows {VERSION})")
                head = obj
            elif kind == "step":
                for key, col in (("t0", "t0"), ("t1", "t1"), ("vehicles", "vehicles"),
                                 ("pedestrians", "pedestrians"), ("light", "light_pct"),
                                 ("power", "power_w"), ("lux", "ambient_lux")):
                    rows[key].append(obj[col])
            elif kind == "fault":
                span_key = (obj["type"], obj["label"])
                if obj["state"] == "began":
                    open_[span_key] = len(spans)
                    spans.append(FaultSpan(obj["type"], obj["target"], obj["label"], tuple(obj["poles"]),
                                           obj["feeder"], int(obj["ts"])))
                elif span_key in open_:
                    b = spans[open_.pop(span_key)]
                    spans[spans.index(b)] = FaultSpan(b.type, b.target, b.label, b.poles, b.feeder,
                                                      b.began_ms, int(obj["ts"]))
            else:
                raise ValueError(f"unknown kind {kind!r}")
        except (KeyError, TypeError, ValueError) as err:
            raise RecordingError(str(p), n, f"not a truth line ({err})") from None
    if head is None:
        raise RecordingError(str(p), None, "empty: no truth header")
    return _build(head, rows, spans)
