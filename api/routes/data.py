"""Readings (one pole or a segment, over a range at a resolution, JSON or CSV), latest, energy."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd
from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from streetlight.registry import Road

from ..deps import PREFIX, Context, context, guard
from ..errors import InvalidProblem, NotFoundProblem
from ..jsonresp import FastJSON
from ..models import EnergyOut, Readings
from ..views import energy_out

router = APIRouter(prefix=PREFIX, tags=["telemetry and energy"])
Ctx = Annotated[Context, Depends(context)]
RoadQ = Annotated[str | None, Query(description="road id; default: the first road served", max_length=64)]
TS_MAX = 2**53
MAX_ROWS = 200_000
CSV = {200: {"content": {"text/csv": {"schema": {"type": "string"}}},
             "description": "JSON by default; CSV with format=csv"}}


class RangeQ:
    def __init__(self,
                 start_ms: Annotated[int | None, Query(ge=0, le=TS_MAX, description="default: end - 24 h")] = None,
                 end_ms: Annotated[int | None, Query(ge=0, le=TS_MAX, description="default: now")] = None,
                 every_s: Annotated[int, Query(ge=1, le=86_400, description="resolution (mean per interval)")] = 300,
                 format: Literal["json", "csv"] = "json") -> None:
        self.start_ms, self.end_ms, self.every_s, self.format = start_ms, end_ms, every_s, format


def _readings(ctx: Context, road: Road, poles: list[str], q: RangeQ) -> Response:
    end = q.end_ms if q.end_ms is not None else ctx.platform.now_ms()
    start = q.start_ms if q.start_ms is not None else max(0, end - 86_400_000)
    if end <= start:
        raise InvalidProblem(f"end_ms ({end}) must be after start_ms ({start})")
    rows = (end - start) // (q.every_s * 1000) * len(poles)
    if rows > MAX_ROWS:
        raise InvalidProblem(f"that is about {rows:,} readings, more than {MAX_ROWS:,}; "
                             "use a shorter range or a larger every_s")
    df = ctx.platform.telemetry(road.id, poles, start, end, q.every_s)
    if q.format == "csv":
        return Response(df.to_csv(index=False), media_type="text/csv")
    return FastJSON(_frame(road.id, df, start, end, q.every_s))


def _frame(road: str, df: pd.DataFrame, start: int, end: int, every_s: int) -> dict[str, Any]:
    records = df.astype(object).where(df.notna(), None).to_dict(orient="records")
    return {"road": road, "start_ms": start, "end_ms": end, "every_s": every_s, "count": len(records),
            "columns": [str(c) for c in df.columns], "readings": records}


@router.get("/poles/{pole}/readings", response_model=Readings, **guard("read", extra=(404,), responses=CSV))
def pole_readings(ctx: Ctx, pole: Annotated[str, Path(max_length=64, examples=["NH-047"])],
                  q: Annotated[RangeQ, Depends()], road: RoadQ = None) -> Response:
    """One pole's readings over a range, one row per interval."""
    r, pid = ctx.find_pole(pole, road)
    return _readings(ctx, r, [pid], q)


@router.get("/segments/{segment}/readings", response_model=Readings, **guard("read", extra=(404,), responses=CSV))
def segment_readings(ctx: Ctx, segment: Annotated[str, Path(max_length=64, examples=["S3"])],
                     q: Annotated[RangeQ, Depends()], road: RoadQ = None) -> Response:
    """The readings of every pole of a segment over a range."""
    r = ctx.road(road)
    if segment not in r.segment_by_id:
        raise NotFoundProblem(f"no segment {segment!r} on {r.id}; segments are {', '.join(r.segment_by_id)}")
    return _readings(ctx, r, [p.id for p in r.poles_of_segment(segment)], q)


@router.get("/readings/latest", response_model=Readings, **guard("read", extra=(404,)))
def latest(ctx: Ctx, road: RoadQ = None) -> FastJSON:
    """The latest reading of every pole."""
    r = ctx.road(road)
    df = ctx.platform.latest(r.id)
    now = ctx.platform.now_ms()
    return FastJSON(_frame(r.id, df, now, now, 0))


@router.get("/energy", response_model=EnergyOut, **guard("read", extra=(404,)))
def energy(ctx: Ctx, road: RoadQ = None,
           day: Annotated[date | None, Query(description="local day of the road; default today")] = None) -> FastJSON:
    """Energy per pole, segment and road for one day: used, baseline at full power, savings, compliance."""
    r = ctx.road(road)
    if day is None:
        day = datetime.fromtimestamp(ctx.platform.now_ms() / 1000, ZoneInfo(r.timezone)).date()
    return FastJSON(energy_out(ctx.platform.energy(r.id, day)))
