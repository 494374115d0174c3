"""One road of pole devices as numpy arrays: lamp control, faults' effects, physics, telemetry.

``RoadSim`` holds every pole's state in columns and advances them all at once; it knows nothing
about MQTT. Each ``step`` returns what the poles would send (telemetry columns and events), and
the device logic (``device``) feeds commands, configs and heartbeats into it between steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streetlight.protocol import Config, Fallback, default_schedule
from streetlight.registry import Road

from . import electrical as el
from .daylight import ambient_lux, solar_elevation_deg
from .schedule import schedule_level, steps_of
from .traffic import TrafficModel, TrafficStep

AUTO, MANUAL, FALLBACK = 0, 1, 2
MODE_NAMES = ("auto", "manual", "fallback")
FIRMWARE = "sim-1.0.0"
SCHEDULE_RAMP_MS = 5_000
DEFAULT_CONFIG = Config(version=0, report_interval_s=10,
                        fallback=Fallback(after_s=300, schedule=list(default_schedule().steps)))


@dataclass(slots=True)
class PoleEvent:
    pole: int
    ts: int
    type: str
    extra: dict[str, object] = field(default_factory=dict)


class Ramp:
    """A per-pole value that moves linearly to a target over a time (a drifting driver, rising leakage)."""

    def __init__(self, initial: np.ndarray) -> None:
        self.start = initial.astype(float)
        self.target = initial.astype(float)
        self.t0 = np.zeros(len(initial), np.int64)
        self.ramp_ms = np.zeros(len(initial), np.int64)

    def at(self, t_ms: int) -> np.ndarray:
        frac = np.where(self.ramp_ms > 0, np.clip((t_ms - self.t0) / np.maximum(self.ramp_ms, 1), 0.0, 1.0), 1.0)
        return self.start + (self.target - self.start) * frac

    def move(self, idx: np.ndarray, target: float, t_ms: int, ramp_ms: int) -> None:
        self.start[idx] = self.at(t_ms)[idx]
        self.target[idx] = target
        self.t0[idx] = t_ms
        self.ramp_ms[idx] = ramp_ms


@dataclass(slots=True)
class TruthSample:
    """What really happened on the road during one step, whatever the devices reported."""

    t0_ms: int
    t1_ms: int
    vehicles: np.ndarray  # vehicles that really passed each pole (a stuck or dead detector misses them)
    pedestrians: np.ndarray  # pedestrians who really passed each pole
    light_pct: np.ndarray  # mean light output over the step, % of full (0 for a dark or failed lamp)
    power_w: np.ndarray  # mean active power over the step (driver curve, drift, standby), noise-free
    ambient_lux: float  # daylight at road level, noise-free, mean over the road


@dataclass(slots=True)
class StepOutput:
    t_ms: int
    report: np.ndarray  # bool: poles sending telemetry at t_ms
    columns: dict[str, np.ndarray]  # telemetry fields, rounded, for every pole
    traffic: TrafficStep
    events: list[PoleEvent]  # non-traffic events (faults, reboots), time-ordered
    truth: TruthSample | None = None


class RoadSim:
    """Every pole of ``road`` at once. ``t_ms`` is the simulated time of the last step."""

    def __init__(self, road: Road, start_ms: int, seed: int, report_interval_s: int = 10,
                 heartbeat_required: bool = True, utc_offset_s: int = 8 * 3600,
                 traffic: TrafficModel | None = None) -> None:
        self.road = road
        self.t_ms = start_ms
        self.utc_offset_s = utc_offset_s
        self.heartbeat_required = heartbeat_required
        self.rng = np.random.default_rng([seed, 2])
        a = road.arrays
        n = self.n = len(road.poles)
        self.arrays = a
        self.rated = a.rated_power_w
        self.feeder = a.feeder
        self.nfeeders = max(1, len(road.feeders))
        self.traffic = traffic or TrafficModel(road, seed=seed, utc_offset_s=utc_offset_s)
        eq = road.poles
        self.has = {k: np.array([p.has(k) for p in eq]) for k in
                    ("light_sensor", "traffic_detector", "pedestrian_detector", "leakage_monitor")}
        # device state
        self.powered = np.ones(n, bool)
        self.comm_ok = np.ones(n, bool)
        self.seq = np.zeros(n, np.int64)
        self.mode = np.zeros(n, np.int8)
        self.commanded = np.zeros(n, bool)  # holds a platform level (else follows its schedule)
        self.ramp_from = np.zeros(n)
        self.ramp_to = np.zeros(n)
        self.ramp_start = np.full(n, start_ms, np.int64)
        self.ramp_ms = np.zeros(n, np.int64)
        self.identify_until = np.zeros(n, np.int64)
        self.last_hb = np.full(n, start_ms, np.int64)  # boot grants a grace period of after_s
        self.configs: list[Config] = [DEFAULT_CONFIG]
        self.cfg = np.zeros(n, np.int32)  # index into self.configs
        self.interval_ms = np.full(n, report_interval_s * 1000, np.int64)
        self.next_report = np.full(n, start_ms + report_interval_s * 1000, np.int64)
        # faults
        self.lamp_ok = np.ones(n, bool)
        # a cycling lamp (its driver's thermal protection, a lamp at the end of its life) goes out
        # for ``cycle_off_ms`` at the start of every ``cycle_period_ms`` from ``cycle_start``
        self.cycle_start = np.zeros(n, np.int64)
        self.cycle_period_ms = np.zeros(n, np.int64)  # 0: not cycling
        self.cycle_off_ms = np.zeros(n, np.int64)
        self.cycle_dark = np.zeros(n, bool)
        # gradual faults: each value moves linearly from ``*_from`` to ``*_to`` over its ramp
        self.drift = Ramp(np.ones(n))
        self.leak_extra = Ramp(np.zeros(n))
        self.relay_stuck = np.zeros(n, bool)
        self.detector_stuck = np.zeros(n, bool)
        self.clock_offset_ms = np.zeros(n, np.int64)  # each device's clock minus true time
        self.source_v = np.full(self.nfeeders, el.CABINET_V)  # each feeder's cabinet voltage (a sag lowers it)
        self.wander = el.SupplyWander(self.nfeeders, np.random.default_rng([seed, 4]))
        pos = a.feeder_position.astype(float)
        length = np.ones(self.nfeeders)
        np.maximum.at(length, self.feeder, pos)
        self.feeder_fraction = pos / length[self.feeder]  # 1 at the feeder's far end
        # physics state
        self.energy = self.rng.uniform(1_000, 900_000, n).round(0)
        self.temp = np.full(n, el.ambient_temp_c(self._hour(start_ms)))
        self.leak_base = self.rng.uniform(0.5, 3.0, n)
        self.rssi_base = self.rng.uniform(-95, -58, n)
        self.cloud = 1.0
        self.acc_veh = np.zeros(n, np.int64)
        self.acc_ped = np.zeros(n, np.int64)
        self.prev_out = np.zeros(n)
        self.energy_t = start_ms  # energy is integrated up to here (a command between steps moves it)
        self._level_changed = False  # a command changed the output at energy_t: prev_out is stale
        self.pending_events: list[PoleEvent] = []
        from .equipment import PortSim  # the module builds on PoleEvent defined here
        self.equipment = PortSim(road, seed)  # the ports of multi-function poles (protocol 1.1)
        self.night = np.zeros(n, bool)
        # ground truth: light output integrated exactly over the ramps since ``_light_t``
        self._light_t = start_ms
        self._light_ms = np.zeros(n)  # %·ms since the step began
        self._step_t0 = start_ms
        self.apply_targets(start_ms, initial=True)
        self.prev_out = self.output_dim(start_ms)
        from .cabinets import CabinetSim  # the module builds on RoadSim defined here
        self.cabinets = CabinetSim(self, seed)  # the road's distribution cabinets (protocol 1.1)

    # --- control -------------------------------------------------------------------------
    @property
    def alive(self) -> np.ndarray:
        """Poles whose messages reach the broker (supplied and with a working modem)."""
        return self.powered & self.comm_ok

    def _hour(self, t_ms: int) -> float:
        return ((t_ms / 1000 + self.utc_offset_s) % 86400) / 3600

    def setpoint(self, t_ms: int) -> np.ndarray:
        frac = np.clip((t_ms - self.ramp_start) / np.maximum(self.ramp_ms, 1), 0.0, 1.0)
        frac = np.where(self.ramp_ms <= 0, 1.0, frac)
        return self.ramp_from + (self.ramp_to - self.ramp_from) * frac

    def set_level(self, idx: np.ndarray | int, level: float, ramp_ms: int, t_ms: int) -> None:
        self._accrue_light(t_ms)
        cur = self.setpoint(t_ms)
        self.ramp_from[idx] = cur[idx]
        self.ramp_to[idx] = level
        self.ramp_start[idx] = t_ms
        self.ramp_ms[idx] = ramp_ms

    def output_dim(self, t_ms: int) -> np.ndarray:
        """Light actually produced: 0 without supply or lamp, 100 % through a stuck relay."""
        out = np.where(self.relay_stuck, 100.0, self.setpoint(t_ms))
        # identify: full on and off, once a second, so a crew can spot the pole
        blink = np.where((t_ms // 1000) % 2 == 0, 100.0, 0.0)
        out = np.where(t_ms < self.identify_until, blink, out)
        return np.where(self.powered & (self.lamp_works() | self.relay_stuck), out, 0.0)

    def lamp_works(self) -> np.ndarray:
        """Lamps that light when told to: not failed, and not in a cycling lamp's dark spell."""
        return self.lamp_ok & ~self.cycle_dark

    def cycle(self, t_ms: int) -> None:
        """A cycling lamp's state from ``t_ms`` until the next step: dark while its cycle's phase
        is within the off time. Held over each step, so the truth integrates it exactly."""
        cycling = self.cycle_period_ms > 0
        phase = (t_ms - self.cycle_start) % np.maximum(self.cycle_period_ms, 1)
        dark = cycling & (phase < self.cycle_off_ms)
        if not np.array_equal(dark, self.cycle_dark):
            self._accrue_light(t_ms)
            self.integrate_energy(t_ms)
            self.cycle_dark = dark

    def _accrue_light(self, t_ms: int) -> None:
        """Add the light produced from ``_light_t`` to ``t_ms`` under the ramps now in force.

        Called before anything moves a ramp, so the integral is exact however commands arrive.
        """
        a, b = self._light_t, t_ms
        if b <= a:
            return
        r = np.maximum(self.ramp_ms, 0).astype(float)
        s = self.ramp_start.astype(float)

        def ramped(x: float) -> np.ndarray:  # integral from the ramp's start to x of its fraction
            u = np.clip(x - s, 0.0, None)
            return np.where(r > 0, np.where(u <= r, u * u / (2 * np.maximum(r, 1.0)), r / 2 + (u - r)), u)

        frac = ramped(b) - ramped(a)
        level = self.ramp_from * (b - a) + (self.ramp_to - self.ramp_from) * frac
        level = np.where(r > 0, level, self.ramp_to * (b - a))
        out = np.where(self.relay_stuck, 100.0 * (b - a), level)
        blinking = self.identify_until > a  # full on and off once a second: half on average
        out = np.where(blinking, 50.0 * (b - a), out)
        self._light_ms += np.where(self.powered & (self.lamp_works() | self.relay_stuck), out, 0.0)
        self._light_t = b

    def _truth(self, t0: int, t1: int, tr: TrafficStep, elev: np.ndarray) -> TruthSample:
        self._accrue_light(t1)
        span = max(t1 - self._step_t0, 1)
        light = self._light_ms / span
        self._light_ms = np.zeros(self.n)
        self._step_t0 = t1
        lamp_failed = self.powered & ~self.lamp_works() & ~self.relay_stuck
        power = np.where(lamp_failed, el.STANDBY_W + 1.2, el.driver_power_w(light, self.rated, self.drift.at(t1)))
        power = np.where(self.powered, power, 0.0)
        lux = float(np.mean(ambient_lux(elev, self.cloud)))
        return TruthSample(t0, t1, tr.vehicles.copy(), tr.pedestrians.copy(), light, power, lux)

    def integrate_energy(self, t_ms: int) -> None:
        """Book the energy used up to ``t_ms`` at the levels in force so far.

        A command executed between two steps calls this first (it may then change the level at
        ``t_ms``), so the step's trapezoid never spreads the new level back over the time before
        the command, nor the old one over the time after it.
        """
        self._refresh_prev_out()
        if t_ms > self.energy_t:
            out = self.output_dim(t_ms)
            self._add_energy(out, (t_ms - self.energy_t) / 1000.0)
            self.prev_out = out
            self.energy_t = t_ms
        self._level_changed = True

    def _refresh_prev_out(self) -> None:
        if self._level_changed:
            self.prev_out = self.output_dim(self.energy_t)
            self._level_changed = False

    def _add_energy(self, out: np.ndarray, dt: float) -> None:
        mean_out = (out + self.prev_out) / 2.0
        lamp_failed = self.powered & ~self.lamp_works() & ~self.relay_stuck
        mean_power = np.where(self.powered, el.driver_power_w(mean_out, self.rated, self.drift.at(self.t_ms)), 0.0)
        mean_power = np.where(lamp_failed, el.STANDBY_W + 1.2, mean_power)
        self.energy += mean_power * dt / 3600.0

    def after_ms(self) -> np.ndarray:
        return np.array([c.fallback.after_s * 1000 for c in self.configs], np.int64)[self.cfg]

    def apply_targets(self, t_ms: int, initial: bool = False) -> None:
        """Mode from the heartbeat, and the schedule's level where the pole follows its schedule."""
        if not self.heartbeat_required:
            self.last_hb = np.where(self.comm_ok, t_ms, self.last_hb)
        stale = (t_ms - self.last_hb) > self.after_ms()
        self.mode = np.where(stale, FALLBACK, np.where(self.mode == FALLBACK, AUTO, self.mode)).astype(np.int8)
        follow = (self.mode == FALLBACK) | ~self.commanded
        levels = np.zeros(len(self.configs))
        road = self.road
        for ci in np.unique(self.cfg[follow]) if follow.any() else []:
            levels[ci] = schedule_level(steps_of(self.configs[ci].fallback.schedule), t_ms,
                                        self.utc_offset_s, road.lat, road.lon)
        want = levels[self.cfg]
        change = follow & (self.ramp_to != want) & self.powered
        if change.any():
            self._accrue_light(t_ms)
            idx = np.flatnonzero(change)
            cur = self.setpoint(t_ms)
            self.ramp_from[idx] = want[idx] if initial else cur[idx]
            self.ramp_to[idx] = want[idx]
            self.ramp_start[idx] = t_ms
            self.ramp_ms[idx] = 0 if initial else SCHEDULE_RAMP_MS
        # fallback ends the platform's hold: on return the pole keeps its level until commanded
        self.commanded &= self.mode != FALLBACK

    def apply_config(self, i: int, cfg: Config) -> bool:
        if cfg.version <= self.configs[self.cfg[i]].version:
            return False
        for k, c in enumerate(self.configs):
            if c == cfg:
                self.cfg[i] = k
                break
        else:
            self.configs.append(cfg)
            self.cfg[i] = len(self.configs) - 1
        self.interval_ms[i] = cfg.report_interval_s * 1000
        self.next_report[i] = min(self.next_report[i], self.t_ms + cfg.report_interval_s * 1000)
        return True

    def reboot(self, idx: np.ndarray, t_ms: int, reason: str, announce: bool = True) -> None:
        """Restart devices: seq from 0, schedule until commanded, a ``reboot`` event first unless
        the announcement is lost (``announce=False``: a power cut can take it with it)."""
        self.seq[idx] = 0
        self.commanded[idx] = False
        self.mode[idx] = AUTO
        self.last_hb[idx] = t_ms
        self.acc_veh[idx] = 0
        self.acc_ped[idx] = 0
        self.next_report[idx] = t_ms + self.interval_ms[idx]
        if announce:
            for i in np.atleast_1d(idx).tolist():
                self.pending_events.append(PoleEvent(i, t_ms, "reboot", {"reason": reason}))

    # --- time ----------------------------------------------------------------------------
    def step(self, t1: int) -> StepOutput:
        """Advance every pole from ``self.t_ms`` to ``t1`` and say what they report at ``t1``."""
        t0 = self.t_ms
        dt = (t1 - t0) / 1000.0
        rng = self.rng
        n = self.n
        tr = self.traffic.step(t0, dt)
        real = TrafficStep(tr.vehicles.copy(), tr.pedestrians.copy(), tr.vehicle_pole, tr.vehicle_ts,
                           tr.vehicle_speed_kmh, tr.vehicle_direction, tr.pedestrian_pole, tr.pedestrian_ts)
        counting = self.powered & ~self.detector_stuck
        tr.vehicles = np.where(counting, tr.vehicles, 0)
        keep = counting[tr.vehicle_pole] & self.alive[tr.vehicle_pole]
        tr.vehicle_pole, tr.vehicle_ts = tr.vehicle_pole[keep], tr.vehicle_ts[keep]
        tr.vehicle_speed_kmh, tr.vehicle_direction = tr.vehicle_speed_kmh[keep], tr.vehicle_direction[keep]
        tr.pedestrians = np.where(self.powered, tr.pedestrians, 0)
        pkeep = self.alive[tr.pedestrian_pole]
        tr.pedestrian_pole, tr.pedestrian_ts = tr.pedestrian_pole[pkeep], tr.pedestrian_ts[pkeep]
        self.acc_veh += tr.vehicles
        self.acc_ped += tr.pedestrians

        self._refresh_prev_out()
        out = self.output_dim(t1)
        mean_out = (out + self.prev_out) / 2.0
        self.prev_out = out
        lamp_failed = self.powered & ~self.lamp_works() & ~self.relay_stuck
        drift = self.drift.at(t1)
        power = np.where(lamp_failed, el.STANDBY_W + 1.2, el.driver_power_w(out, self.rated, drift))
        power = np.where(self.powered, power * (1 + rng.normal(0, 0.004, n)), 0.0)
        mean_power = np.where(self.powered, el.driver_power_w(mean_out, self.rated, drift), 0.0)
        mean_power = np.where(lamp_failed, el.STANDBY_W + 1.2, mean_power)
        e_dt = (t1 - self.energy_t) / 1000.0  # the whole step unless a command booked part of it
        self.energy_t = t1
        load = np.bincount(self.feeder, power, self.nfeeders) / np.maximum(
            np.bincount(self.feeder, self.rated, self.nfeeders), 1.0)
        cabinet_v = self.source_v + el.diurnal_v(self._hour(t1)) + self.wander.step(dt)
        volt = el.supply_voltage(self.feeder_fraction, load[self.feeder], cabinet_v[self.feeder],
                                 rng.normal(0, el.FAST_NOISE_V, n))
        volt = np.where(self.powered, np.clip(volt, 0, 400), 0.0)
        pf = np.where(lamp_failed, 0.3, el.power_factor(out))
        current = np.where(volt > 1, power / np.maximum(volt, 1) / pf, 0.0)
        self.energy += mean_power * e_dt / 3600.0
        self.temp = el.driver_temp_step(self.temp, power, el.ambient_temp_c(self._hour(t1)), dt)
        self.cloud = float(np.clip(self.cloud + rng.normal(0, 0.01), 0.3, 1.0))
        elev = solar_elevation_deg(t1, self.arrays.lat, self.arrays.lon)
        truth = self._truth(t0, t1, real, elev)
        self.night = elev < 0
        self.equipment.due(t1, self.pending_events)
        lux = ambient_lux(elev, self.cloud * (1 + rng.normal(0, 0.03, n)).clip(0.5, 1.5))
        leak = self.leak_base + self.leak_extra.at(t1) + rng.normal(0, 0.15, n)
        rssi = self.rssi_base + rng.normal(0, 1.5, n)

        report = self.alive & (self.next_report <= t1)
        self.next_report = np.where(self.next_report <= t1, t1 + self.interval_ms, self.next_report)
        cols = {
            "dim": np.round(self.setpoint(t1), 1),
            "power_w": np.round(power, 1).clip(0, 2000),
            "voltage_v": np.round(volt, 1),
            "current_a": np.round(current, 3).clip(0, 20),
            "pf": np.round(pf, 2).clip(0, 1),
            "energy_wh": np.round(self.energy, 2),
            "lux": np.round(lux, 1).clip(0, 200_000),
            "vehicles": self.acc_veh.copy(),
            "pedestrians": self.acc_ped.copy(),
            "leakage_ma": np.round(leak, 2).clip(0, 1000),
            "temp_c": np.round(self.temp, 1).clip(-50, 150),
            "rssi_dbm": np.round(rssi, 0).clip(-150, 0),
        }
        self.acc_veh[report] = 0
        self.acc_ped[report] = 0
        events = [e for e in self.pending_events if self.alive[e.pole]]
        self.pending_events = []
        self.t_ms = t1
        self.cycle(t1)
        return StepOutput(t1, report, cols, tr, events, truth)

    def state_key(self) -> np.ndarray:
        """What the retained State shows: a change of any column means a new State."""
        ver = np.array([c.version for c in self.configs], np.int64)[self.cfg]
        return np.stack([self.mode.astype(float), np.round(self.ramp_to, 1), ver.astype(float)], axis=1)

    def state_row(self, i: int) -> np.ndarray:
        """:meth:`state_key` of pole ``i`` alone (a command changes one pole; the whole key costs 93×)."""
        return np.array([float(self.mode[i]), float(np.round(self.ramp_to[i], 1)),
                         float(self.configs[int(self.cfg[i])].version)])

    def config_version(self) -> np.ndarray:
        return np.array([c.version for c in self.configs], np.int64)[self.cfg]
