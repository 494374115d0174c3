"""Dimming schedules and calendar exceptions: list, create, update, delete, which is active where."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from controller.schedule import Step

from ..auth import Principal
from ..deps import PREFIX, Context, context, guard, principal
from ..errors import NotFoundProblem
from ..jsonresp import FastJSON
from ..models import ActiveSchedules, ScheduleIn, ScheduleOut
from ..platform import Schedule
from ..views import schedule_out

router = APIRouter(prefix=PREFIX, tags=["schedules"])
Ctx = Annotated[Context, Depends(context)]
Who = Annotated[Principal, Depends(principal)]
RoadQ = Annotated[str | None, Query(description="road id; default: the first road served", max_length=64)]
SchedP = Annotated[str, Path(max_length=64, examples=["nanhuan-1-default"])]


def _find(ctx: Context, road: str, schedule_id: str) -> Schedule:
    for s in ctx.platform.schedules(road):
        if s.id == schedule_id:
            return s
    raise NotFoundProblem(f"no schedule {schedule_id!r} on {road}; list them with GET /api/v1/schedules")


def _schedule(req: ScheduleIn, schedule_id: str | None = None) -> Schedule:
    """The request as the port's schedule (``schedule_id`` None: a new one, named by the platform)."""
    return Schedule(id=schedule_id, name=req.name, kind=req.kind,
                    segments=tuple(req.segments) if req.segments is not None else None,
                    dates=tuple(date.fromisoformat(d) for d in req.dates), priority=req.priority,
                    steps=tuple(Step(st.at, st.level) for st in req.steps))


@router.get("/schedules", response_model=list[ScheduleOut], **guard("read", extra=(404,)))
def list_schedules(ctx: Ctx, road: RoadQ = None) -> FastJSON:
    """Schedules and calendar exceptions of a road."""
    return FastJSON([schedule_out(s) for s in ctx.platform.schedules(ctx.road(road).id)])


@router.get("/schedules/active", response_model=ActiveSchedules, **guard("read", extra=(404,)))
def active(ctx: Ctx, road: RoadQ = None) -> FastJSON:
    """Which schedule is in force on each segment now."""
    r = ctx.road(road)
    now = ctx.platform.now_ms()
    return FastJSON({"road": r.id, "now_ms": now, "segments": ctx.platform.active_schedules(r.id, now)})


@router.get("/schedules/{schedule_id}", response_model=ScheduleOut, **guard("read", extra=(404,)))
def get_schedule(ctx: Ctx, schedule_id: SchedP, road: RoadQ = None) -> FastJSON:
    return FastJSON(schedule_out(_find(ctx, ctx.road(road).id, schedule_id)))


def _check_segments(ctx: Context, road: str, req: ScheduleIn) -> None:
    known = ctx.road(road).segment_by_id
    unknown = [s for s in req.segments or [] if s not in known]
    if unknown:
        raise NotFoundProblem(f"unknown segment(s) {', '.join(unknown)} on {road}; segments are {', '.join(known)}")


@router.post("/schedules", status_code=201, response_model=ScheduleOut, **guard("schedules", extra=(404, 409)))
def create_schedule(ctx: Ctx, who: Who, req: ScheduleIn, road: RoadQ = None) -> FastJSON:
    """Create a schedule (``kind: default``) or a calendar exception (``kind: exception`` with dates)."""
    r = ctx.road(road)
    _check_segments(ctx, r.id, req)
    s = ctx.platform.put_schedule(r.id, _schedule(req), who.actor)
    ctx.audit.record(actor=who.name, role=who.role, token_id=who.token_id, action="create_schedule",
                     target=f"schedule {s.id}", params=req.model_dump(), result="ok")
    return FastJSON(schedule_out(s), status_code=201)


@router.put("/schedules/{schedule_id}", response_model=ScheduleOut, **guard("schedules", extra=(404, 409)))
def update_schedule(ctx: Ctx, who: Who, schedule_id: SchedP, req: ScheduleIn, road: RoadQ = None) -> FastJSON:
    """Replace a schedule; 409 when the road would be left without a road-wide default."""
    r = ctx.road(road)
    _find(ctx, r.id, schedule_id)
    _check_segments(ctx, r.id, req)
    s = ctx.platform.put_schedule(r.id, _schedule(req, schedule_id), who.actor)
    ctx.audit.record(actor=who.name, role=who.role, token_id=who.token_id, action="update_schedule",
                     target=f"schedule {schedule_id}", params=req.model_dump(), result="ok")
    return FastJSON(schedule_out(s))


@router.delete("/schedules/{schedule_id}", status_code=204, response_class=Response,
               **guard("schedules", extra=(404, 409)))
def delete_schedule(ctx: Ctx, who: Who, schedule_id: SchedP, road: RoadQ = None) -> Response:
    """Delete a schedule; 409 for the road's last road-wide default (what the poles fall back to)."""
    r = ctx.road(road)
    _find(ctx, r.id, schedule_id)
    ctx.platform.delete_schedule(r.id, schedule_id, who.actor)
    ctx.audit.record(actor=who.name, role=who.role, token_id=who.token_id, action="delete_schedule",
                     target=f"schedule {schedule_id}", result="ok")
    return Response(status_code=204)
