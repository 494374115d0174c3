"""``streetlight bench energy``: a simulated week of the road, judged against its ground truth.

The pole simulators (``simulators.engine``: traffic, LED driver curve, ramps, faults) run the
road in closed loop with this platform's controller, in one process and without a broker: every
step the poles' telemetry (the same payloads they publish) and vehicle detections reach the
controller, the controller ticks, and its level commands reach the poles as the same command
payloads, executed by the same device logic. The week's traffic is an urban arterial's weekday
and weekend profiles, plus an event letting out on Saturday night.

What is reported comes from the simulator's ground truth (``simulators.truth``), never from the
controller's own estimate:

* energy: the real power the luminaires drew (driver curve, standby), summed over dusk to dawn
  (every step the road needed light or any lamp burned); the baseline is the same time at full
  output through the same driver curve;
* compliance: segment-minutes under the floor from ``simulators.judge`` (the class the real
  traffic required, per CJJ 45-2015 / CIE 115:2010, against the lowest real output in the segment).

Rows: ``full power`` (100 % dusk to dawn), ``midnight step`` (100 % until 00:00, then 50 %: a
common fixed schedule, judged on the same truth), ``adaptive`` (the controller in the loop), and
``adaptive, 5 % detectors stuck`` (the same week with 5 % of the detectors reading zero all week).
The controller's own claims (its meter's savings, its own minutes under its floor) are shown
beside the adaptive rows for comparison.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from controller.energy import CHINA_GRID_KG_PER_KWH
from controller.engine import Controller, ControllerConfig
from controller.faults import Fault as PlatformFault
from controller.schedule import ScheduleBook
from simulators.device import DeviceLogic, Inbound
from simulators.electrical import driver_power_w
from simulators.encode import Encoder
from simulators.engine import RoadSim
from simulators.faults import Fault, FaultSchedule, FaultState
from simulators.judge import ComplianceReport, judge_compliance, load_table
from simulators.scenario import Scenario
from simulators.traffic import Surge, TrafficModel
from simulators.truth import Truth, TruthRecorder
from streetlight.clock import parse_local
from streetlight.protocol import DimCommand, parse_event, parse_telemetry, pole_topic
from streetlight.registry import Road, load_road

STEP_S = 60
DETECTOR_FAILURE_SHARE = 0.05


@dataclass
class LoopRun:
    """A closed-loop run: the road's truth, the controller as it ended, and every fault it raised."""

    truth: Truth
    controller: Controller
    faults: list[PlatformFault] = field(default_factory=list)
    commands: int = 0


def run_loop(road: Road, start_ms: int, end_ms: int, *, seed: int, step_s: int = STEP_S,
             config: ControllerConfig | None = None, surges: list[Surge] | None = None,
             faults: list[Fault] | None = None, traffic_scale: float = 1.0,
             utc_offset_s: int = 8 * 3600, schedules: ScheduleBook | None = None) -> LoopRun:
    """The simulated road and the controller in one loop, from ``start_ms`` to ``end_ms``."""
    traffic = TrafficModel(road, seed=seed, utc_offset_s=utc_offset_s, scale=traffic_scale, surges=list(surges or []))
    sim = RoadSim(road, start_ms, seed, step_s, heartbeat_required=False, utc_offset_s=utc_offset_s, traffic=traffic)
    enc = Encoder(sim, vehicle_events=False, pedestrian_events=False)
    dev = DeviceLogic(sim)
    schedule = FaultSchedule(FaultState(sim), list(faults or []))
    rec = TruthRecorder(road)
    ctl = Controller(road, config or ControllerConfig(report_interval_s=step_s), schedules)
    ids = road.pole_ids
    cmd_topics = [pole_topic(road.id, pid, "cmd") for pid in ids]
    run = LoopRun(rec.truth(), ctl)
    t = start_ms
    while t < end_ms:
        t1 = min(t + step_s * 1000, end_ms)
        out = sim.step(t1)
        rec.add(out.truth)
        for m in enc.step(out):  # what the poles publish: fault events, then telemetry
            if m.kind == "telemetry":
                ctl.on_telemetry(ids[m.pole], parse_telemetry(m.payload))
            else:
                ctl.on_event(ids[m.pole], parse_event(m.payload))
        tr = out.traffic
        if len(tr.vehicle_pole):
            ctl.on_vehicles(tr.vehicle_pole, tr.vehicle_ts, tr.vehicle_speed_kmh, tr.vehicle_direction)
        if len(tr.pedestrian_pole):
            ctl.follow.pedestrians(tr.pedestrian_pole, tr.pedestrian_ts)
        before = sim.alive.copy()
        rec.faults(schedule.due(t1), t1)
        for i in np.flatnonzero(before != sim.alive).tolist():  # the broker's will, or a pole back
            ctl.on_status(ids[i], bool(sim.alive[i]), t1)
        decisions = ctl.tick(t1)
        run.faults.extend(decisions.faults)
        inbound = []
        for c in decisions.commands:
            run.commands += 1
            cmd = DimCommand(cmd_id=f"c{run.commands}", issued_ts=t1, level=c.level, ramp_ms=c.ramp_ms)
            i = ctl.index[c.pole]
            inbound.append(Inbound(run.commands, i, cmd_topics[i], orjson.dumps(cmd.to_dict())))
        dev.handle(inbound, t1)
        sim.apply_targets(t1)
        t = t1
    run.truth = rec.truth()
    return run


