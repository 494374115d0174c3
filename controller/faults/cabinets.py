"""Faults seen from a distribution cabinet's own reports (protocol 1.1).

* An open breaker in cabinet telemetry is direct evidence of a ``feeder_outage`` on that feeder:
  raised on the report that shows it, before its poles' silence could, and placed at the cabinet
  with the breaker named. It resolves when the cabinet reports the breaker closed.
* A cabinet gone silent (no report for ``silent_after_intervals`` report intervals, or its will
  ``offline``) while poles it feeds still report is the cabinet's controller or uplink
  (``comm_loss`` at the cabinet), not a loss of supply; when every pole it feeds is lost too, the
  feeder analysis reports the cabinet's outage and nothing is added here.
* ``energy_imbalance``: over the night so far, a feeder's metered energy exceeds the energy its
  poles report (each lamp's meter, plus each port's reported draw over its report interval) by
  more than the allowance (:class:`BalanceLimits`): the cable's loss (at most about 2.7 % of what
  the feeder carries, at full load: ``simulators.cabinets`` derives it from the feeder's voltage
  drop) plus the accuracy class of the cabinet's meter and of the poles' meters (1 % each),
  rounded up to 5 %, and a fixed 50 Wh for the meters' resolution and the report boundaries. The
  window opens when every pole of the feeder and the cabinet report, and starts over after any
  gap (a pole or the cabinet silent for ``gap_intervals``, an open breaker, a meter going back),
  since a silent pole's draw cannot be counted; a feeder is judged once its window is
  ``min_window_s`` long, and the window starts over after ``max_window_s`` (a night).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streetlight.protocol import CabinetTelemetry, Telemetry
from streetlight.registry import Road

from .model import Finding, cabinet_location


@dataclass(slots=True)
class CabinetWatch:
    last_ts: int = -1
    offline_ts: int = -1
    open_since: dict[str, int] = field(default_factory=dict)  # feeder -> first report with its breaker open


@dataclass(frozen=True, slots=True)
class BalanceLimits:
    allowance_fraction: float = 0.05  # cable loss (≤ 2.7 %) and two meters of class 1, rounded up
    allowance_wh: float = 50.0  # meters' resolution, report boundaries
    min_window_s: float = 1200.0  # judged once the window is this long
    max_window_s: float = 14 * 3600.0  # a night: then the window starts over
    gap_intervals: float = 3.0  # a report gap longer than this many intervals restarts the window


@dataclass(slots=True)
class FeederBalance:
    start_ts: int = -1  # the window's start (-1: not open)
    metered_wh: float = 0.0
    reported_wh: float = 0.0
    meter_ts: int = -1  # the cabinet's last reading of this feeder
    meter_wh: float = 0.0
    over_since: int = -1  # first judgement over the allowance (held until a judged window is within it)
    evidence: dict[str, float] = field(default_factory=dict)  # the last judgement over it


class EnergyBalance:
    """A feeder's metered energy against the sum its poles report (see the module's docstring)."""

    def __init__(self, road: Road, interval_ms: int, limits: BalanceLimits | None = None) -> None:
        self.road = road
        self.limits = lim = limits or BalanceLimits()
        self.gap_ms = int(lim.gap_intervals * interval_ms)
        self.feeders = {f.id: FeederBalance() for f in road.feeders}
        self.feeder_of = {p.id: p.feeder for p in road.poles}
        self.pole_last: dict[str, tuple[int, float]] = {}  # pole -> (ts, lamp meter Wh)

    def _restart(self, fid: str, ts: int) -> None:
        b = self.feeders[fid]  # an imbalance found stays until a new window is judged within the allowance
        b.start_ts, b.metered_wh, b.reported_wh = ts, 0.0, 0.0

    def on_pole(self, pole_id: str, t: Telemetry) -> None:
        fid = self.feeder_of.get(pole_id)
        if fid is None:
            return
        lamp = t.energy_wh
        prev = self.pole_last.get(pole_id)
        self.pole_last[pole_id] = (t.ts, lamp if lamp is not None else 0.0)
        if prev is None or not 0 < t.ts - prev[0] <= self.gap_ms or (lamp is not None and lamp < prev[1]):
            self._restart(fid, t.ts)  # this pole's draw since its last report is unknown
            return
        dt_h = (t.ts - prev[0]) / 3_600_000
        wh = (lamp - prev[1]) if lamp is not None else t.power_w * dt_h
        wh += sum(r.power_w for r in (t.ports or {}).values() if r.on) * dt_h
        self.feeders[fid].reported_wh += wh

    def on_cabinet(self, c: CabinetTelemetry) -> None:
        for fid, f in c.feeders.items():
            b = self.feeders.get(fid)
            if b is None:
                continue
            prev_ts, prev_wh = b.meter_ts, b.meter_wh
            b.meter_ts, b.meter_wh = c.ts, f.energy_wh
            if (prev_ts < 0 or not 0 < c.ts - prev_ts <= self.gap_ms or f.energy_wh < prev_wh
                    or f.breaker == "open" or c.ts - b.start_ts > self.limits.max_window_s * 1000):
                self._restart(fid, c.ts)
                continue
            b.metered_wh += f.energy_wh - prev_wh

    def findings(self, now_ms: int) -> list[Finding]:
        """A feeder over the allowance stays so (one fault) across window restarts, until a judged
        window is back within it; the summary names no figures (they change each report, the
        evidence carries them), so the fault is not republished on every tick."""
        lim = self.limits
        out: list[Finding] = []
        for fd in self.road.feeders:
            b = self.feeders[fd.id]
            heard = [self.pole_last.get(p, (-1, 0.0))[0] for p in fd.poles]
            judged = (b.start_ts >= 0 and now_ms - b.start_ts >= lim.min_window_s * 1000
                      and now_ms - b.meter_ts <= self.gap_ms and min(heard) >= 0
                      and now_ms - min(heard) <= self.gap_ms)
            allowance = lim.allowance_fraction * b.metered_wh + lim.allowance_wh
            gap = b.metered_wh - b.reported_wh
            if judged and gap <= allowance:
                b.over_since, b.evidence = -1, {}
            elif judged:
                hours = (now_ms - b.start_ts) / 3_600_000
                b.over_since = now_ms if b.over_since < 0 else b.over_since
                b.evidence = {"metered_wh": round(b.metered_wh, 1), "reported_wh": round(b.reported_wh, 1),
                              "gap_wh": round(gap, 1), "allowance_wh": round(allowance, 1),
                              "window_start_ts": b.start_ts, "mean_unaccounted_w": round(gap / max(hours, 1e-9), 1)}
            if b.over_since < 0:
                continue
            out.append(Finding(
                "energy_imbalance", cabinet_location(self.road, fd.cabinet, fd.id),
                f"Feeder {fd.id} (cabinet {fd.cabinet}) meters more energy than its {len(fd.poles)} poles report, "
                "beyond the allowance for cable loss and meters (figures in the evidence): walk the feeder "
                "from its cabinet for an illegal tap or a leaking cable",
                dict(b.evidence), b.over_since))
        return out


class CabinetRules:
    def __init__(self, road: Road, interval_ms: int, silent_after_intervals: float = 3.0) -> None:
        self.road = road
        self.interval_ms = interval_ms
        self.silent_after_intervals = silent_after_intervals
        self.watches = {c.id: CabinetWatch() for c in road.cabinets}
        self.balance = EnergyBalance(road, interval_ms)
        self.rejected: dict[str, int] = {}

    def on_pole(self, pole_id: str, t: Telemetry) -> None:
        """A pole's report: its lamp meter and its ports' draw, for its feeder's energy balance."""
        self.balance.on_pole(pole_id, t)

    def on_cabinet(self, cabinet: str, c: CabinetTelemetry) -> None:
        w = self.watches.get(cabinet)
        if w is None:
            self.rejected["unknown_cabinet"] = self.rejected.get("unknown_cabinet", 0) + 1
            return
        if c.ts < w.last_ts:
            return  # a late report must not reopen what a newer one closed
        self.balance.on_cabinet(c)
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
        out: list[Finding] = self.balance.findings(now_ms)
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
                               {"cabinet": cab, "last_report_ts": w.last_ts,
                                "status": "offline" if w.offline_ts >= 0 else None},
                               w.offline_ts if w.offline_ts >= 0 else w.last_ts))
        return out
