"""Synthetic roads: the generator behind the shipped ``nanhuan-1`` file and the N-pole scale roads.

Geometry is a straight east-west arterial with staggered poles (north, south, north, ...),
cabinets every ``cabinet_every_m`` feeding two radial feeders each (one west, one east), and a
segment boundary (an intersection) every ``segment_every_m``.
"""

from __future__ import annotations

import math

from .model import PORT_KINDS, Cabinet, Feeder, Pole, Port, Road, Segment

EARTH_M_PER_DEG_LAT = 111_320.0
SIDE_OFFSET_M = 14.0  # half the kerb-to-kerb width plus the verge, for an 8-lane arterial

# the two luminaires of the reference road: 200 W at the crossings, 150 W between them
LAMPS = {True: "LED road luminaire 200 W, 4000 K, type III optic",
         False: "LED road luminaire 150 W, 4000 K, type II optic"}
DRIVERS = {True: "programmable LED driver 200 W, 1400 mA, DALI-2",
           False: "programmable LED driver 150 W, 1050 mA, DALI-2"}


def _lonlat(origin_lat: float, origin_lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    lat = origin_lat + north_m / EARTH_M_PER_DEG_LAT
    lon = origin_lon + east_m / (EARTH_M_PER_DEG_LAT * math.cos(math.radians(origin_lat)))
    return round(lat, 6), round(lon, 6)


def make_road(
    n_poles: int,
    *,
    road_id: str | None = None,
    prefix: str = "SY",
    name: str | None = None,
    local_name: str = "",
    spacing_m: float = 35.0,
    first_m: float = 10.0,
    segment_every_m: float = 800.0,
    cabinet_every_m: float = 1600.0,
    origin_lat: float = 31.7180,
    origin_lon: float = 119.5450,
    intersections: list[str] | None = None,
    note: str = "",
    id_width: int | None = None,
) -> Road:
    """A plausible road of ``n_poles`` poles; deterministic for the same arguments."""
    if n_poles < 1:
        raise ValueError("a road needs at least one pole")
    width = id_width or max(3, len(str(n_poles)))
    road_id = road_id or f"synthetic-{n_poles}"
    length = first_m + (n_poles - 1) * spacing_m + first_m
    n_segments = max(1, math.ceil(length / segment_every_m))
    bounds = [min(length, i * segment_every_m) for i in range(n_segments)] + [length]
    names = intersections or [f"Cross St {i}" for i in range(n_segments + 1)]
    segments = tuple(
        Segment(
            id=f"S{i + 1}",
            name=f"{names[i]} – {names[i + 1]}",
            from_name=names[i],
            to_name=names[i + 1],
            start_m=round(bounds[i], 1),
            end_m=round(bounds[i + 1], 1),
        )
        for i in range(n_segments)
    )
    n_cab = max(1, math.ceil(length / cabinet_every_m))
    cab_span = length / n_cab
    cabinets = []
    for c in range(n_cab):
        ch = round(cab_span * (c + 0.5), 1)
        lat, lon = _lonlat(origin_lat, origin_lon, ch, -SIDE_OFFSET_M - 4)
        cabinets.append(Cabinet(id=f"C{c + 1}", name=f"Cabinet {c + 1} ({ch:.0f} m)", chainage_m=ch, lat=lat, lon=lon,
                                meter=f"EM-C{c + 1}"))

    chainages = [first_m + i * spacing_m for i in range(n_poles)]
    # which feeder each pole hangs on: its cabinet's west line (L1) or east line (L2)
    feeder_members: dict[str, list[tuple[float, int]]] = {}
    pole_feeder: list[tuple[str, str]] = []
    for i, ch in enumerate(chainages):
        c = min(n_cab - 1, int(ch // cab_span))
        cab = cabinets[c]
        line = "L1" if ch < cab.chainage_m else "L2"
        fid = f"{cab.id}-{line}"
        feeder_members.setdefault(fid, []).append((abs(ch - cab.chainage_m), i))
        pole_feeder.append((fid, cab.id))
    position = {}
    feeders = []
    for fid in sorted(feeder_members, key=lambda f: (int(f.split("-")[0][1:]), f)):
        ordered = sorted(feeder_members[fid])
        for pos, (_, i) in enumerate(ordered, start=1):
            position[i] = pos
        feeders.append(Feeder(id=fid, cabinet=fid.split("-")[0], poles=tuple(f"{prefix}-{i + 1:0{width}d}" for _, i in ordered)))

    # the pole nearest each junction the road crosses (every segment boundary but the road's start)
    # carries its traffic signal
    signal_poles = {min(range(n_poles), key=lambda i: abs(chainages[i] - b)) for b in bounds[1:]}
    poles = []
    seg_idx = 0
    for i, ch in enumerate(chainages):
        while seg_idx < n_segments - 1 and ch >= segments[seg_idx].end_m:
            seg_idx += 1
        side = "N" if i % 2 == 0 else "S"
        lat, lon = _lonlat(origin_lat, origin_lon, ch, SIDE_OFFSET_M if side == "N" else -SIDE_OFFSET_M)
        seg = segments[seg_idx]
        near_crossing = min(ch - seg.start_m, seg.end_m - ch) < 60
        equipment = ["lamp", "energy_meter", "leakage_monitor", "traffic_detector"]
        if i % 3 == 0:
            equipment.append("light_sensor")
        if near_crossing or i % 4 == 0:
            equipment.append("pedestrian_detector")
        if near_crossing or i % 6 == 0:
            equipment.append("camera")
        if i % 8 == 0:
            equipment.append("small_cell")
        if i in signal_poles:
            equipment.append("traffic_signal")
        if 70 <= seg.end_m - ch < 105:  # the advance direction sign before a junction
            equipment.append("sign")
        if i % 23 == 11:  # parking guidance near the road's car parks
            equipment.append("display")
        if i == n_poles // 2:
            equipment.append("weather_station")
        fid, cab = pole_feeder[i]
        poles.append(
            Pole(
                id=f"{prefix}-{i + 1:0{width}d}",
                index=i,
                chainage_m=round(ch, 1),
                side=side,
                segment=seg.id,
                feeder=fid,
                feeder_position=position[i],
                cabinet=cab,
                lat=lat,
                lon=lon,
                rated_power_w=200.0 if near_crossing else 150.0,
                equipment=tuple(equipment),
                ports=_ports(equipment),
                lamp=LAMPS[near_crossing],
                driver=DRIVERS[near_crossing],
            )
        )
    return Road(
        id=road_id,
        name=name or f"Synthetic road of {n_poles} poles",
        local_name=local_name,
        lighting_class="CJJ45-I",
        timezone="Asia/Shanghai",
        lat=origin_lat,
        lon=origin_lon,
        poles=tuple(poles),
        segments=segments,
        cabinets=tuple(cabinets),
        feeders=tuple(feeders),
        note=note or "Synthetic geometry for scale tests.",
    )


def _ports(equipment: list[str]) -> tuple[Port, ...]:
    """One port per piece of ported equipment, numbered per kind (``cam-1``, ``cell-1``)."""
    out: list[Port] = []
    for kind in equipment:
        if kind in PORT_KINDS:
            prefix, rated = PORT_KINDS[kind]
            n = sum(1 for q in out if q.kind == kind) + 1
            out.append(Port(id=f"{prefix}-{n}", kind=kind, rated_power_w=rated))
    return tuple(out)