def run_scenario_loop(sc: Scenario, config: ControllerConfig | None = None) -> LoopRun:
    """A scenario's road, traffic and faults in closed loop with the controller."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    off = datetime.fromtimestamp(sc.start_ms / 1000, ZoneInfo(sc.road.timezone)).utcoffset()
    return run_loop(sc.road, sc.start_ms, sc.end_ms, seed=sc.seed, step_s=sc.report_interval_s,
                    config=config or ControllerConfig(report_interval_s=sc.report_interval_s),
                    surges=list(sc.surges), faults=list(sc.faults), traffic_scale=sc.traffic_scale,
                    utc_offset_s=int(off.total_seconds()) if off else 0)


def stuck_detectors(road: Road, share: float, at_ms: int, seed: int) -> list[Fault]:
    """``share`` of the road's vehicle detectors stuck at zero from ``at_ms`` on, chosen by ``seed``."""
    with_det = [p.index for p in road.poles if p.has("traffic_detector")]
    k = max(1, round(share * len(with_det)))
    pick = sorted(np.random.default_rng([seed, 5]).choice(with_det, k, replace=False).tolist())
    return [Fault("detector_stuck", at_ms, (i,), label=road.poles[i].id) for i in pick]


def _lit_steps(truth: Truth, dark_below_lux: float) -> np.ndarray:
    """Dusk to dawn: the road needed light, or any lamp burned."""
    return (truth.ambient_lux < dark_below_lux) | (truth.light_pct > 0).any(axis=1)  # type: ignore[no-any-return]


def _row(case: str, truth: Truth, judged: ComplianceReport, lit: np.ndarray, power: np.ndarray,
         base_wh: float, nights: int) -> dict[str, Any]:
    hours = (truth.t1_ms - truth.t0_ms) / 3_600_000
    wh = float((power[lit] * hours[lit, None]).sum())
    saved = base_wh - wh
    return {
        "case": case, "nights": nights, "lit_hours": round(float(hours[lit].sum()), 1),
        "kWh": round(wh / 1000, 1), "saved_kWh": round(saved / 1000, 1),
        "saved_pct": round(100 * saved / base_wh, 1) if base_wh > 0 else 0.0,
        "CO2_saved_kg": round(saved / 1000 * CHINA_GRID_KG_PER_KWH, 1),
        "segment_minutes_under_floor": judged.total_under,
        "under_floor_at_twilight": judged.twilight_under,
        "under_floor_at_night": judged.night_under,
        "lit_segment_minutes": judged.dark_segment_minutes,
    }


def _what_if(truth: Truth, light: np.ndarray) -> tuple[Truth, np.ndarray]:
    """The same night with the lamps at ``light`` (a fixed policy), drawing through the driver curve."""
    power = driver_power_w(light, truth.rated_w[None, :])
    return dataclasses.replace(truth, light_pct=light, power_w=power), power


def run(quick: bool) -> list[dict[str, Any]]:
    road = load_road("nanhuan-1")
    start = parse_local("2026-11-23 12:00")  # a Monday noon
    days = 1 if quick else 7
    end = start + days * 86_400_000
    if quick:
        surges = [Surge(parse_local("2026-11-24 00:30"), parse_local("2026-11-24 02:00"), 4.0, segment=2)]
    else:
        sat_night = parse_local("2026-11-29 00:30")  # an event lets out after midnight, Saturday
        surges = [Surge(sat_night, sat_night + 90 * 60_000, 4.0, segment=2)]
    table = load_table()
    rows: list[dict[str, Any]] = []
    for case, faults in (("adaptive", []),
                         ("adaptive, 5 % detectors stuck", stuck_detectors(road, DETECTOR_FAILURE_SHARE, start, 11))):
        loop = run_loop(road, start, end, seed=11, surges=surges, faults=faults)
        truth = loop.truth
        lit = _lit_steps(truth, table.dark_below_lux)
        hours = (truth.t1_ms - truth.t0_ms) / 3_600_000
        full_w = driver_power_w(np.full_like(truth.light_pct, 100.0), truth.rated_w[None, :])
        base_wh = float((full_w[lit] * hours[lit, None]).sum())
        if not rows:  # the fixed policies, judged on the same truth (traffic, daylight)
            full_truth, _ = _what_if(truth, np.where(lit[:, None], 100.0, 0.0))
            rows.append(_row("full power", full_truth, judge_compliance(full_truth, table), lit, full_w, base_wh, days))
            local_h = ((truth.t0_ms // 1000 + 8 * 3600) % 86400) / 3600
            step_level = np.where(local_h >= 12, 100.0, 50.0)  # lit before midnight: evening
            step_truth, step_w = _what_if(truth, np.where(lit, step_level, 0.0)[:, None] * np.ones(len(road.poles)))
            rows.append(_row("midnight step", step_truth, judge_compliance(step_truth, table), lit, step_w, base_wh, days))
        judged = judge_compliance(truth, table)
        row = _row(case, truth, judged, lit, truth.power_w, base_wh, days)
        rep = loop.controller.energy_report()
        row["controller_meter_saved_pct"] = round(rep.savings_pct, 1)
        row["controller_minutes_under_floor"] = round(sum(rep.minutes_under_floor.values()), 1)
        open_ = loop.controller.open_faults()
        row["open_faults"] = len(open_)
        row["detector_stuck_found"] = sorted(f.pole for f in open_ if f.type == "detector_stuck" and f.pole)
        row["detectors_stuck"] = sorted(f.label for f in faults)
        rows.append(row)
    return rows
