"""The road: roads, segments, feeders and poles, registry data joined with the live twins."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from ..deps import PREFIX, Context, context, guard
from ..errors import NotFoundProblem
from ..jsonresp import FastJSON
from ..models import PoleList, PoleOut, PoleState, RoadDetail, RoadSummary
from ..views import fault_index, pole_out, poles_out, road_detail, road_summary

router = APIRouter(prefix=PREFIX, tags=["road"])
Ctx = Annotated[Context, Depends(context)]
RoadQ = Annotated[str | None, Query(description="road id; default: the first road served", max_length=64)]
PoleP = Annotated[str, Path(description="pole id", examples=["NH-047"], max_length=64)]


@router.get("/roads", response_model=list[RoadSummary], **guard("read"))
def list_roads(ctx: Ctx) -> FastJSON:
    """Every road this platform serves."""
    return FastJSON([road_summary(r, ctx.platform.emergency_active(r.id)) for r in ctx.platform.roads.values()])


@router.get("/roads/{road}", response_model=RoadDetail, **guard("read", extra=(404,)))
def get_road(ctx: Ctx, road: Annotated[str, Path(max_length=64, examples=["nanhuan-1"])]) -> FastJSON:
    """A road with its segments, cabinets and feeders (the geometry the dashboard draws)."""
    r = ctx.road(road)
    return FastJSON(road_detail(r, ctx.platform.emergency_active(r.id)))


@router.get("/poles", response_model=PoleList, **guard("read", extra=(404,)))
def list_poles(ctx: Ctx, road: RoadQ = None,
               segment: Annotated[str | None, Query(max_length=64, examples=["S3"])] = None,
               state: PoleState | None = None) -> FastJSON:
    """Every pole of a road with its live state, level, reason, last report and open faults."""
    r = ctx.road(road)
    if segment is not None and segment not in r.segment_by_id:
        raise NotFoundProblem(f"no segment {segment!r} on {r.id}; segments are {', '.join(r.segment_by_id)}")
    faults = ctx.platform.faults(road=r.id)
    twins = ctx.platform.twins(r.id)
    body = poles_out(r, twins, faults, segment, state)
    restarts = {t.pole: t.restarts for t in twins}
    for row in body["poles"]:
        _with_restarts(row, restarts.get(row["id"]))
    body["now_ms"] = ctx.platform.now_ms()
    return FastJSON(body)


@router.get("/poles/{pole}", response_model=PoleOut, **guard("read", extra=(404,)))
def get_pole(ctx: Ctx, pole: PoleP, road: RoadQ = None) -> FastJSON:
    """One pole: registry data and live twin."""
    r, pid = ctx.find_pole(pole, road)
    idx = fault_index(ctx.platform.faults(road=r.id))
    twin = ctx.platform.twin(r.id, pid)
    return FastJSON(_with_restarts(pole_out(r, r.pole(pid), twin, idx.get(pid, [])), twin.restarts if twin else None))


def _with_restarts(row: dict[str, Any], restarts: int | None) -> dict[str, Any]:
    row["restarts"] = int(restarts or 0)
    return row
