"""Platform dicts and registry objects turned into the API's response shapes (pure functions)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from streetlight.registry import Pole, Road

from .formats import location
from .platform import FORCE_HINT, Command, Decision, Energy, FaultView, Schedule, TwinView

LIVE_FAULT_STATES = ("open", "acknowledged")


def fault_index(faults: list[FaultView]) -> dict[str, list[str]]:
    """pole id -> ids of the unresolved faults that name it (as the pole or an end of a span)."""
    out: dict[str, list[str]] = {}
    for f in faults:
        if f.state not in LIVE_FAULT_STATES:
            continue
        for p in {f.pole, *(f.span or [])} - {None}:
            assert p is not None  # for mypy: None was taken out above
            out.setdefault(p, []).append(f.fault_id)
    return out


def pole_state(twin: TwinView | None, faults: list[str]) -> str:
    if twin is None or not twin.online:
        return "offline"
    if faults:
        return "fault"
    level = twin.level
    if level is None or level <= 0:
        return "off"
    return "lit" if level >= 99.5 else "dimmed"


# keyed by identity: hashing a frozen Road hashes all its poles, which costs more than the rows
_REGISTRY_ROWS: dict[int, tuple[Road, dict[str, dict[str, Any]]]] = {}


def _registry_row(road: Road, pole: Pole) -> dict[str, Any]:
    return {
        "id": pole.id, "road": road.id, "index": pole.index, "chainage_m": pole.chainage_m,
        "chainage": pole.chainage, "side": pole.side, "segment": pole.segment, "feeder": pole.feeder,
        "feeder_position": pole.feeder_position, "cabinet": pole.cabinet, "lat": pole.lat, "lon": pole.lon,
        "rated_power_w": pole.rated_power_w, "equipment": list(pole.equipment),
        "lamp": pole.lamp, "driver": pole.driver,
    }


def registry_rows(road: Road) -> dict[str, dict[str, Any]]:
    """The registry half of every pole's answer, built once per road (the pole list is read often)."""
    hit = _REGISTRY_ROWS.get(id(road))
    if hit is None or hit[0] is not road:
        hit = (road, {p.id: _registry_row(road, p) for p in road.poles})
        _REGISTRY_ROWS[id(road)] = hit
    return hit[1]


def pole_out(road: Road, pole: Pole, twin: TwinView | None, faults: list[str]) -> dict[str, Any]:
    t = twin or TwinView(pole.id, online=False)
    return {
        **registry_rows(road)[pole.id],
        "state": pole_state(twin, faults), "level": _num(t.level), "reason": t.reason,
        "mode": t.mode, "online": bool(t.online), "last_seen_ms": t.last_seen_ms,
        "power_w": _num(t.power_w), "open_faults": faults,
    }


def poles_out(road: Road, twins: list[TwinView], faults: list[FaultView],
              segment: str | None = None, state: str | None = None) -> dict[str, Any]:
    by_pole = {t.pole: t for t in twins}
    idx = fault_index(faults)
    rows = [pole_out(road, p, by_pole.get(p.id), idx.get(p.id, [])) for p in road.poles
            if segment is None or p.segment == segment]
    counts = Counter(r["state"] for r in rows)
    if state is not None:
        rows = [r for r in rows if r["state"] == state]
    return {"road": road.id, "count": len(rows), "counts": dict(counts), "poles": rows}


def fault_out(f: FaultView) -> dict[str, Any]:
    out = {"fault_id": f.fault_id, "type": f.type, "severity": f.severity, "state": f.state, "road": f.road,
           "pole": f.pole, "span": f.span, "segment": f.segment, "side": f.side, "chainage_m": f.chainage_m,
           "lat": f.lat, "lon": f.lon, "feeder": f.feeder, "cabinet": f.cabinet, "equipment": f.equipment,
           "first_seen_ts": f.first_seen_ts, "last_seen_ts": f.last_seen_ts, "summary": f.summary,
           "evidence": f.evidence or {}, "acknowledged_by": f.acknowledged_by, "acknowledged_ms": f.acknowledged_ms,
           "resolved_by": f.resolved_by, "resolved_ms": f.resolved_ms, "notes": f.notes or []}
    out["location"] = location(out)
    return out


