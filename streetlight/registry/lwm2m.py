"""Which poles of a road carry an LwM2M lamp controller, for a mixed road (simulation, tests)."""

from __future__ import annotations

import math
from dataclasses import replace

from .model import Road


def default_endpoint(road_id: str, pole_id: str) -> str:
    return f"urn:dev:sl:{road_id}:{pole_id}"


def with_lwm2m_share(road: Road, share: float) -> Road:
    """The road with LwM2M controllers on ``share`` (0 … 1) of its poles, spread evenly along it.
    Poles whose registry entry names an endpoint keep it; the others chosen get
    :func:`default_endpoint`; the poles not chosen have none."""
    if not 0 <= share <= 1:
        raise ValueError(f"the LwM2M share must be 0 … 1, got {share}")
    poles = []
    for i, p in enumerate(road.poles):
        chosen = math.floor((i + 1) * share + 1e-9) > math.floor(i * share + 1e-9)
        endpoint = (p.lwm2m_endpoint or default_endpoint(road.id, p.id)) if chosen else None
        poles.append(replace(p, lwm2m_endpoint=endpoint))
    return replace(road, poles=tuple(poles), _by_id={})
