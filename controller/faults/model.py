"""A fault, where it is, and how a crew reads it.

``Fault`` carries exactly the protocol's Alert fields plus ``cabinet`` and the ``chainage`` text
(``K1+592``). A ``Finding`` is what a rule sees on one tick; the book turns findings into faults.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from streetlight.protocol import ALERT_TYPES, Alert
from streetlight.registry import Pole, Road, format_chainage

FAULT_TYPES = ALERT_TYPES  # the protocol's alert types, one list
SIDE_NAMES = {"N": "north side", "S": "south side", "E": "east side", "W": "west side"}


@dataclass(slots=True)
class Fault:
    fault_id: str
    type: str
    severity: str
    state: str  # open | acknowledged | resolved
    road: str
    pole: str | None
    span: list[str] | None
    segment: str | None
    side: str | None
    chainage_m: float | None
    lat: float | None
    lon: float | None
    feeder: str | None
    first_seen_ts: int
    last_seen_ts: int
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    cabinet: str | None = None
    chainage: str | None = None  # K1+592
    equipment: str | None = None  # the port, for an equipment_fault (protocol 1.1)

    def to_alert(self) -> Alert:
        d = asdict(self)
        d.pop("cabinet")
        d.pop("chainage")
        return Alert.model_validate(d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fault:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    @property
    def key(self) -> tuple[str, str]:
        return fault_key(self.type, self.pole, self.feeder, self.cabinet, self.equipment)


def fault_key(ftype: str, pole: str | None, feeder: str | None, cabinet: str | None,
              equipment: str | None = None) -> tuple[str, str]:
    """One root cause, one key: the pole (and its port, for equipment), else the feeder (cable,
    feeder voltage), else the cabinet."""
    if ftype == "feeder_outage" and feeder is None:
        return ftype, f"cabinet:{cabinet}"
    if equipment is not None and pole is not None:
        return ftype, f"{pole}/{equipment}"
    return ftype, pole or feeder or f"cabinet:{cabinet}"


@dataclass(slots=True)
class Finding:
    """What one rule sees now: the fault's type, place, evidence and a crew-readable summary."""

    type: str
    location: dict[str, Any]  # pole, span, segment, side, chainage_m, lat, lon, feeder, cabinet[, equipment]
    summary: str
    evidence: dict[str, Any]
    first_ts: int

    @property
    def key(self) -> tuple[str, str]:
        loc = self.location
        return fault_key(self.type, loc.get("pole"), loc.get("feeder"), loc.get("cabinet"), loc.get("equipment"))


def pole_location(p: Pole) -> dict[str, Any]:
    return {"pole": p.id, "span": None, "segment": p.segment, "side": p.side, "chainage_m": p.chainage_m,
            "lat": p.lat, "lon": p.lon, "feeder": p.feeder, "cabinet": p.cabinet}


def span_location(last_good: Pole, first_dead: Pole) -> dict[str, Any]:
    """A cable span: between the last pole with supply and the first without, on one feeder."""
    return {"pole": None, "span": [last_good.id, first_dead.id], "segment": first_dead.segment,
            "side": first_dead.side, "chainage_m": round((last_good.chainage_m + first_dead.chainage_m) / 2, 1),
            "lat": round((last_good.lat + first_dead.lat) / 2, 6), "lon": round((last_good.lon + first_dead.lon) / 2, 6),
            "feeder": first_dead.feeder, "cabinet": first_dead.cabinet}


def cabinet_location(road: Road, cabinet: str, feeder: str | None) -> dict[str, Any]:
    c = road.cabinet_by_id[cabinet]
    segs = [s.id for s in road.segments if s.start_m <= c.chainage_m < s.end_m]
    return {"pole": None, "span": None, "segment": segs[0] if segs else None, "side": None,
            "chainage_m": c.chainage_m, "lat": c.lat, "lon": c.lon, "feeder": feeder, "cabinet": cabinet}


def where(p: Pole) -> str:
    """``K0+395, south side, segment S1, feeder C1-L1``."""
    return f"{p.chainage}, {SIDE_NAMES.get(p.side, p.side)}, segment {p.segment}, feeder {p.feeder}"


def chainage_text(metres: float | None) -> str | None:
    return None if metres is None else format_chainage(metres)
