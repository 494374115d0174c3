"""Load and validate road registry files (YAML or JSON), reporting every problem at once."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import RegistryError, RegistryProblem, UnknownRoadError
from .model import EQUIPMENT, PORT_ID_RE, PORT_KINDS, Cabinet, Feeder, Pole, Port, Road, Segment
from .synthetic import make_road

ID_RE = re.compile(r"^[A-Za-z0-9-]{1,32}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RoadHeader(_Strict):
    id: str = Field(pattern=ID_RE.pattern)
    name: str
    local_name: str = ""
    lighting_class: str
    timezone: str = "Asia/Shanghai"
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    note: str = ""


class SegmentEntry(_Strict):
    id: str = Field(pattern=ID_RE.pattern)
    name: str
    from_name: str
    to_name: str
    start_m: float = Field(ge=0)
    end_m: float = Field(gt=0)


class CabinetEntry(_Strict):
    id: str = Field(pattern=ID_RE.pattern)
    name: str
    chainage_m: float = Field(ge=0)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    meter: str = ""


class FeederEntry(_Strict):
    id: str = Field(pattern=ID_RE.pattern)
    cabinet: str


class PortEntry(_Strict):
    id: str = Field(pattern=PORT_ID_RE)
    kind: str
    rated_power_w: float = Field(gt=0, le=2000)
    always_on: bool = True


class PoleEntry(_Strict):
    id: str = Field(pattern=ID_RE.pattern)
    chainage_m: float = Field(ge=0)
    side: Literal["N", "S", "E", "W"]
    segment: str
    feeder: str
    feeder_position: int = Field(ge=1)
    cabinet: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    rated_power_w: float = Field(gt=0, le=2000)
    equipment: list[str] = Field(min_length=1)
    ports: list[PortEntry] = Field(default_factory=list)
    lamp: str = Field(default="", max_length=200, description="the luminaire, as a crew orders a replacement")
    driver: str = Field(default="", max_length=200, description="the LED driver, as a crew orders a replacement")
    lwm2m_endpoint: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")


def _problems_from(err: ValidationError, pole: str | None, prefix: str) -> list[RegistryProblem]:
    out = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(entry)"
        out.append(RegistryProblem(pole=pole, field=f"{prefix}{loc}", message=e["msg"]))
    return out


def road_from_mapping(data: Any, source: str) -> Road:
    """Validate a parsed registry document and build the :class:`Road`."""
    problems: list[RegistryProblem] = []
    if not isinstance(data, dict):
        raise RegistryError(source, [RegistryProblem(None, "(file)", "expected a mapping with road, segments, cabinets, feeders, poles")])
    for key in ("road", "segments", "cabinets", "feeders", "poles"):
        if key not in data:
            problems.append(RegistryProblem(None, key, "missing section"))
    if problems:
        raise RegistryError(source, problems)

    def parse_list(model: type[BaseModel], items: Any, section: str) -> list[Any]:
        if not isinstance(items, list):
            problems.append(RegistryProblem(None, section, "expected a list"))
            return []
        parsed = []
        for i, item in enumerate(items):
            ident = item.get("id") if isinstance(item, dict) else None
            try:
                parsed.append(model.model_validate(item))
            except ValidationError as err:
                pole = str(ident) if section == "poles" and ident is not None else None
                label = f"{section}[{i}]" + (f" ({ident})" if ident and section != "poles" else "")
                problems.extend(_problems_from(err, pole, f"{label}." if pole is None else ""))
        return parsed

    try:
        header = RoadHeader.model_validate(data["road"])
    except ValidationError as err:
        problems.extend(_problems_from(err, None, "road."))
        header = None
    segments = parse_list(SegmentEntry, data["segments"], "segments")
    cabinets = parse_list(CabinetEntry, data["cabinets"], "cabinets")
    feeders = parse_list(FeederEntry, data["feeders"], "feeders")
    poles = parse_list(PoleEntry, data["poles"], "poles")

    seg_ids = {s.id: s for s in segments}
    cab_ids = {c.id for c in cabinets}
    feeder_cab = {f.id: f.cabinet for f in feeders}
    for f in feeders:
        if f.cabinet not in cab_ids:
            problems.append(RegistryProblem(None, f"feeders ({f.id}).cabinet", f"unknown cabinet {f.cabinet!r}"))
    for s in segments:
        if s.end_m <= s.start_m:
            problems.append(RegistryProblem(None, f"segments ({s.id}).end_m", "must be greater than start_m"))

    seen: set[str] = set()
    endpoints: dict[str, str] = {}
    positions: dict[str, dict[int, str]] = {}
    last_chainage = -1.0
    for p in poles:
        def bad(field: str, message: str, pole: PoleEntry = p) -> None:
            problems.append(RegistryProblem(pole.id, field, message))

        if p.id in seen:
            bad("id", "duplicate pole id")
        seen.add(p.id)
        if p.chainage_m <= last_chainage:
            bad("chainage_m", f"{p.chainage_m} is not after the previous pole's {last_chainage}: poles must be in chainage order")
        last_chainage = max(last_chainage, p.chainage_m)
        seg = seg_ids.get(p.segment)
        if seg is None:
            bad("segment", f"unknown segment {p.segment!r}")
        elif not (seg.start_m <= p.chainage_m <= seg.end_m):
            bad("chainage_m", f"{p.chainage_m} lies outside segment {seg.id} ({seg.start_m}–{seg.end_m} m)")
        if p.feeder not in feeder_cab:
            bad("feeder", f"unknown feeder {p.feeder!r}")
        elif feeder_cab[p.feeder] != p.cabinet:
            bad("cabinet", f"{p.cabinet!r} but feeder {p.feeder} belongs to cabinet {feeder_cab[p.feeder]!r}")
        if p.cabinet not in cab_ids:
            bad("cabinet", f"unknown cabinet {p.cabinet!r}")
        unknown = sorted(set(p.equipment) - EQUIPMENT)
        if unknown:
            bad("equipment", f"unknown equipment {unknown}; known: {sorted(EQUIPMENT)}")
        if "lamp" not in p.equipment:
            bad("equipment", "a streetlight pole must carry a 'lamp'")
        port_ids = [q.id for q in p.ports]
        if len(set(port_ids)) != len(port_ids):
            bad("ports", f"duplicate port ids in {port_ids}")
        for q in p.ports:
            if q.kind not in PORT_KINDS:
                bad(f"ports ({q.id}).kind", f"{q.kind!r} is not equipment on a port; known: {sorted(PORT_KINDS)}")
            elif q.kind not in p.equipment:
                bad(f"ports ({q.id}).kind", f"{q.kind!r} is on a port but not in the pole's equipment")
        slot = positions.setdefault(p.feeder, {})
        if p.feeder_position in slot:
            bad("feeder_position", f"position {p.feeder_position} on {p.feeder} is already taken by {slot[p.feeder_position]}")
        slot[p.feeder_position] = p.id
        if p.lwm2m_endpoint is not None:
            if p.lwm2m_endpoint in endpoints:
                bad("lwm2m_endpoint", f"{p.lwm2m_endpoint!r} is already the controller of {endpoints[p.lwm2m_endpoint]}")
            endpoints.setdefault(p.lwm2m_endpoint, p.id)
    for fid, slot in positions.items():
        expected = set(range(1, len(slot) + 1))
        if set(slot) != expected:
            missing = sorted(expected - set(slot))
            problems.append(RegistryProblem(None, f"feeders ({fid})", f"feeder positions must run 1..{len(slot)}; missing {missing}"))
    if not poles and not problems:
        problems.append(RegistryProblem(None, "poles", "a road needs at least one pole"))
    if problems or header is None:
        raise RegistryError(source, problems)

    road_poles = tuple(
        Pole(
            id=p.id, index=i, chainage_m=p.chainage_m, side=p.side, segment=p.segment, feeder=p.feeder,
            feeder_position=p.feeder_position, cabinet=p.cabinet, lat=p.lat, lon=p.lon,
            rated_power_w=p.rated_power_w, equipment=tuple(p.equipment), lamp=p.lamp, driver=p.driver,
            lwm2m_endpoint=p.lwm2m_endpoint,
            ports=tuple(Port(id=q.id, kind=q.kind, rated_power_w=q.rated_power_w, always_on=q.always_on) for q in p.ports),
        )
        for i, p in enumerate(poles)
    )
    road_feeders = tuple(
        Feeder(id=f.id, cabinet=f.cabinet, poles=tuple(positions.get(f.id, {})[k] for k in sorted(positions.get(f.id, {}))))
        for f in feeders
    )
    return Road(
        id=header.id, name=header.name, local_name=header.local_name, lighting_class=header.lighting_class,
        timezone=header.timezone, lat=header.lat, lon=header.lon, poles=road_poles,
        segments=tuple(Segment(**s.model_dump()) for s in segments),
        cabinets=tuple(Cabinet(**c.model_dump()) for c in cabinets),
        feeders=road_feeders, note=header.note,
    )


def load_road_file(path: str | Path) -> Road:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise RegistryError(str(path), [RegistryProblem(None, "(file)", f"cannot read: {err.strerror}")]) from err
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as err:
        raise RegistryError(str(path), [RegistryProblem(None, "(file)", f"not valid YAML/JSON: {err}")]) from err
    return road_from_mapping(data, str(path))


def shipped_roads() -> list[str]:
    folder = resources.files("streetlight") / "data" / "roads"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


@lru_cache(maxsize=32)
def load_road(ref: str) -> Road:
    """A road by id of a shipped registry (``nanhuan-1``), by file path, ``synthetic:N`` (a road of N
    poles with the id ``synthetic-N``) or ``synthetic:N:ID`` (the same road under the id ``ID``: a
    synthetic city of several roads)."""
    if m := re.fullmatch(r"synthetic:(\d+):([a-z0-9][a-z0-9-]{0,62})", ref):
        return make_road(int(m[1]), road_id=m[2])
    if ref.startswith("synthetic:") or re.fullmatch(r"synthetic-\d+", ref):
        n = int(ref.split(":", 1)[1] if ":" in ref else ref.rsplit("-", 1)[1])
        return make_road(n)
    if ref in shipped_roads():
        with resources.as_file(resources.files("streetlight") / "data" / "roads" / f"{ref}.yaml") as p:
            return load_road_file(p)
    if Path(ref).suffix in (".yaml", ".yml", ".json") and Path(ref).exists():
        return load_road_file(ref)
    raise UnknownRoadError(ref, shipped_roads())


def road_to_mapping(road: Road) -> dict[str, Any]:
    return {
        "road": {
            "id": road.id, "name": road.name, "local_name": road.local_name,
            "lighting_class": road.lighting_class, "timezone": road.timezone,
            "lat": road.lat, "lon": road.lon, "note": road.note,
        },
        "segments": [
            {"id": s.id, "name": s.name, "from_name": s.from_name, "to_name": s.to_name, "start_m": s.start_m, "end_m": s.end_m}
            for s in road.segments
        ],
        "cabinets": [{"id": c.id, "name": c.name, "chainage_m": c.chainage_m, "lat": c.lat, "lon": c.lon, "meter": c.meter}
                     for c in road.cabinets],
        "feeders": [{"id": f.id, "cabinet": f.cabinet} for f in road.feeders],
        "poles": [
            {
                "id": p.id, "chainage_m": p.chainage_m, "side": p.side, "segment": p.segment, "feeder": p.feeder,
                "feeder_position": p.feeder_position, "cabinet": p.cabinet, "lat": p.lat, "lon": p.lon,
                "rated_power_w": p.rated_power_w, "equipment": list(p.equipment),
                "ports": [{"id": q.id, "kind": q.kind, "rated_power_w": q.rated_power_w, "always_on": q.always_on}
                          for q in p.ports],
                **({"lamp": p.lamp} if p.lamp else {}), **({"driver": p.driver} if p.driver else {}),
                **({"lwm2m_endpoint": p.lwm2m_endpoint} if p.lwm2m_endpoint else {}),
            }
            for p in road.poles
        ],
    }
