"""Faults seen from a distribution cabinet's own reports (protocol 1.1).

* An open breaker in cabinet telemetry is direct evidence of a ``feeder_outage`` on that feeder:
  raised on the report that shows it, before its poles' silence could, and placed at the cabinet
  with the breaker named. It resolves when the cabinet reports the breaker closed.
* A cabinet gone silent (no report for ``silent_after_intervals`` report intervals, or its will
  ``offline``) while poles it feeds still report is the cabinet's controller or uplink
  (``comm_loss`` at the cabinet), not a loss of supply; when every pole it feeds is lost too, the
  feeder analysis reports the cabinet's outage and nothing is added here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streetlight.protocol import CabinetTelemetry
from streetlight.registry import Road

from .model import Finding, cabinet_location


@dataclass(slots=True)
class CabinetWatch:
    last_ts: int = -1
    offline_ts: int = -1
    open_since: dict[str, int] = field(default_factory=dict)  # feeder -> first report with its breaker open


class CabinetRules:
    def __init__(self, road: Road, interval_ms: int, silent_after_intervals: float = 3.0) -> None:
        self.road = road
        self.interval_ms = interval_ms
        self.silent_after_intervals = silent_after_intervals
        self.watches = {c.id: CabinetWatch() for c in road.cabinets}
        self.rejected: dict[str, int] = {}

    def on_cabinet(self, cabinet: str, c: CabinetTelemetry) -> None:
        w = self.watches.get(cabinet)
        if w is None:
            self.rejected["unknown_cabinet"] = self.rejected.get("unknown_cabinet", 0) + 1
            return
        if c.ts < w.last_ts:
            return  # a late report must not reopen what a newer one closed
        w.last_ts, w.offline_ts = c.ts, -1
        for fid, f in c.feeders.items():
            if f.breaker == "open":
                w.open_since.setdefault(fid, c.ts)
            else:
                w.open_since.pop(fid, None)

    def on_status(self, cabinet: str, online: bool, ts_ms: int) -> None:
        w = self.watches.get(cabinet)
        if w is not None:
            w.offline_ts = -1 if online else ts_ms

    def findings(self, now_ms: int, lost_poles: set[str]) -> list[Finding]:
        out: list[Finding] = []
        for cab, w in self.watches.items():
            for fid, since in sorted(w.open_since.items()):
                n = len(self.road.feeder_by_id[fid].poles) if fid in self.road.feeder_by_id else 0
                out.append(Finding("feeder_outage", cabinet_location(self.road, cab, fid),
                                   f"Breaker of feeder {fid} is open in cabinet {cab} (the cabinet reports it): "
                                   f"{n} poles without supply; find the cause before closing it",
                                   {"breaker": "open", "source": "cabinet telemetry", "poles": n}, since))
            silent = w.last_ts >= 0 and now_ms - w.last_ts > self.silent_after_intervals * self.interval_ms
            if not (silent or w.offline_ts >= 0):
                continue
            fed = [p for f in self.road.feeders_of(cab) for p in f.poles]
            if fed and all(p in lost_poles for p in fed):
                continue  # the supply is gone: the feeder analysis reports the cabinet out
            out.append(Finding("comm_loss", cabinet_location(self.road, cab, None),
                               f"Cabinet {cab} is silent ({'reported offline' if w.offline_ts >= 0 else 'no report'}) "
                               f"while {len([p for p in fed if p not in lost_poles])} of its poles report: "
                               "its controller or uplink, not the supply; check the cabinet's modem",
                               {"last_report_ts": w.last_ts, "status": "offline" if w.offline_ts >= 0 else None},
                               w.offline_ts if w.offline_ts >= 0 else w.last_ts))
        return out