def schedule_out(s: Schedule) -> dict[str, Any]:
    """A schedule as every schedule answer shows it (list, get, create, update): the controller's
    entry, keys in one order."""
    return s.to_dict()


def decision_out(d: Decision | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {"requested_level": d.requested, "applied_level": d.applied, "rule": d.rule, "why": d.why,
            "floor": d.floor, "traffic_class": d.traffic_class, "vehicles_h": d.vehicles_h,
            "how_to_force": FORCE_HINT if d.rule == "floor" else None}


def command_out(cmd: Command) -> dict[str, Any]:
    st = cmd.status
    return {
        "cmd_id": cmd.cmd_id, "type": cmd.type, "road": cmd.road, "pole": cmd.pole, "issued_ms": cmd.issued_ms,
        "expires_ms": cmd.expires_ms, "level": cmd.level, "ramp_ms": cmd.ramp_ms, "actor": cmd.actor,
        "force": cmd.force, "decision": decision_out(cmd.decision), "port": cmd.port, "on": cmd.on,
        "off_s": cmd.off_s, "done": st.status != "pending",
        "summary": {k: int(st.status == k) for k in ("pending", "acked", "failed", "expired")},
        "poles": {cmd.pole: {"status": st.status, "dim": st.dim, "error": st.error, "ack_ms": st.ack_ms}},
    }


def _totals(used: float, base: float) -> dict[str, Any]:
    return {"energy_kwh": round(used, 3), "baseline_kwh": round(base, 3), "savings_kwh": round(base - used, 3),
            "savings_pct": round(100.0 * (base - used) / base, 1) if base else 0.0}


def energy_out(e: Energy) -> dict[str, Any]:
    """Totals per segment and for the road; a violation is a segment that spent lit time under its floor."""
    poles = [{"pole": p.pole, "segment": p.segment, **_totals(p.energy_kwh, p.baseline_kwh)} for p in e.poles]
    segments = []
    for s in e.segments:
        mine = [p for p in e.poles if p.segment == s.segment]
        under = round(s.minutes_under_floor, 1)
        segments.append({"segment": s.segment, **_totals(sum(p.energy_kwh for p in mine),
                                                          sum(p.baseline_kwh for p in mine)),
                         "minutes_under_floor": under, "violations": int(s.minutes_under_floor > 0)})
    return {"road": e.road, "day": e.day, **_totals(sum(p.energy_kwh for p in e.poles),
                                                     sum(p.baseline_kwh for p in e.poles)),
            "co2_kg_saved": round(e.co2_kg_saved, 2), "violations": sum(s["violations"] for s in segments),
            "minutes_under_floor": round(sum(s.minutes_under_floor for s in e.segments), 1),
            "segments": segments, "poles": poles}


def road_summary(road: Road, emergency: bool) -> dict[str, Any]:
    return {"id": road.id, "name": road.name, "local_name": road.local_name, "lighting_class": road.lighting_class,
            "timezone": road.timezone, "length_m": road.length_m, "poles": len(road.poles), "emergency": emergency}


def road_detail(road: Road, emergency: bool) -> dict[str, Any]:
    n = Counter(p.segment for p in road.poles)
    return {
        **road_summary(road, emergency), "lat": road.lat, "lon": road.lon,
        "segments": [{"id": s.id, "name": s.name, "from_name": s.from_name, "to_name": s.to_name,
                      "start_m": s.start_m, "end_m": s.end_m, "poles": n.get(s.id, 0)} for s in road.segments],
        "cabinets": [{"id": c.id, "name": c.name, "chainage_m": c.chainage_m, "lat": c.lat, "lon": c.lon}
                     for c in road.cabinets],
        "feeders": [{"id": f.id, "cabinet": f.cabinet, "poles": list(f.poles)} for f in road.feeders],
    }


def _num(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if f != f else f  # NaN is not JSON
