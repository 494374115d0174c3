"""Faults: list and filter, one with its evidence, acknowledge and resolve (who and when, audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from ..auth import Principal
from ..deps import PREFIX, Context, context, guard, principal
from ..errors import NotFoundProblem
from ..jsonresp import FastJSON
from ..models import FaultAction, FaultList, FaultOut, FaultState, FaultType, Severity
from ..platform import Conflict, NotFound
from ..views import fault_out

router = APIRouter(prefix=PREFIX, tags=["faults"])
Ctx = Annotated[Context, Depends(context)]
Who = Annotated[Principal, Depends(principal)]
FaultP = Annotated[str, Path(max_length=64, examples=["F-000123"])]


@router.get("/faults", response_model=FaultList, **guard("read", extra=(404,)))
def list_faults(ctx: Ctx, road: Annotated[str | None, Query(max_length=64)] = None,
                state: FaultState | None = None, type: FaultType | None = None,
                segment: Annotated[str | None, Query(max_length=64)] = None, severity: Severity | None = None,
                open: Annotated[bool, Query(description="only open and acknowledged faults")] = False) -> FastJSON:
    """Faults, newest first, filtered by road, state, type, segment and severity."""
    if road is not None:
        ctx.road(road)
    faults = ctx.platform.faults(road=road, state=state, type=type, segment=segment, severity=severity)
    if open:
        faults = [f for f in faults if f.state != "resolved"]
    faults.sort(key=lambda f: f.first_seen_ts, reverse=True)
    return FastJSON({"count": len(faults), "faults": [fault_out(f) for f in faults]})


@router.get("/faults/{fault_id}", response_model=FaultOut, **guard("read", extra=(404,)))
def get_fault(ctx: Ctx, fault_id: FaultP) -> FastJSON:
    """One fault with its location in words and its evidence."""
    f = ctx.platform.fault(fault_id)
    if f is None:
        raise NotFoundProblem(f"no fault {fault_id!r}; list faults with GET /api/v1/faults")
    return FastJSON(fault_out(f))


def _transition(ctx: Context, who: Principal, fault_id: str, action: str, req: FaultAction | None) -> FastJSON:
    note = req.note if req else ""
    fn = ctx.platform.ack_fault if action == "ack_fault" else ctx.platform.resolve_fault
    try:
        f = fn(fault_id, who.actor, note)
    except (NotFound, Conflict) as err:
        ctx.audit.record(actor=who.name, role=who.role, token_id=who.token_id, action=action,
                         target=f"fault {fault_id}", params={"note": note}, result="rejected", detail=str(err))
        raise
    ctx.audit.record(actor=who.name, role=who.role, token_id=who.token_id, action=action, target=f"fault {fault_id}",
                     params={"note": note}, result="ok", detail=f"now {f.state}")
    return FastJSON(fault_out(f))


@router.post("/faults/{fault_id}/ack", response_model=FaultOut, **guard("faults", extra=(404, 409)))
def ack_fault(ctx: Ctx, who: Who, fault_id: FaultP, req: FaultAction | None = None) -> FastJSON:
    """Acknowledge an open fault: a crew has taken it."""
    return _transition(ctx, who, fault_id, "ack_fault", req)


@router.post("/faults/{fault_id}/resolve", response_model=FaultOut, **guard("faults", extra=(404, 409)))
def resolve_fault(ctx: Ctx, who: Who, fault_id: FaultP, req: FaultAction | None = None) -> FastJSON:
    """Resolve a fault after the repair."""
    return _transition(ctx, who, fault_id, "resolve_fault", req)
