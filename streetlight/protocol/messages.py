"""Pydantic models of every message in ``docs/protocol.md`` (version 1).

Models are strict (no coercion: ``"5"`` is not a number, ``true`` is not an int), ignore unknown
fields (newer devices work with this platform), and are frozen. An optional field that is
present must have the right type: ``null`` is not accepted where the page says ``number``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

U32 = 2**32 - 1
TS_MAX = 2**53  # beyond this a JavaScript client cannot represent the millisecond exactly
MAX_PAYLOAD = 16 * 1024

Ts = Annotated[int, Field(ge=0, le=TS_MAX)]
Level = Annotated[float, Field(ge=0, le=100)]
# The one grammar of a schedule step's time: a local HH:MM, or dusk/dawn with an offset in minutes.
AT_RE = re.compile(r"^(?:(?P<hh>[01]\d|2[0-3]):(?P<mm>[0-5]\d)|(?P<sun>dusk|dawn)(?P<off>[+-]\d{1,3})?)$")
AT_HELP = "expected HH:MM, dusk, dawn, dusk+N or dawn-N"


@dataclass(frozen=True, slots=True)
class StepTime:
    """A parsed step time: ``anchor`` ``clock`` with ``minutes`` after local midnight, or ``dusk`` /
    ``dawn`` with ``minutes`` of offset (negative = before)."""

    anchor: Literal["clock", "dusk", "dawn"]
    minutes: int


def parse_step_time(at: str) -> StepTime:
    """Parse a step time (``22:00``, ``dusk``, ``dawn-10``); raises ``ValueError`` otherwise."""
    m = AT_RE.match(at)
    if m is None:
        raise ValueError(f"step time {at!r}: {AT_HELP}")
    if m["sun"]:
        return StepTime("dusk" if m["sun"] == "dusk" else "dawn", int(m["off"] or 0))
    return StepTime("clock", int(m["hh"]) * 60 + int(m["mm"]))


class Message(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_dict())


PortId = Annotated[str, Field(pattern=r"^[a-z0-9-]{1,32}$")]


class PortReading(Message):
    """One switched, metered port of a multi-function pole (version 1.1)."""

    on: bool
    power_w: float = Field(ge=0, le=2000)
    link: Literal["up", "down", "none"] = None  # type: ignore[assignment]


class Telemetry(Message):
    ts: Ts
    seq: int = Field(ge=0, le=U32)
    dim: Level
    power_w: float = Field(ge=0, le=2000)
    voltage_v: float = Field(ge=0, le=400)
    current_a: float = Field(None, ge=0, le=20)  # type: ignore[assignment]
    pf: float = Field(None, ge=0, le=1)  # type: ignore[assignment]
    energy_wh: float = Field(None, ge=0)  # type: ignore[assignment]
    lux: float = Field(None, ge=0, le=200_000)  # type: ignore[assignment]
    vehicles: int = Field(None, ge=0)  # type: ignore[assignment]
    pedestrians: int = Field(None, ge=0)  # type: ignore[assignment]
    leakage_ma: float = Field(None, ge=0, le=1000)  # type: ignore[assignment]
    temp_c: float = Field(None, ge=-50, le=150)  # type: ignore[assignment]
    rssi_dbm: float = Field(None, ge=-150, le=0)  # type: ignore[assignment]
    # version 1.1
    ports: dict[PortId, PortReading] = Field(None, max_length=64)  # type: ignore[arg-type]


# the lamp's scalar readings (``ports`` is a nested object, stored as a measurement of its own)
TELEMETRY_FIELDS: tuple[str, ...] = tuple(f for f in Telemetry.model_fields if f not in ("ts", "seq", "ports"))
EVENT_TYPES = ("vehicle", "pedestrian", "lamp_fault", "driver_fault", "door_open", "tilt", "reboot",
               "port_trip", "equipment_offline", "equipment_online")


class Event(Message):
    """An event of a type this platform does not know yet (kept, so newer devices still work)."""

    ts: Ts
    seq: int = Field(ge=0, le=U32)
    type: str = Field(min_length=1, max_length=64)


class VehicleEvent(Event):
    type: Literal["vehicle"] = "vehicle"
    speed_kmh: float = Field(ge=0, le=250)
    direction: int

    @field_validator("direction")
    @classmethod
    def _direction(cls, v: int) -> int:
        if v not in (1, -1):
            raise ValueError("direction must be +1 (increasing chainage) or -1")
        return v


class PedestrianEvent(Event):
    type: Literal["pedestrian"] = "pedestrian"


class LampFaultEvent(Event):
    type: Literal["lamp_fault"] = "lamp_fault"
    code: str = Field("", max_length=256)


class DriverFaultEvent(Event):
    type: Literal["driver_fault"] = "driver_fault"
    code: str = Field("", max_length=256)


class DoorOpenEvent(Event):
    type: Literal["door_open"] = "door_open"


class TiltEvent(Event):
    type: Literal["tilt"] = "tilt"
    degrees: float = Field(ge=0, le=180)


class RebootEvent(Event):
    type: Literal["reboot"] = "reboot"
    reason: str = Field("", max_length=256)


class PortTripEvent(Event):
    type: Literal["port_trip"] = "port_trip"
    port: PortId
    current_a: float = Field(ge=0, le=1000)


class EquipmentOfflineEvent(Event):
    type: Literal["equipment_offline"] = "equipment_offline"
    port: PortId


class EquipmentOnlineEvent(Event):
    type: Literal["equipment_online"] = "equipment_online"
    port: PortId


EVENT_MODELS: dict[str, type[Event]] = {
    "vehicle": VehicleEvent,
    "pedestrian": PedestrianEvent,
    "lamp_fault": LampFaultEvent,
    "driver_fault": DriverFaultEvent,
    "door_open": DoorOpenEvent,
    "tilt": TiltEvent,
    "reboot": RebootEvent,
    "port_trip": PortTripEvent,
    "equipment_offline": EquipmentOfflineEvent,
    "equipment_online": EquipmentOnlineEvent,
}
PORT_EVENT_TYPES = frozenset({"port_trip", "equipment_offline", "equipment_online"})


class State(Message):
    ts: Ts
    mode: Literal["auto", "manual", "fallback"]
    dim: Level
    config_version: int = Field(ge=0)
    fw: str = Field(max_length=64)


class Command(Message):
    cmd_id: str = Field(min_length=1, max_length=64)
    type: str
    issued_ts: Ts


class DimCommand(Command):
    type: Literal["dim"] = "dim"
    level: Level
    ramp_ms: int = Field(0, ge=0, le=3_600_000)


class IdentifyCommand(Command):
    type: Literal["identify"] = "identify"
    seconds: int = Field(ge=1, le=600)


class PortCommand(Command):
    type: Literal["port"] = "port"
    port: PortId
    on: bool


class PowerCycleCommand(Command):
    type: Literal["power_cycle"] = "power_cycle"
    port: PortId
    off_s: int = Field(ge=1, le=600)


COMMAND_MODELS: dict[str, type[Command]] = {"dim": DimCommand, "identify": IdentifyCommand, "port": PortCommand,
                                            "power_cycle": PowerCycleCommand}


class Ack(Message):
    cmd_id: str = Field(min_length=1, max_length=64)
    ts: Ts
    ok: bool
    dim: Level
    error: str | None = Field(None, max_length=1024)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()  # ``error: null`` is part of the page's shape


class ScheduleStep(Message):
    at: str
    level: Level

    @field_validator("at")
    @classmethod
    def _at(cls, v: str) -> str:
        if not AT_RE.match(v):
            raise ValueError(AT_HELP)
        return v


class Fallback(Message):
    after_s: int = Field(300, ge=1, le=86_400)
    schedule: list[ScheduleStep] = Field(default_factory=list, max_length=48)


class Config(Message):
    version: int = Field(ge=0)
    report_interval_s: int = Field(10, ge=1, le=86_400)
    fallback: Fallback = Field(default_factory=Fallback)


class CabinetFeeder(Message):
    breaker: Literal["closed", "open"]
    current_a: float = Field(ge=0, le=2000)
    energy_wh: float = Field(ge=0)  # cumulative, never decreasing


class CabinetTelemetry(Message):
    """A distribution cabinet's report (version 1.1), keyed by the feeders it feeds."""

    ts: Ts
    seq: int = Field(ge=0, le=U32)
    voltage_v: float = Field(None, ge=0, le=1000)  # type: ignore[assignment]
    feeders: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,32}$")], CabinetFeeder] = Field(max_length=64)


class Heartbeat(Message):
    ts: Ts


AlertType = Literal[
    "lamp_failure", "driver_fault", "cable_fault", "feeder_outage", "comm_loss", "leakage",
    "voltage_out_of_band", "day_burning", "cycling", "detector_stuck",
    # version 1.1
    "clock_skew", "equipment_fault", "pole_tilt", "door_open", "energy_imbalance",
]
ALERT_TYPES: tuple[str, ...] = get_args(AlertType)


class Alert(Message):
    fault_id: str
    type: AlertType
    severity: Literal["critical", "major", "minor"]
    state: Literal["open", "acknowledged", "resolved"]
    road: str
    pole: str | None = None
    span: list[str] | None = Field(None, min_length=2, max_length=2)
    segment: str | None = None
    side: str | None = None
    chainage_m: float | None = None
    lat: float | None = None
    lon: float | None = None
    feeder: str | None = None
    equipment: str | None = None  # version 1.1: the port of an equipment_fault
    first_seen_ts: Ts
    last_seen_ts: Ts
    summary: str
    evidence: dict[str, Any] = Field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
