"""The road registry as plain frozen dataclasses (the file format lives in ``loader``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

EQUIPMENT = frozenset(
    {
        "lamp",
        "traffic_detector",
        "pedestrian_detector",
        "light_sensor",
        "energy_meter",
        "leakage_monitor",
        "camera",
        "small_cell",
        "display",
        "emergency_call",
        "weather_station",
        "traffic_signal",
        "sign",
    }
)

# Equipment fed through a switched, metered port of the pole's controller (protocol 1.1), with the
# rated power a healthy unit draws and the prefix of its port ids (``cam-1``, ``cell-1``).
PORT_KINDS: dict[str, tuple[str, float]] = {
    "camera": ("cam", 25.0),
    "small_cell": ("cell", 80.0),
    "traffic_signal": ("sig", 60.0),
    "sign": ("sign", 40.0),
    "display": ("disp", 120.0),
    "weather_station": ("env", 10.0),
    "emergency_call": ("sos", 8.0),
}
PORT_ID_RE = r"^[a-z0-9-]{1,32}$"


def format_chainage(metres: float) -> str:
    """Chainage as road engineers write it: 1592.5 m -> ``K1+592``."""
    whole = int(metres)
    return f"K{whole // 1000}+{whole % 1000:03d}"


@dataclass(frozen=True, slots=True)
class Port:
    """One switched, metered port of a pole and the equipment on it."""

    id: str  # [a-z0-9-]{1,32}, unique within the pole
    kind: str  # a key of PORT_KINDS
    rated_power_w: float
    always_on: bool = True  # everything but the lamp is fed around the clock


@dataclass(frozen=True, slots=True)
class Pole:
    id: str
    index: int  # 0-based position in chainage order
    chainage_m: float
    side: str  # "N" or "S" (or "E"/"W" on a north-south road)
    segment: str
    feeder: str
    feeder_position: int  # 1 = nearest the cabinet
    cabinet: str
    lat: float
    lon: float
    rated_power_w: float
    equipment: tuple[str, ...]
    ports: tuple[Port, ...] = ()
    # what a crew brings to replace them, as the site's asset records name them ("" if not recorded)
    lamp: str = ""
    driver: str = ""
    lwm2m_endpoint: str | None = None  # the LwM2M client endpoint name of its lamp controller (urn:imei:…)

    @property
    def chainage(self) -> str:
        return format_chainage(self.chainage_m)

    def has(self, equipment: str) -> bool:
        return equipment in self.equipment

    def port(self, port_id: str) -> Port | None:
        for p in self.ports:
            if p.id == port_id:
                return p
        return None


@dataclass(frozen=True, slots=True)
class Segment:
    id: str
    name: str
    from_name: str
    to_name: str
    start_m: float
    end_m: float


@dataclass(frozen=True, slots=True)
class Cabinet:
    id: str
    name: str
    chainage_m: float
    lat: float
    lon: float
    meter: str = ""  # the cabinet's energy meter (one metering channel per feeder), by serial


@dataclass(frozen=True, slots=True)
class Feeder:
    id: str
    cabinet: str
    poles: tuple[str, ...]  # ordered from the cabinet outward (feeder_position 1, 2, ...)


@dataclass(frozen=True)
class Road:
    id: str
    name: str
    local_name: str
    lighting_class: str
    timezone: str
    lat: float
    lon: float
    poles: tuple[Pole, ...]
    segments: tuple[Segment, ...]
    cabinets: tuple[Cabinet, ...]
    feeders: tuple[Feeder, ...]
    note: str = ""
    _by_id: dict[str, Pole] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update({p.id: p for p in self.poles})

    def pole(self, pole_id: str) -> Pole:
        return self._by_id[pole_id]

    def has_pole(self, pole_id: str) -> bool:
        return pole_id in self._by_id

    @property
    def pole_ids(self) -> list[str]:
        return [p.id for p in self.poles]

    @cached_property
    def segment_by_id(self) -> dict[str, Segment]:
        return {s.id: s for s in self.segments}

    @cached_property
    def feeder_by_id(self) -> dict[str, Feeder]:
        return {f.id: f for f in self.feeders}

    @cached_property
    def cabinet_by_id(self) -> dict[str, Cabinet]:
        return {c.id: c for c in self.cabinets}

    def feeders_of(self, cabinet_id: str) -> list[Feeder]:
        return [f for f in self.feeders if f.cabinet == cabinet_id]

    def poles_of_segment(self, segment_id: str) -> list[Pole]:
        return [p for p in self.poles if p.segment == segment_id]

    @property
    def length_m(self) -> float:
        if not self.poles:
            return 0.0
        return max(s.end_m for s in self.segments) if self.segments else self.poles[-1].chainage_m

    @cached_property
    def arrays(self) -> RoadArrays:
        """Column view of the poles for vectorized code (simulator, controller)."""
        seg_index = {s.id: i for i, s in enumerate(self.segments)}
        feeder_index = {f.id: i for i, f in enumerate(self.feeders)}
        return RoadArrays(
            chainage_m=np.array([p.chainage_m for p in self.poles], dtype=np.float64),
            lat=np.array([p.lat for p in self.poles], dtype=np.float64),
            lon=np.array([p.lon for p in self.poles], dtype=np.float64),
            rated_power_w=np.array([p.rated_power_w for p in self.poles], dtype=np.float64),
            segment=np.array([seg_index[p.segment] for p in self.poles], dtype=np.int32),
            feeder=np.array([feeder_index[p.feeder] for p in self.poles], dtype=np.int32),
            feeder_position=np.array([p.feeder_position for p in self.poles], dtype=np.int32),
        )


@dataclass(frozen=True, slots=True)
class RoadArrays:
    chainage_m: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    rated_power_w: np.ndarray
    segment: np.ndarray  # index into Road.segments
    feeder: np.ndarray  # index into Road.feeders
    feeder_position: np.ndarray
