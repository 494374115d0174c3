"""Readings (one pole or a segment, over a range at a resolution, JSON or CSV), latest, energy."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from controller.schedule import night_of
from streetlight.protocol.messages import TELEMETRY_FIELDS
from streetlight.registry import Road

from ..deps import PREFIX, Context, context, guard
from ..errors import NotFoundProblem
from ..jsonresp import FastJSON
from ..models import DateStr, EnergyOut, Readings
from ..views import energy_out

router = APIRouter(prefix=PREFIX, tags=["telemetry and energy"])
Ctx = Annotated[Context, Depends(context)]
RoadQ = Annotated[str | None, Query(description="road id; default: the first road served", max_length=64)]
TS_MAX = 2**53
MAX_ROWS = 200_000
READING_COLUMNS = TELEMETRY_FIELDS
CSV = {200: {"content": {"text/csv": {"schema": {"type": "string"}}},
             "description": "JSON by default; CSV with format=csv"}}


class RangeQ:
    def __init__(self,
                 start_ms: Annotated[int | None, Query(ge=0, le=TS_MAX, description="default: end - 24 h")] = None,
                 end_ms: Annotated[int | None, Query(ge=0, le=TS_MAX, description=(
                     "default: the platform's now (the road's time); a range that ends where it starts, or "
                     "before, holds no readings"))] = None,
                 every_s: Annotated[int, Query(ge=1, le=86_400, description=(
                     f"resolution (mean per interval); raised so that the answer stays under {MAX_ROWS:,} "
                     "readings (the answer's every_s is the one used)"))] = 300,
                 format: Literal["json", "csv"] = "json") -> None:
        self.start_ms, self.end_ms, self.every_s, self.format = start_ms, end_ms, every_s, format


def _readings(ctx: Context, road: Road, poles: list[str], q: RangeQ) -> Response:
    end = q.end_ms if q.end_ms is not None else ctx.platform.now_ms()
    start = q.start_ms if q.start_ms is not None else max(0, end - 86_400_000)
    # a wide range comes back coarser rather than refused: a chart asks for a span, not a row count
    every_s = max(q.every_s, -(-(end - start) * len(poles) // (MAX_ROWS * 1000)))
    if end <= start:  # [start, end) holds nothing
        df = pd.DataFrame(columns=["time", "pole", *READING_COLUMNS])
    else:
        df = ctx.platform.telemetry(road.id, poles, start, end, every_s)
    if q.format == "csv":
        return Response(df.to_csv(index=False), media_type="text/csv")
    return FastJSON(_frame(road.id, df, start, end, every_s))


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
           day: Annotated[DateStr | None, Query(description="the night's date, local; default: the road's "
                                                           "current night (noon to noon)")] = None) -> FastJSON:
    """Energy per pole, segment and road for one night: used, baseline at full power, savings, compliance."""
    r = ctx.road(road)
    night = date.fromisoformat(day) if day is not None else night_of(ctx.platform.now_ms(), r.timezone)
    return FastJSON(energy_out(ctx.platform.energy(r.id, night)))
