"""The electrical side of a pole: LED driver power curve, feeder voltage, current, energy, heat.

All functions take and return arrays, one entry per pole.
"""

from __future__ import annotations

import numpy as np

NOMINAL_V = 230.0
STANDBY_W = 1.8  # controller, modem and driver standby
FEEDER_DROP_V = 0.09  # volts lost per pole position downstream at full load of the feeder


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


def supply_voltage(
    feeder_position: np.ndarray, feeder_load: np.ndarray, source_v: np.ndarray, noise: np.ndarray
) -> np.ndarray:
    """Voltage at each pole: the cabinet's voltage, less the drop to this position, plus noise.

    ``feeder_load`` is the feeder's load as a fraction of its rating, per pole (so the drop grows
    along the feeder and with how brightly it burns).
    """
    return source_v - FEEDER_DROP_V * feeder_position * (0.2 + feeder_load) + noise


def driver_temp_step(temp_c: np.ndarray, power_w: np.ndarray, ambient_c: float, dt_s: float) -> np.ndarray:
    """First-order heating of the driver towards ambient + 0.12 °C per watt (time constant 15 min)."""
    target = ambient_c + 0.12 * power_w
    return temp_c + (target - temp_c) * (1.0 - np.exp(-dt_s / 900.0))


def ambient_temp_c(local_hour: float, mean_c: float = 11.0, swing_c: float = 5.0) -> float:
    """Air temperature over the day: coldest before dawn, warmest mid-afternoon."""
    return mean_c + swing_c * float(np.cos((local_hour - 15.0) / 24.0 * 2 * np.pi))
