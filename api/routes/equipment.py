"""A multi-function pole's equipment (protocol 1.1): its ports as the registry lists them, their
state as last reported, and the open equipment faults that name them (what a crew must fix)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from ..deps import PREFIX, Context, context, guard
from ..jsonresp import FastJSON

router = APIRouter(prefix=PREFIX, tags=["equipment"])
Ctx = Annotated[Context, Depends(context)]


class PortOut(BaseModel):
    port: str
    kind: str
    rated_power_w: float
    always_on: bool
    on: bool | None = None  # as last reported (None: not reported since the platform started)
    power_w: float | None = None
    link: str | None = None
    tripped: bool = False
    fault_id: str | None = None  # the open equipment_fault naming this port
    fault: str | None = None  # its summary: what to fix


class EquipmentOut(BaseModel):
    road: str
    pole: str
    equipment: list[str]  # everything the pole carries, ported or not (detectors, sensors, the lamp)
    ports: list[PortOut]
    faults: list[dict[str, Any]]  # open faults of the pole's equipment, tilt and door


POLE_FAULTS = ("equipment_fault", "pole_tilt", "door_open")


@router.get("/poles/{pole}/equipment", response_model=EquipmentOut, **guard("read", extra=(404,)))
def pole_equipment(ctx: Ctx, pole: Annotated[str, Path(max_length=64, examples=["NH-024"])],
                   road: Annotated[str | None, Query(max_length=64)] = None) -> FastJSON:
    """A pole's equipment: each port with its rated and reported power, link and open fault."""
    r, pid = ctx.find_pole(pole, road)
    p = r.pole(pid)
    twin = ctx.platform.twin(r.id, pid) or {}
    live: dict[str, Any] = twin.get("ports") or {}
    open_faults = [f for t in POLE_FAULTS for f in ctx.platform.faults(road=r.id, type=t)
                   if f.get("pole") == pid and f.get("state") != "resolved"]
    by_port = {f.get("equipment"): f for f in open_faults if f.get("type") == "equipment_fault"}
    ports = []
    for q in p.ports:
        now = live.get(q.id) or {}
        f = by_port.get(q.id)
        ports.append({"port": q.id, "kind": q.kind, "rated_power_w": q.rated_power_w, "always_on": q.always_on,
                      "on": now.get("on"), "power_w": now.get("power_w"), "link": now.get("link"),
                      "tripped": bool(now.get("tripped", False)), "fault_id": f.get("fault_id") if f else None,
                      "fault": f.get("summary") if f else None})
    return FastJSON({"road": r.id, "pole": pid, "equipment": list(p.equipment), "ports": ports,
                     "faults": [{k: f.get(k) for k in ("fault_id", "type", "severity", "state", "equipment", "summary")}
                                for f in open_faults]})
