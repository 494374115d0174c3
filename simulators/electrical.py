"""The electrical side of a pole: LED driver power curve, feeder voltage, current, energy, heat.

All functions take and return arrays, one entry per pole (the supply, one entry per feeder).

The supply is a 220 V single-phase low-voltage network as GB/T 12325-2008 describes it: the
voltage at the point of supply may deviate +7 % / -10 % from 220 V (198-235.4 V). Its parts:

* the cabinet's voltage: a 10/0.4 kV transformer gives about 231 V phase voltage at no load,
  less under load, so the cabinet sits above nominal (``CABINET_V``) and moves with the
  network's daily load (``diurnal_v``: lowest at the evening peak, highest before dawn);
* a slow wander of the network (``SupplyWander``: an Ornstein-Uhlenbeck process per feeder,
  minutes long, bounded like the network's regulation bounds it);
* the drop along the feeder cable: the load is spread evenly along it, so the drop at a
  fraction ``x`` of its length is ``1 - (1 - x)**2`` of the drop at its far end, which is about
  4 % of nominal at full load (``FEEDER_END_DROP_V``; CJJ 45 asks the far end to keep 90 %);
* fast noise: flicker and the meter's own error (``FAST_NOISE_V``, drawn per report).

In normal operation every pole stays inside the band with margin (about 206-233 V); a
``voltage_sag`` fault moves one feeder's cabinet voltage out of it.
"""

from __future__ import annotations

import numpy as np

NOMINAL_V = 220.0  # GB/T 12325-2008: 220 V single-phase, +7 % / -10 %
CABINET_V = 224.0  # the cabinet's mean voltage: the transformer is set above nominal for the drop
DIURNAL_SWING_V = 3.0  # the network's daily load moves the cabinet voltage this much either way
WANDER_SIGMA_V = 1.2  # the slow wander's standard deviation
WANDER_BOUND_V = 3.5  # and its bound
WANDER_TAU_S = 1200.0  # and its time constant
FEEDER_END_DROP_V = 9.0  # drop at a feeder's far end at full load (about 4 % of 220 V)
OTHER_LOAD = 0.2  # the feeder's load besides the lamps (equipment on the poles), share of the lamps' rating
FAST_NOISE_V = 0.8  # flicker and meter error, standard deviation per report
STANDBY_W = 1.8  # controller, modem and driver standby


def driver_power_w(dim_pct: np.ndarray, rated_w: np.ndarray, drift: np.ndarray | float = 1.0) -> np.ndarray:
    """Active power of an LED driver at a dim level: nearly linear, with a fixed loss when on.

    ``drift`` multiplies the load part (a degrading driver draws more, or less, than its curve).
    """
    d = np.clip(np.asarray(dim_pct, dtype=float) / 100.0, 0.0, 1.0)
    on = d > 0
    load = rated_w * (0.06 * on + 0.94 * d**1.08) * drift
    return STANDBY_W + load


def power_factor(dim_pct: np.ndarray) -> np.ndarray:
    """Drivers reach their rated PF near full output; at low dim and in standby it falls."""
    d = np.clip(np.asarray(dim_pct, dtype=float) / 100.0, 0.0, 1.0)
    return np.where(d > 0, 0.55 + 0.43 * np.minimum(1.0, d * 1.6), 0.35)


def diurnal_v(local_hour: float) -> float:
    """The cabinet voltage's daily swing: lowest at the evening peak of the network (19:30),
    highest in the small hours when the district sleeps."""
    return -DIURNAL_SWING_V * float(np.cos((local_hour - 19.5) / 24.0 * 2 * np.pi))


class SupplyWander:
    """The network's slow wander per feeder: Ornstein-Uhlenbeck, stationary from the start,
    from its own generator so that it never shifts the other random draws of a road."""

    def __init__(self, feeders: int, rng: np.random.Generator) -> None:
        self.rng = rng
        self.v = np.clip(rng.normal(0.0, WANDER_SIGMA_V, feeders), -WANDER_BOUND_V, WANDER_BOUND_V)

    def step(self, dt_s: float) -> np.ndarray:
        a = float(np.exp(-max(dt_s, 0.0) / WANDER_TAU_S))
        self.v = self.v * a + self.rng.normal(0.0, WANDER_SIGMA_V * np.sqrt(1.0 - a * a), len(self.v))
        self.v = np.clip(self.v, -WANDER_BOUND_V, WANDER_BOUND_V)
        return self.v


def supply_voltage(
    feeder_fraction: np.ndarray, feeder_load: np.ndarray, source_v: np.ndarray, noise: np.ndarray
) -> np.ndarray:
    """Voltage at each pole: the cabinet's voltage, less the drop to this point, plus noise.

    ``feeder_fraction`` is the pole's place along its feeder (its position over the feeder's
    length, 1 at the far end); ``feeder_load`` the lamps' load as a fraction of their rating,
    per pole (so the drop grows along the feeder and with how brightly it burns).
    """
    x = np.clip(feeder_fraction, 0.0, 1.0)
    return source_v - FEEDER_END_DROP_V * (1.0 - (1.0 - x) ** 2) * (OTHER_LOAD + feeder_load) / (1 + OTHER_LOAD) + noise


def driver_temp_step(temp_c: np.ndarray, power_w: np.ndarray, ambient_c: float, dt_s: float) -> np.ndarray:
    """First-order heating of the driver towards ambient + 0.12 °C per watt (time constant 15 min)."""
    target = ambient_c + 0.12 * power_w
    return temp_c + (target - temp_c) * (1.0 - np.exp(-dt_s / 900.0))


def ambient_temp_c(local_hour: float, mean_c: float = 11.0, swing_c: float = 5.0) -> float:
    """Air temperature over the day: coldest before dawn, warmest mid-afternoon."""
    return mean_c + swing_c * float(np.cos((local_hour - 15.0) / 24.0 * 2 * np.pi))
