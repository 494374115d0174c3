"""A multi-function pole's equipment and the distribution cabinets (protocol 1.1).

* ``GET /poles/{pole}/equipment``: its ports as the registry lists them, their state as last
  reported, and the open equipment faults that name them (what a crew must fix);
* ``POST /poles/{pole}/ports/{port}`` (``control``: operators) switches a port on or off;
  ``POST /poles/{pole}/ports/{port}/power-cycle`` (``power_cycle``: operators and maintenance)
  switches it off and on again (a hung camera). Both are one command to the pole, tracked and
  answered by its ack like a dim (``GET /commands``), and audited;
* ``POST /poles/{pole}/maintenance`` (``faults``: maintenance crews) opens a maintenance window at
  the pole from now (road time): a service door opened in it raises no ``door_open``;
* ``GET /cabinets`` and ``GET /cabinets/{cabinet}``: each feeder's breaker, current and energy as
  the cabinet last reported them, with the cabinet's open faults.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel

from ..auth import Principal
from ..deps import PREFIX, Context, context, guard, principal
from ..jsonresp import FastJSON
from ..models import CommandAccepted, MaintenanceOut, MaintenanceRequest, PortRequest, PowerCycleRequest
from ..platform import Command, PortState, cabinet_state

router = APIRouter(prefix=PREFIX, tags=["equipment"])
Ctx = Annotated[Context, Depends(context)]
Who = Annotated[Principal, Depends(principal)]
PoleP = Annotated[str, Path(max_length=64, examples=["NH-024"])]
PortP = Annotated[str, Path(max_length=32, pattern=r"^[a-z0-9-]{1,32}$", examples=["cam-1"])]
RoadQ = Annotated[str | None, Query(description="road id; default: the first road served", max_length=64)]


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
    twin = ctx.platform.twin(r.id, pid)
    live = twin.ports if twin else {}
    open_faults = [f for t in POLE_FAULTS for f in ctx.platform.faults(road=r.id, type=t)
                   if f.pole == pid and f.state != "resolved"]
    by_port = {f.equipment: f for f in open_faults if f.type == "equipment_fault"}
    ports = []
    for q in p.ports:
        now = live.get(q.id) or PortState()
        f = by_port.get(q.id)
        ports.append({"port": q.id, "kind": q.kind, "rated_power_w": q.rated_power_w, "always_on": q.always_on,
                      "on": now.on, "power_w": now.power_w, "link": now.link, "tripped": bool(now.tripped),
                      "fault_id": f.fault_id if f else None, "fault": f.summary if f else None})
    return FastJSON({"road": r.id, "pole": pid, "equipment": list(p.equipment), "ports": ports,
                     "faults": [{"fault_id": f.fault_id, "type": f.type, "severity": f.severity, "state": f.state,
                                 "equipment": f.equipment, "summary": f.summary} for f in open_faults]})


def _command(ctx: Context, who: Principal, action: str, target: str, params: dict[str, Any],
             send: Any) -> FastJSON:
    """Issue one equipment command, audited as the dims are (``failed`` with the error, else ``ok``)."""
    try:
        cmd: Command = send()
    except Exception as err:
        ctx.audit.record(actor=who.name, role=who.role, token_id=who.token_id, action=action, target=target,
                         params=params, result="failed", detail=str(err)[:500])
        raise
    ctx.audit.record(actor=who.name, role=who.role, token_id=who.token_id, action=action, target=target,
                     params={**params, "command_ids": [cmd.cmd_id]}, result="ok")
    ctx.metrics.commands.labels("pole").inc()
    return FastJSON({"command_ids": [cmd.cmd_id], "road": cmd.road, "target": target, "poles": 1}, status_code=202)


@router.post("/poles/{pole}/ports/{port}", status_code=202, response_model=CommandAccepted,
             **guard("control", limited=True, extra=(404,)))
def switch_port(ctx: Ctx, who: Who, pole: PoleP, port: PortP,
                req: Annotated[PortRequest, Body(examples=[{"on": False}])], road: RoadQ = None) -> FastJSON:
    """Switch one port of a pole on or off (the equipment on it loses or gets its supply)."""
    r, pid = ctx.find_pole(pole, road)
    return _command(ctx, who, "port", f"pole {pid} port {port}", {"port": port, "on": req.on},
                    lambda: ctx.platform.switch_port(r.id, pid, port, req.on, who.actor))


@router.post("/poles/{pole}/ports/{port}/power-cycle", status_code=202, response_model=CommandAccepted,
             **guard("power_cycle", limited=True, extra=(404,)))
def power_cycle(ctx: Ctx, who: Who, pole: PoleP, port: PortP,
                req: Annotated[PowerCycleRequest | None, Body(examples=[{"off_s": 10}])] = None,
                road: RoadQ = None) -> FastJSON:
    """Switch a port off and on again after ``off_s`` seconds: what brings a hung camera back."""
    r, pid = ctx.find_pole(pole, road)
    off_s = (req or PowerCycleRequest()).off_s
    return _command(ctx, who, "power_cycle", f"pole {pid} port {port}", {"port": port, "off_s": off_s},
                    lambda: ctx.platform.power_cycle(r.id, pid, port, off_s, who.actor))


@router.post("/poles/{pole}/maintenance", response_model=MaintenanceOut, **guard("faults", extra=(404, 503)))
def maintenance(ctx: Ctx, who: Who, pole: PoleP, req: MaintenanceRequest | None = None,
                road: RoadQ = None) -> FastJSON:
    """A crew is at the pole from now for ``minutes``: its service door may open without a ``door_open``."""
    r, pid = ctx.find_pole(pole, road)
    minutes = (req or MaintenanceRequest()).minutes
    params: dict[str, Any] = {"minutes": minutes}
    try:
        start, until = ctx.platform.maintenance(r.id, pid, minutes, who.actor)
    except Exception as err:
        ctx.audit.record(actor=who.name, role=who.role, token_id=who.token_id, action="maintenance_window",
                         target=f"pole {pid}", params=params, result="failed", detail=str(err)[:500])
        raise
    ctx.audit.record(actor=who.name, role=who.role, token_id=who.token_id, action="maintenance_window",
                     target=f"pole {pid}", params={**params, "until_ms": until}, result="ok")
    return FastJSON({"road": r.id, "pole": pid, "from_ms": start, "until_ms": until})


class FeederOut(BaseModel):
    feeder: str
    poles: list[str]  # from the cabinet outward
    breaker: str | None  # closed | open, as last reported (None: not reported)
    current_a: float | None
    energy_wh: float | None  # the feeder's meter, cumulative


class CabinetStateOut(BaseModel):
    road: str
    cabinet: str
    name: str
    chainage_m: float
    lat: float
    lon: float
    meter: str
    online: bool | None  # None: not heard since the platform started
    last_seen_ms: int | None
    voltage_v: float | None
    feeders: list[FeederOut]
    faults: list[dict[str, Any]]  # open faults at this cabinet or on its feeders


def _cabinet(ctx: Context, road_id: str, cabinet: str) -> dict[str, Any]:
    r = ctx.road(road_id)
    out = cabinet_state(r, cabinet, ctx.platform.cabinet(r.id, cabinet) if cabinet in r.cabinet_by_id else None)
    feeders = {f["feeder"] for f in out["feeders"]}
    out["faults"] = [{"fault_id": f.fault_id, "type": f.type, "severity": f.severity, "state": f.state,
                      "feeder": f.feeder, "summary": f.summary}
                     for f in ctx.platform.faults(road=r.id) if f.state != "resolved" and f.pole is None
                     and (f.cabinet == cabinet or f.feeder in feeders)]
    return out


@router.get("/cabinets", response_model=list[CabinetStateOut], **guard("read", extra=(404,)))
def cabinets(ctx: Ctx, road: RoadQ = None) -> FastJSON:
    """Every cabinet of a road with its feeders' breakers, currents and energy (the dashboard draws them)."""
    r = ctx.road(road)
    return FastJSON([_cabinet(ctx, r.id, c.id) for c in r.cabinets])


@router.get("/cabinets/{cabinet}", response_model=CabinetStateOut, **guard("read", extra=(404,)))
def cabinet(ctx: Ctx, cabinet: Annotated[str, Path(max_length=64, examples=["C1"])], road: RoadQ = None) -> FastJSON:
    """One cabinet: each feeder's breaker, current and metered energy as last reported, and its open faults."""
    return FastJSON(_cabinet(ctx, ctx.road(road).id, cabinet))
