"""The port's types on the control channel: dataclasses to JSON and back (results, and a schedule
sent to the controller), and the port's errors carried as an answer's status."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from api.platform import (
    CabinetReport,
    Command,
    Conflict,
    Decision,
    Energy,
    FaultView,
    FeederReport,
    LiveEvent,
    NotFound,
    PlatformError,
    PoleEnergy,
    PoleStatus,
    Schedule,
    SegmentEnergy,
    Unavailable,
)


def encode(value: Any) -> Any:
    """A port result as JSON-ready data (dataclasses become dicts, lists stay lists; a schedule
    becomes the controller's entry, :meth:`Schedule.to_dict`)."""
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, Schedule):
        return value.to_dict()
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return value


def command(d: dict[str, Any]) -> Command:
    decision = d.get("decision")
    return Command(**{**d, "status": PoleStatus(**d["status"]),
                      "decision": Decision(**decision) if decision is not None else None})


def fault(d: dict[str, Any]) -> FaultView:
    return FaultView.from_dict(d)


def schedule(d: dict[str, Any]) -> Schedule:
    return Schedule.from_dict(d)


def cabinet(d: dict[str, Any]) -> CabinetReport:
    return CabinetReport(d["online"], d["last_seen_ms"], d["voltage_v"],
                         {k: FeederReport(**f) for k, f in d["feeders"].items()})


def energy(d: dict[str, Any]) -> Energy:
    return Energy(road=d["road"], day=d["day"], poles=[PoleEnergy(**p) for p in d["poles"]],
                  segments=[SegmentEnergy(**s) for s in d["segments"]], co2_kg_saved=d["co2_kg_saved"])


def event(d: dict[str, Any]) -> LiveEvent:
    return LiveEvent(d["kind"], d["data"], d.get("ts_ms", 0), d.get("extra", {}))


def error_answer(err: PlatformError) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body that carry a port error over the channel."""
    if isinstance(err, NotFound):
        return 404, {"error": "not_found", "kind": err.kind, "key": err.key, "hint": err.hint}
    if isinstance(err, Conflict):
        return 409, {"error": "conflict", "detail": str(err)}
    return 503, {"error": "unavailable", "detail": str(err)}


def raise_error(status: int, body: dict[str, Any]) -> None:
    """Raise the port error an answer carries (the inverse of :func:`error_answer`)."""
    if body.get("error") == "not_found":
        raise NotFound(body.get("kind", "object"), body.get("key", "?"), body.get("hint", ""))
    if body.get("error") == "conflict":
        raise Conflict(body.get("detail", "not allowed from the current state"))
    raise Unavailable(body.get("detail") or f"the controller process answered {status}")
