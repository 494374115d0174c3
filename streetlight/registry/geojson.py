"""GeoJSON export of a road: poles and cabinets as points, segments as lines."""

from __future__ import annotations

from typing import Any

from .model import Road


def road_geojson(road: Road) -> dict[str, Any]:
    features: list[dict[str, Any]] = []
    for s in road.segments:
        on_segment = [p for p in road.poles if p.segment == s.id]
        if len(on_segment) >= 2:
            features.append({
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [[p.lon, p.lat] for p in on_segment]},
                "properties": {"kind": "segment", "id": s.id, "name": s.name, "start_m": s.start_m, "end_m": s.end_m},
            })
    for c in road.cabinets:
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [c.lon, c.lat]},
            "properties": {"kind": "cabinet", "id": c.id, "name": c.name, "chainage_m": c.chainage_m},
        })
    for p in road.poles:
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [p.lon, p.lat]},
            "properties": {
                "kind": "pole", "id": p.id, "chainage": p.chainage, "chainage_m": p.chainage_m, "side": p.side,
                "segment": p.segment, "feeder": p.feeder, "feeder_position": p.feeder_position,
                "cabinet": p.cabinet, "rated_power_w": p.rated_power_w, "equipment": list(p.equipment),
                "lwm2m_endpoint": p.lwm2m_endpoint,
            },
        })
    return {"type": "FeatureCollection", "properties": {"road": road.id, "name": road.name, "note": road.note}, "features": features}
