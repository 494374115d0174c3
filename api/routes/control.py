"""Control: dim a pole, a list of poles, a segment or the road; identify; emergency all-on; commands."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query

from streetlight.registry import Road

from ..auth import Principal
from ..deps import PREFIX, Context, context, guard, principal
from ..errors import ConflictProblem, Forbidden, NotFoundProblem
from ..jsonresp import FastJSON
from ..models import (
    CommandAccepted,
    CommandBatch,
    CommandOut,
    DimRequest,
    EmergencyOut,
    EmergencyRequest,
    IdentifyRequest,
    PolesDimRequest,
    RoadDimRequest,
)
from ..platform import FORCE_HINT
from ..views import command_out

router = APIRouter(prefix=PREFIX, tags=["control"])
Ctx = Annotated[Context, Depends(context)]
Who = Annotated[Principal, Depends(principal)]
RoadQ = Annotated[str | None, Query(description="road id; default: the first road served", max_length=64)]
DIM_EXAMPLE = {"level": 30, "ramp_ms": 2000, "expires_in_s": 3600}


def _dim(ctx: Context, who: Principal, road: Road, poles: list[str], req: DimRequest, target: str,
         action: str) -> FastJSON:
    expires = ctx.platform.now_ms() + req.expires_in_s * 1000 if req.expires_in_s else None
    params: dict[str, Any] = {"level": req.level, "ramp_ms": req.ramp_ms, "expires_in_s": req.expires_in_s,
                              "poles": len(poles), "force": req.force}
    if req.force and not who.may("admin"):
        ctx.audit.record(actor=who.name, role=who.role, token_id=who.token_id, action=action, target=target,
                         params=params, result="denied", detail="force needs the admin role")
        raise Forbidden(f"role {who.role!r} may not force a level under a segment's floor (the lighting class of "
                        "its measured traffic); send the request without \"force\", or ask an admin")
    try:
        cmds = ctx.platform.dim(road.id, poles, req.level, req.ramp_ms, expires, who.actor, force=req.force)
    except Exception as err:
        ctx.audit.record(actor=who.name, role=who.role, token_id=who.token_id, action=action, target=target,
                         params=params, result="failed", detail=str(err)[:500])
        raise
    ids = [c.cmd_id for c in cmds]
    applied = [{"pole": c.pole, "cmd_id": c.cmd_id, "level": c.level, "rule": c.decision.rule if c.decision else None,
                "why": c.decision.why if c.decision else None} for c in cmds]
    raised = sum(1 for c in cmds if c.decision is not None and c.decision.rule == "floor")
    ctx.audit.record(actor=who.name, role=who.role, token_id=who.token_id, action=action, target=target,
                     params={**params, "command_ids": ids, "raised": raised}, result="ok")
    ctx.metrics.commands.labels(target.split(" ")[0]).inc()
    return FastJSON({"command_ids": ids, "road": road.id, "target": target, "poles": len(poles),
                     "level": req.level, "force": req.force, "expires_ms": expires, "applied": applied,
                     "raised": raised, "how_to_force": FORCE_HINT if raised else None}, status_code=202)


@router.post("/poles/{pole}/dim", status_code=202, response_model=CommandAccepted,
             **guard("control", limited=True, extra=(404,)))
def dim_pole(ctx: Ctx, who: Who, pole: Annotated[str, Path(max_length=64, examples=["NH-047"])],
             req: Annotated[DimRequest, Body(examples=[DIM_EXAMPLE])], road: RoadQ = None) -> FastJSON:
    """Dim one pole. With ``expires_in_s`` it is an override that lapses back to the schedule."""
    r, pid = ctx.find_pole(pole, road)
    return _dim(ctx, who, r, [pid], req, f"pole {pid}", "dim_pole")


@router.post("/poles/dim", status_code=202, response_model=CommandAccepted,
             **guard("control", limited=True, extra=(404,)))
def dim_poles(ctx: Ctx, who: Who, req: PolesDimRequest, road: RoadQ = None) -> FastJSON:
    """Dim a list of poles of one road."""
    r = ctx.road(road)
    unknown = [p for p in req.poles if not r.has_pole(p)]
    if unknown:
        raise NotFoundProblem(f"{len(unknown)} unknown pole(s) on {r.id}: {', '.join(unknown[:5])}; "
                              f"pole ids look like {r.poles[0].id}")
    poles = list(dict.fromkeys(req.poles))
    return _dim(ctx, who, r, poles, req, f"poles {','.join(poles[:3])}{'…' if len(poles) > 3 else ''}", "dim_poles")


@router.post("/segments/{segment}/dim", status_code=202, response_model=CommandAccepted,
             **guard("control", limited=True, extra=(404,)))
def dim_segment(ctx: Ctx, who: Who, segment: Annotated[str, Path(max_length=64, examples=["S3"])],
                req: Annotated[DimRequest, Body(examples=[DIM_EXAMPLE])], road: RoadQ = None) -> FastJSON:
    """Dim every pole of a segment."""
    r = ctx.road(road)
    if segment not in r.segment_by_id:
        raise NotFoundProblem(f"no segment {segment!r} on {r.id}; segments are {', '.join(r.segment_by_id)}")
    return _dim(ctx, who, r, [p.id for p in r.poles_of_segment(segment)], req, f"segment {segment}", "dim_segment")


@router.post("/roads/{road}/dim", status_code=202, response_model=CommandAccepted,
             **guard("control", limited=True, extra=(404, 409)))
def dim_road(ctx: Ctx, who: Who, road: Annotated[str, Path(max_length=64, examples=["nanhuan-1"])],
             req: Annotated[RoadDimRequest, Body(examples=[{**DIM_EXAMPLE, "confirm": True}])]) -> FastJSON:
    """Dim the whole road; asks for ``"confirm": true``."""
    r = ctx.road(road)
    if not req.confirm:
        raise ConflictProblem(f"dimming all {len(r.poles)} poles of {r.id} needs \"confirm\": true in the body")
    return _dim(ctx, who, r, r.pole_ids, req, f"road {r.id}", "dim_road")


@router.post("/poles/{pole}/identify", status_code=202, response_model=CommandAccepted,
             **guard("identify", limited=True, extra=(404,)))
def identify(ctx: Ctx, who: Who, pole: Annotated[str, Path(max_length=64, examples=["NH-047"])],
             req: IdentifyRequest | None = None, road: RoadQ = None) -> FastJSON:
    """Blink a pole so that a crew on the street can find it."""
    r, pid = ctx.find_pole(pole, road)
    seconds = (req or IdentifyRequest()).seconds
    cmd = ctx.platform.identify(r.id, pid, seconds, who.actor)
    ctx.audit.record(actor=who.name, role=who.role, token_id=who.token_id, action="identify", target=f"pole {pid}",
                     params={"seconds": seconds, "command_ids": [cmd.cmd_id]}, result="ok")
    return FastJSON({"command_ids": [cmd.cmd_id], "road": r.id, "target": f"pole {pid}", "poles": 1},
                    status_code=202)


@router.post("/roads/{road}/emergency", response_model=EmergencyOut,
             **guard("control", limited=True, extra=(404, 409)))
def emergency(ctx: Ctx, who: Who, road: Annotated[str, Path(max_length=64, examples=["nanhuan-1"])],
              req: Annotated[EmergencyRequest, Body(examples=[{"on": True, "confirm": True}])]) -> FastJSON:
    """Emergency all-on (every pole to 100 %, held above schedules and overrides) and its release."""
    r = ctx.road(road)
    if not req.confirm:
        raise ConflictProblem(f"switching the emergency all-on {'on' if req.on else 'off'} for {r.id} "
                              "needs \"confirm\": true in the body")
    ctx.platform.emergency(r.id, req.on, who.actor)
    ctx.audit.record(actor=who.name, role=who.role, token_id=who.token_id, action="emergency",
                     target=f"road {r.id}", params={"on": req.on}, result="ok")
    return FastJSON({"road": r.id, "emergency": ctx.platform.emergency_active(r.id)})


@router.get("/commands", response_model=CommandBatch, **guard("read", extra=(404,)))
def get_commands(ctx: Ctx, ids: Annotated[str, Query(max_length=8_000, pattern=r"^[A-Za-z0-9_.,-]*$",
                                                     examples=["c-000001,c-000002"],
                                                     description="comma-separated command ids")]) -> FastJSON:
    """Several commands at once (a dim answers with one command id per pole)."""
    wanted = [i for i in dict.fromkeys(ids.split(",")) if i][:2000]
    out = []
    for cmd_id in wanted:
        cmd = ctx.platform.command(cmd_id)
        if cmd is None:
            raise NotFoundProblem(f"no command {cmd_id!r}; command ids are returned by the dim and identify routes")
        out.append(command_out(cmd))
    summary = {k: sum(c["summary"][k] for c in out) for k in ("pending", "acked", "failed", "expired")}
    return FastJSON({"count": len(out), "done": summary["pending"] == 0, "summary": summary, "commands": out})


@router.get("/commands/{cmd_id}", response_model=CommandOut, **guard("read", extra=(404,)))
def get_command(ctx: Ctx, cmd_id: Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
                                                    examples=["c-000001"])]) -> FastJSON:
    """A command and, per pole, pending / acked / failed / expired."""
    cmd = ctx.platform.command(cmd_id)
    if cmd is None:
        raise NotFoundProblem(f"no command {cmd_id!r}; command ids are returned by the dim and identify routes")
    return FastJSON(command_out(cmd))
