"""``streetlight bench energy``: a simulated week of the road under three lighting policies.

The same simulated traffic (``simulators.traffic``: an urban arterial's weekday and weekend
profiles, plus an event letting out on Saturday night) drives:

* ``full power`` — 100 % from dusk to dawn;
* ``midnight step`` — 100 % until 00:00, then 50 % until dawn (a common fixed schedule);
* ``adaptive`` — this platform's controller: traffic classes, follow-me, schedule floor.

Poles report every 60 s of simulated time and draw ``standby + rated × level`` (dimming down
ramps over one report). The floor each minute is the level the measured traffic requires
(CJJ 45 / CIE 115 classes in ``controller/data/lighting.yaml``), from an estimator of its own
fed the same counts; minutes under it are counted for every policy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from controller.energy import CHINA_GRID_KG_PER_KWH
from controller.engine import Controller, ControllerConfig
from controller.schedule import ScheduleBook
from controller.tables import fault_table, lighting_table
from controller.traffic import TrafficEstimator
from simulators.traffic import Surge, TrafficModel
from streetlight.clock import parse_local
from streetlight.protocol import Telemetry
from streetlight.registry import load_road

STEP_S = 60
STANDBY_W = 3.0


def run(quick: bool) -> list[dict[str, Any]]:
    road = load_road("nanhuan-1")
    n = len(road.poles)
    start = parse_local("2026-11-23 12:00")  # a Monday noon
    days = 1 if quick else 7
    end = start + days * 86_400_000
    sat_night = parse_local("2026-11-29 00:30")  # an event lets out after midnight, Saturday
    surges = [Surge(sat_night, sat_night + 90 * 60_000, 4.0, segment=2)]
    if quick:
        surges = [Surge(parse_local("2026-11-24 00:30"), parse_local("2026-11-24 02:00"), 4.0, segment=2)]
    traffic = TrafficModel(road, seed=11, surges=surges)
    cfg = ControllerConfig(report_interval_s=STEP_S)
    ctl = Controller(road, cfg)
    book = ScheduleBook.default()
    sched = book.road_schedule()
    ref = TrafficEstimator(road, lighting_table(), fault_table(), STEP_S * 1000)
    rated = road.arrays.rated_power_w
    seg_of = road.arrays.segment
    nseg = len(road.segments)

    policies = ("full power", "midnight step", "adaptive")
    wh = {k: 0.0 for k in policies}
    under_min = {k: 0.0 for k in policies}
    lit_h = 0.0
    level = np.zeros(n)  # adaptive, as delivered
    prev_level = np.zeros(n)
    seq = 0
    t = start
    while t < end:
        step = traffic.step(t, STEP_S)
        now = t + STEP_S * 1000
        sched_level = book.level_at(sched, now, ctl.astro)
        lit = sched_level > 0
        # poles report what they drew and counted over the step
        power = STANDBY_W + rated * level / 100.0
        for i, p in enumerate(road.poles):
            ctl.on_telemetry(p.id, Telemetry.model_construct(
                ts=now - 1, seq=seq, dim=float(level[i]), power_w=float(power[i]), voltage_v=220.0,
                leakage_ma=2.0, vehicles=int(step.vehicles[i]),
                pedestrians=int(step.pedestrians[i]) if road.poles[i].has("pedestrian_detector") else None))
            ref.add(i, now - 1, int(step.vehicles[i]), int(step.pedestrians[i]))
        seq += 1
        if lit and len(step.vehicle_pole):
            ctl.on_vehicles(step.vehicle_pole, step.vehicle_ts, step.vehicle_speed_kmh, step.vehicle_direction)
        ctl.tick(now)
        prev_level, level = level, np.nan_to_num(ctl.level.copy())
        # floor the measured traffic requires, per segment
        ref.update_stuck(now)
        floor_seg = np.array([s.floor if s.trusted else sched_level for s in ref.evaluate(now)]) if lit else np.zeros(nseg)
        floor = floor_seg[seg_of]
        if not lit:
            t = now
            continue
        hours = STEP_S / 3600
        lit_h += hours
        local_hour = ((now // 1000 + 8 * 3600) % 86400) / 3600
        step_level = 100.0 if local_hour >= 12 else 50.0  # lit before midnight: evening
        delivered = {
            "full power": np.full(n, 100.0),
            "midnight step": np.full(n, step_level),
            "adaptive": np.where(level < prev_level, (level + prev_level) / 2, level),
        }
        for k, lv in delivered.items():
            wh[k] += float((STANDBY_W + rated * lv / 100.0).sum() * hours)
            if np.any(np.minimum(lv, level if k == "adaptive" else lv) < floor - 1e-9):
                under = np.array([np.any(lv[seg_of == s] < floor_seg[s] - 1e-9) for s in range(nseg)])
                under_min[k] += float(under.sum()) * STEP_S / 60
        t = now

    base = wh["full power"]
    rows = []
    for k in policies:
        saved = base - wh[k]
        rows.append({
            "case": k, "nights": days, "lit_hours": round(lit_h, 1), "kWh": round(wh[k] / 1000, 1),
            "saved_kWh": round(saved / 1000, 1), "saved_pct": round(100 * saved / base, 1),
            "CO2_saved_kg": round(saved / 1000 * CHINA_GRID_KG_PER_KWH, 1),
            "segment_minutes_under_floor": round(under_min[k], 1),
        })
    rep = ctl.energy_report()
    rows[-1]["controller_meter_saved_pct"] = round(rep.savings_pct, 1)
    rows[-1]["controller_minutes_under_floor"] = round(sum(rep.minutes_under_floor.values()), 1)
    rows[-1]["open_faults"] = len(ctl.open_faults())
    return rows

