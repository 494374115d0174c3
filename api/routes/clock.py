"""Road time: what time it is on a road, and whether that is the wall clock or the road's own."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ..deps import PREFIX, Context, context, guard
from ..jsonresp import FastJSON

router = APIRouter(prefix=PREFIX, tags=["road"])
Ctx = Annotated[Context, Depends(context)]


class RoadClockOut(BaseModel):
    road: str
    now_ms: int = Field(description="road time, epoch milliseconds: every age and range is measured on it")
    mode: Literal["wall", "devices", "unknown"] = Field(
        description="wall: the road runs on the wall clock; devices: a simulated or replayed road on its own "
                    "clock (the poles' consensus); unknown: not enough of the road heard yet "
                    "(now_ms is then the wall clock)")
    simulated: bool = Field(description="road time is not the wall clock")
    timezone: str
    local: str = Field(description="road time in the road's time zone, YYYY-MM-DD HH:MM:SS",
                       examples=["2026-11-23 19:42:10"])


@router.get("/clock", response_model=RoadClockOut, **guard("read", extra=(404,)))
def road_clock(ctx: Ctx, road: Annotated[str | None, Query(description="road id; default: the first road served",
                                                             max_length=64)] = None) -> FastJSON:
    """What time it is on the road. A simulated road runs on its own clock, faster than the wall's:
    show ages and ranges against this, never against the browser's clock."""
    r = ctx.road(road)
    t = ctx.platform.road_time(r.id)
    local = datetime.fromtimestamp(t.now_ms / 1000, ZoneInfo(r.timezone)).strftime("%Y-%m-%d %H:%M:%S")
    return FastJSON({"road": r.id, "now_ms": t.now_ms, "mode": t.mode, "simulated": t.mode == "devices",
                     "timezone": r.timezone, "local": local})
