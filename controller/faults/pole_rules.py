"""Per-pole fault rules, driven by each telemetry report and event.

Each rule counts consecutive bad reports to open and consecutive good reports to clear (the
thresholds are in ``faults.yaml``), so one odd reading neither raises nor clears a fault.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from streetlight.protocol import Telemetry
from streetlight.registry import Pole

from ..tables import FaultTable


@dataclass(slots=True)
class Rule:
    """A bad/good counter with its own open and clear thresholds."""

    open_after: int
    clear_after: int
    bad: int = 0
    good: int = 0
    active: bool = False
    first_bad_ts: int = -1
    evidence: dict[str, Any] = field(default_factory=dict)

    def observe(self, bad: bool, ts: int, evidence: dict[str, Any] | None = None) -> None:
        if bad:
            if self.bad == 0:
                self.first_bad_ts = ts
            self.bad += 1
            self.good = 0
            if evidence is not None:
                self.evidence = evidence
            if self.bad >= self.open_after:
                self.active = True
        else:
            self.good += 1
            self.bad = 0
            if self.good >= self.clear_after:
                self.active = False

    def hold(self) -> None:
        """A reading between the clear and the open thresholds: it neither opens nor clears, and
        the count towards clearing starts again."""
        self.good = 0

    def force(self, ts: int, evidence: dict[str, Any]) -> None:
        """Open at once (the device's own diagnostics reported the fault)."""
        if not self.active:
            self.first_bad_ts = ts
        self.active, self.good, self.evidence = True, 0, evidence


@dataclass(slots=True)
class PoleWatch:
    """What the controller knows of one pole, and its rules."""

    pole: Pole
    f: FaultTable
    last_msg_ts: int = -1
    online: bool | None = None
    status_ts: int = -1
    mode: str = "auto"
    last: Telemetry | None = None
    lamp: Rule = field(init=False)
    driver: Rule = field(init=False)
    volt: Rule = field(init=False)
    leak: Rule = field(init=False)
    day: Rule = field(init=False)
    cycling: Rule = field(init=False)
    was_on: bool | None = None
    clock_skewed: bool = False  # as road time judged it (streetlight.clock), with its hysteresis
    clock_offset_ms: int = 0  # the pole's clock minus road time, at its latest reading
    clock_since_ts: int = -1  # road time of the first reading of the current skew
    full_since: int = -1  # first report of the current run at full output whatever the level
    driver_ratio: float | None = None  # load drawn / load expected at the last off-curve report
    ons: deque[int] = field(default_factory=deque)
    device_cycling_ts: int = -1  # the device's own cycling diagnosis, held for a cycling window

    def __post_init__(self) -> None:
        f = self.f
        self.lamp = Rule(f.lamp_failure_reports, f.clear_reports)
        self.driver = Rule(f.driver_anomaly_reports, f.clear_reports)
        self.volt = Rule(f.voltage_reports, f.clear_reports)
        self.leak = Rule(1, f.clear_reports)  # opened by force() only, never by a count
        self.day = Rule(f.day_burning_reports, f.clear_reports)
        self.cycling = Rule(1, 1)

    def seen(self, ts: int) -> None:
        self.last_msg_ts = max(self.last_msg_ts, ts)

    def on_telemetry(self, t: Telemetry, commanded: float, command_ts: int, sun_up: bool) -> None:
        """Run every rule on one report. ``commanded`` is the level the controller asked for."""
        f, rated = self.f, self.pole.rated_power_w
        prev = self.last
        self.last = t
        self.seen(t.ts)
        settled = t.ts - command_ts >= f.settle_ms_after_command and (prev is None or abs(prev.dim - t.dim) < 1.0)
        supply = t.voltage_v >= f.supply_lost_v
        standby_max = f.standby_w + f.standby_fraction * rated
        lit = t.power_w > standby_max
        # judged on the level the device says it is delivering: a device still at 0 although told to
        # light has not (yet) taken the command, which the command's own ack or expiry tells, and
        # is no evidence against the lamp (commands can be late: a queued concentrator, a slow link)
        must_light = t.dim >= f.on_min_level
        base = {"voltage_v": t.voltage_v, "power_w": t.power_w, "dim": t.dim, "commanded": commanded}

        # leakage: opened at once above the open threshold (with the measured value), cleared by
        # reports below the lower clear threshold; the band between them holds what is
        if t.leakage_ma is not None:
            if t.leakage_ma > f.leakage_ma:
                self.leak.force(t.ts, {"leakage_ma": t.leakage_ma, "limit_ma": f.leakage_ma})
            elif t.leakage_ma > f.leakage_clear_ma:
                self.leak.hold()
            else:
                self.leak.observe(False, t.ts)

        # voltage band (a pole with no supply at all belongs to the feeder analysis)
        out_of_band = supply and not (f.voltage_low_v <= t.voltage_v <= f.voltage_high_v)
        self.volt.observe(out_of_band, t.ts, {"voltage_v": t.voltage_v, "band_v": [f.voltage_low_v, f.voltage_high_v]})

        # full output whatever the level: a relay stuck closed (the driver's dimming input has no
        # say). It is recognised where the level is low enough that the full-output curve cannot
        # be mistaken for a driver drawing a share more than its curve; once recognised it holds
        # at any level for as long as the lamp stays at full output (it does not follow the level).
        full_w = f.standby_w + rated
        at_full = supply and abs(t.power_w - full_w) <= f.stuck_on_tolerance_fraction * rated
        stuck_on = at_full and (self.full_since >= 0 or max(t.dim, commanded) <= f.stuck_on_max_level)
        if not stuck_on:
            self.full_since = -1
        elif self.full_since < 0:
            self.full_since = t.ts

        # day-burning: light in daylight that nobody asked for
        burning = sun_up and commanded < f.on_min_level and t.power_w > standby_max + f.day_burning_fraction * rated
        day_ev = {**base, "sun_up": True}
        if stuck_on:
            day_ev["full_output_since_ts"] = self.full_since
        self.day.observe(burning, t.ts, day_ev)

        # lamp failure: told to light, supply normal, drawing standby power
        dark = supply and must_light and not lit
        if dark:
            self.lamp.observe(True, t.ts, {**base, "standby_max_w": round(standby_max, 1)})
        elif supply and must_light and lit:  # only light proves a lamp works again
            self.lamp.observe(False, t.ts)

        # power off its expected curve for the delivered level (not dark, not day-burning, not a
        # stuck relay: one root cause, one fault, and that one is day-burning once the sun is up)
        expected_w = f.standby_w + rated * t.dim / 100.0
        other_cause = dark or burning or stuck_on
        off_curve = supply and settled and not other_cause and \
            abs(t.power_w - expected_w) > f.power_tolerance_fraction * rated
        if off_curve:
            self.driver_ratio = (t.power_w - f.standby_w) / max(rated * t.dim / 100.0, 1e-9)
            self.driver.observe(True, t.ts, {**base, "expected_w": round(expected_w, 1)})
        elif other_cause or not supply or (settled and self._shows_driver_fault(t.dim)):
            self.driver.observe(False, t.ts)
            if not self.driver.active:
                self.driver_ratio = None
        # else: a ramp still settling, or a level at which the driver's deviation would hide in the
        # tolerance, is no evidence either way; counting it as good split one fault into two

        # cycling: the lamp comes back on by itself, repeatedly, under a steady command
        window = int(f.cycling_window_s * 1000)
        steady = commanded >= f.on_min_level and t.ts - command_ts >= f.settle_ms_after_command
        if supply and steady and self.was_on is False and lit:
            self.ons.append(t.ts)
        self.was_on = lit if supply else None
        while self.ons and self.ons[0] <= t.ts - window:
            self.ons.popleft()
        cycling = len(self.ons) >= f.cycling_transitions
        if cycling:
            self.cycling.force(self.ons[0], {"off_on_transitions": len(self.ons), "window_s": f.cycling_window_s})
        elif self.cycling.active and 0 <= t.ts - self.device_cycling_ts < window:
            self.cycling.hold()  # the device saw the cycling itself; reports between its cycles do not clear it
        else:
            self.cycling.observe(False, t.ts)

    def _shows_driver_fault(self, dim: float) -> bool:
        """Whether a good report at ``dim`` is evidence the driver recovered (ISA-18.2 style hysteresis).

        Only a settled level counts, and only one at which the deviation last measured (the load
        drawn as a share of its curve) would stand out of the tolerance: a driver at half power
        looks normal at 20 %, and a crew would get a second work order when the level rose again.
        """
        if self.driver_ratio is None:
            return True
        return abs(self.driver_ratio - 1.0) * dim / 100.0 > self.f.power_tolerance_fraction

    def on_lamp_fault(self, ts: int, code: str) -> None:
        self.seen(ts)
        self.lamp.force(ts, {"device_code": code, "source": "lamp_fault event"})

    def on_driver_fault(self, ts: int, code: str) -> None:
        self.seen(ts)
        self.driver.force(ts, {"device_code": code, "source": "driver_fault event"})

    def on_day_burner(self, ts: int, code: str) -> None:
        self.seen(ts)
        self.day.force(ts, {"device_code": code, "source": "day_burner event"})

    def on_cycling_failure(self, ts: int, code: str) -> None:
        self.seen(ts)
        self.device_cycling_ts = ts
        self.cycling.force(ts, {"device_code": code, "source": "cycling_failure event"})

    def _went_offline(self) -> bool:
        return self.online is False and self.status_ts >= self.last_msg_ts

    def silent(self, now: int, interval_ms: int, start_ms: int) -> bool:
        # an offline status counts once it has settled: the wills of a feeder's poles cut at one
        # instant reach the platform over a moment, and locating before the last of them has
        # arrived would split one cable fault into a short span and many comm losses
        if self._went_offline() and now - self.status_ts >= self.f.status_settle_intervals * interval_ms:
            return True
        last = self.last_msg_ts if self.last_msg_ts >= 0 else start_ms
        return now - last > self.f.silent_after_intervals * interval_ms

    def overdue(self, now: int, interval_ms: int, start_ms: int) -> bool:
        if self._went_offline():
            return True
        last = self.last_msg_ts if self.last_msg_ts >= 0 else start_ms
        return now - last > self.f.suspect_after_intervals * interval_ms

    def no_supply(self) -> bool:
        return self.last is not None and self.last.voltage_v < self.f.supply_lost_v
