"""What the API's port shows of a twin, a fault and a pole's readings, built in one place.

Both sides of the platform build these views: :class:`runtime.live_platform.LivePlatform` (the
gateway and controller in one process) and :class:`runtime.api_platform.SplitPlatform` (the API
in a process of its own, over a read model, the state database and the control channel).
"""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd

from api.platform import FaultView, PortState, TwinView
from controller.faults import Fault, lifecycle
from gateway.twins import Twin
from streetlight.registry import Road

from .state import ControllerStore


class Readings(Protocol):
    def pole_readings(self, road: str, pole: str, start: int, end: int, every: str | None = None) -> pd.DataFrame: ...


def twin_view(pole: str, t: Twin | None, reason: str | None, restarts: int) -> TwinView:
    """A pole's twin as the port shows it: what it reported, and the rule the controller set it by."""
    state = t.state if t else None
    tel = t.last_telemetry if t else None
    return TwinView(
        pole=pole, online=bool(t and t.online), level=tel.dim if tel else (state.dim if state else None),
        reason=reason, mode=state.mode if state else None,
        last_seen_ms=t.last_seen_ms if t else None, power_w=tel.power_w if tel else None,
        voltage_v=tel.voltage_v if tel else None, restarts=restarts,
        ports={k: PortState(r.on, r.power_w, r.link, k in t.tripped) for k, r in t.ports.items()} if t else {},
    )


def fault_record(f: Fault, log_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A fault with who acknowledged and resolved it, and the notes, from its logged transitions: the
    data of a live ``alert`` event (webhooks send it as it is)."""
    d = f.to_dict()
    for row in log_rows:
        if row.get("state") == lifecycle.ACKNOWLEDGED:
            d.setdefault("acknowledged_by", row.get("actor"))
            d.setdefault("acknowledged_ms", row.get("ts"))
        if row.get("state") == lifecycle.RESOLVED:
            d["resolved_by"], d["resolved_ms"] = row.get("actor"), row.get("ts")
    d["notes"] = [{"actor": r.get("actor"), "ts_ms": r.get("ts"), "note": r.get("note")}
                  for r in log_rows if r.get("note")]
    d.setdefault("acknowledged_by", None)
    d.setdefault("acknowledged_ms", None)
    d.setdefault("resolved_by", None)
    d.setdefault("resolved_ms", None)
    return d


def stored_fault_record(store: ControllerStore, f: Fault) -> dict[str, Any]:
    try:
        log_rows = store.fault_log(f.fault_id)
    except Exception:  # the view without its log beats no view while the database is busy
        log_rows = []
    return fault_record(f, log_rows)


def stored_fault_view(store: ControllerStore, f: Fault) -> FaultView:
    return FaultView.from_dict(stored_fault_record(store, f))


def fault_list(store: ControllerStore, roads: list[str], state: str | None, type: str | None,
               segment: str | None, severity: str | None) -> list[FaultView]:
    out = []
    for rid in roads:
        logs = store.fault_logs(rid)  # one query for the whole list, not one per fault
        for f in store.faults(rid, state=state):
            if type and f.type != type or segment and f.segment != segment or severity and f.severity != severity:
                continue
            out.append(FaultView.from_dict(fault_record(f, logs.get(f.fault_id, []))))
    out.sort(key=lambda v: v.first_seen_ts, reverse=True)
    return out


class ReadingsUnavailable(RuntimeError):
    """InfluxDB did not answer a readings query."""


def readings_frame(readings: Readings, r: Road, poles: list[str], start_ms: int, end_ms: int,
                   every_s: int) -> pd.DataFrame:
    """Poles' readings in ``[start_ms, end_ms)`` at ``every_s`` means, times in epoch milliseconds.
    Raises :class:`KeyError` for a pole not on the road, :class:`ReadingsUnavailable` when InfluxDB
    does not answer."""
    frames = []
    for pole in poles:
        if not r.has_pole(pole):
            raise KeyError(pole)
        try:
            df = readings.pole_readings(r.id, pole, start_ms, end_ms, every=f"{every_s}s")
        except Exception as err:
            raise ReadingsUnavailable(f"InfluxDB did not answer: {err}") from None
        if not df.empty:
            df = df.reset_index() if "time" not in df.columns else df
            df["pole"] = pole
            frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["time", "pole", "dim", "power_w", "voltage_v"])
    out = pd.concat(frames, ignore_index=True)
    if pd.api.types.is_datetime64_any_dtype(out["time"]):
        # epoch milliseconds whatever the frame's resolution (pandas 3 keeps microseconds)
        epoch = pd.Timestamp(0, tz=out["time"].dt.tz)
        out["time"] = (out["time"] - epoch) // pd.Timedelta(milliseconds=1)
    return out


def latest_frame(twins: list[Twin]) -> pd.DataFrame:
    rows = []
    for tw in twins:
        t = tw.last_telemetry
        if t is not None:
            rows.append({"time": t.ts, "pole": tw.pole, **t.to_dict()})
    return pd.DataFrame(rows)
