"""The controller's data tables: lighting classes, fault thresholds, the default schedule.

Tables are YAML files in ``controller/data``; a road can be given other files. They are read
once, validated with pydantic (every problem reported with the file name) and passed down.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import TableError


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LightingClass(_Table):
    name: str
    luminance_cd_m2: float = Field(gt=0)
    level: float = Field(ge=0, le=100)
    min_vehicles_h: float = Field(ge=0)
    min_pedestrians_h: float = Field(ge=0)


class FollowTable(_Table):
    vehicle_level: float = Field(ge=0, le=100)
    pedestrian_level: float = Field(ge=0, le=100)
    lookahead_s: float = Field(gt=0)
    min_ahead_m: float = Field(ge=0)
    max_ahead_m: float = Field(gt=0)
    hold_s: float = Field(ge=0)
    pedestrian_radius_m: float = Field(ge=0)
    pedestrian_hold_s: float = Field(ge=0)


class LightingTable(_Table):
    classes: list[LightingClass] = Field(min_length=1)
    safety_floor: float = Field(ge=0, le=100)
    window_s: float = Field(gt=0)
    short_window_s: float = Field(gt=0)
    min_coverage_s: float = Field(ge=0)
    hysteresis: float = Field(ge=0, lt=1)
    min_hold_s: float = Field(ge=0)
    min_healthy_fraction: float = Field(ge=0, le=1)
    quiet_vehicles_h: float = Field(ge=0)
    busy_neighbour_vehicles_h: float = Field(ge=0)
    ramp_up_ms: int = Field(ge=0)
    ramp_down_ms: int = Field(ge=0)
    ramp_emergency_ms: int = Field(ge=0)
    follow: FollowTable

    @model_validator(mode="after")
    def _ordered(self) -> LightingTable:
        levels = [c.level for c in self.classes]
        vols = [c.min_vehicles_h for c in self.classes]
        if levels != sorted(levels, reverse=True) or vols != sorted(vols, reverse=True):
            raise ValueError("classes must be listed busiest first: levels and min_vehicles_h decreasing")
        if self.classes[-1].min_vehicles_h != 0 or self.classes[-1].min_pedestrians_h != 0:
            raise ValueError("the last class must have zero thresholds, so every volume has a class")
        return self


class FaultTable(_Table):
    nominal_voltage_v: float
    voltage_high_v: float
    voltage_low_v: float
    supply_lost_v: float
    voltage_reports: int = Field(ge=1)
    voltage_feeder_share: float = Field(gt=0, le=1)
    voltage_feeder_min_poles: int = Field(ge=1)
    silent_after_intervals: float = Field(gt=0)
    suspect_after_intervals: float = Field(gt=0)
    return_settle_intervals: float = Field(ge=0)
    status_settle_intervals: float = Field(1.0, ge=0)
    min_cable_run: int = Field(ge=1)
    on_min_level: float = Field(ge=0, le=100)
    standby_fraction: float = Field(ge=0, le=1)
    standby_w: float = Field(ge=0)
    lamp_failure_reports: int = Field(ge=1)
    power_tolerance_fraction: float = Field(gt=0)
    driver_anomaly_reports: int = Field(ge=1)
    leakage_ma: float = Field(gt=0)
    leakage_clear_ma: float = Field(ge=0)
    day_elevation_deg: float
    day_burning_reports: int = Field(ge=1)
    day_burning_fraction: float = Field(ge=0, le=1)
    stuck_on_max_level: float = Field(ge=0, le=100)
    stuck_on_tolerance_fraction: float = Field(gt=0, le=1)
    cycling_window_s: float = Field(gt=0)
    cycling_transitions: int = Field(ge=2)
    stuck_window_s: float = Field(gt=0)
    stuck_neighbours: int = Field(ge=1)
    stuck_min_neighbour_count: float = Field(ge=1)
    clear_reports: int = Field(ge=1)
    settle_ms_after_command: int = Field(ge=0)
    severity: dict[str, str]


def _read(source: str | Path, default_name: str) -> tuple[str, Any]:
    if source == "":
        ref = Path(__file__).with_name("data") / default_name
        return f"controller/data/{default_name}", yaml.safe_load(ref.read_text(encoding="utf-8"))
    path = Path(source)
    try:
        return str(path), yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TableError(str(path), f"cannot read the table: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise TableError(str(path), f"not valid YAML: {exc}") from exc


def _validate(model: type[_Table], name: str, data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(table)'}: {e['msg']}" for e in exc.errors())
        raise TableError(name, problems) from exc


@lru_cache(maxsize=8)
def lighting_table(path: str = "") -> LightingTable:
    name, data = _read(path, "lighting.yaml")
    return _validate(LightingTable, name, data)  # type: ignore[no-any-return]


@lru_cache(maxsize=8)
def fault_table(path: str = "") -> FaultTable:
    name, data = _read(path, "faults.yaml")
    return _validate(FaultTable, name, data)  # type: ignore[no-any-return]


def schedule_data(path: str = "") -> tuple[str, Any]:
    """The raw default schedule file (parsed by :mod:`controller.schedule`)."""
    return _read(path, "schedule.yaml")
