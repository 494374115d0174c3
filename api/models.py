"""Pydantic models of the API's requests and responses (the OpenAPI document is built from them)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from streetlight.protocol import AlertType
from streetlight.protocol.messages import AT_RE


def _real_date(v: str) -> str:
    date.fromisoformat(v)  # 2026-02-30 has the shape and is no day: ValueError, a 422
    return v


PoleState = Literal["lit", "dimmed", "off", "fault", "offline"]
CommandStatus = Literal["pending", "acked", "failed", "expired"]
FaultState = Literal["open", "acknowledged", "resolved"]
Severity = Literal["critical", "major", "minor"]
FaultType = AlertType  # the protocol's alert types
Role = Literal["viewer", "operator", "maintenance", "admin"]
# a calendar date as the schema says it (format date) and as the server checks it
DATE_RE = r"^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
DateStr = Annotated[str, Field(pattern=DATE_RE, json_schema_extra={"format": "date"}), AfterValidator(_real_date)]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------ the road
class SegmentOut(BaseModel):
    id: str
    name: str
    from_name: str
    to_name: str
    start_m: float
    end_m: float
    poles: int


class CabinetOut(BaseModel):
    id: str
    name: str
    chainage_m: float
    lat: float
    lon: float


class FeederOut(BaseModel):
    id: str
    cabinet: str
    poles: list[str] = Field(description="from the cabinet outward")


class RoadSummary(BaseModel):
    id: str
    name: str
    local_name: str
    lighting_class: str
    timezone: str
    length_m: float
    poles: int
    emergency: bool = Field(description="the emergency all-on is in force")


class RoadDetail(RoadSummary):
    lat: float
    lon: float
    segments: list[SegmentOut]
    cabinets: list[CabinetOut]
    feeders: list[FeederOut]


class PoleOut(BaseModel):
    id: str
    road: str
    index: int
    chainage_m: float
    chainage: str = Field(examples=["K1+592"])
    side: str
    segment: str
    feeder: str
    feeder_position: int
    cabinet: str
    lat: float
    lon: float
    rated_power_w: float
    equipment: list[str]
    lamp: str = Field("", description="the luminaire, as a crew orders a replacement (empty if not recorded)")
    driver: str = Field("", description="the LED driver, as a crew orders a replacement (empty if not recorded)")
    state: PoleState = Field(description="lit (100 %), dimmed, off, fault (an open fault names it) or offline")
    level: float | None = Field(description="output the pole last reported, %")
    reason: str | None = Field(description="what set the level: schedule, adaptive, override, emergency, manual")
    mode: str | None
    online: bool
    last_seen_ms: int | None
    power_w: float | None
    open_faults: list[str]
    restarts: int = Field(0, description="restarts of the pole whose reboot event was lost (its seq went back "
                                         "with a later ts), counted since the gateway started")

    model_config = {"json_schema_extra": {"examples": [{
        "id": "NH-047", "road": "nanhuan-1", "index": 46, "chainage_m": 1620.0, "chainage": "K1+620",
        "side": "N", "segment": "S2", "feeder": "C1-L2", "feeder_position": 23, "cabinet": "C1",
        "lat": 31.718226, "lon": 119.560, "rated_power_w": 200.0, "equipment": ["lamp", "energy_meter"],
        "state": "dimmed", "level": 50.0, "reason": "schedule", "mode": "auto", "online": True,
        "last_seen_ms": 1764000000000, "power_w": 100.0, "open_faults": [], "restarts": 0}]}}


class PoleList(BaseModel):
    road: str
    count: int
    counts: dict[str, int] = Field(description="poles per state")
    now_ms: int | None = Field(None, description="platform time (message time: simulated time on a simulated road)")
    poles: list[PoleOut]


# ------------------------------------------------------------------ control
class DimRequest(In):
    level: float = Field(ge=0, le=100, description="output level, % of rated", examples=[30])
    ramp_ms: int = Field(0, ge=0, le=3_600_000, description="fade over this many ms")
    expires_in_s: int | None = Field(None, ge=1, le=7 * 86_400,
                                     description="an override: the schedule takes over again after this")
    force: bool = Field(False, description="apply the level even under the segment's floor (what the lighting "
                                           "class of its measured traffic needs); admin only, audited")

    model_config = {"json_schema_extra": {"examples": [{"level": 30, "ramp_ms": 2000, "expires_in_s": 3600}]}}


class PolesDimRequest(DimRequest):
    poles: list[str] = Field(min_length=1, max_length=1000, examples=[["NH-046", "NH-047"]])


class RoadDimRequest(DimRequest):
    confirm: bool = Field(False, description="must be true: dimming a whole road is asked twice")


class EmergencyRequest(In):
    on: bool = Field(description="true: every pole to 100 % and held there; false: release")
    confirm: bool = Field(False, description="must be true")


class IdentifyRequest(In):
    seconds: int = Field(30, ge=1, le=600)


class PortRequest(In):
    on: bool = Field(description="switch the port on (true) or off (false)")


class MaintenanceRequest(In):
    minutes: int = Field(60, ge=1, le=720, description="how long the crew works at the pole, from now (road time)")


class MaintenanceOut(BaseModel):
    road: str
    pole: str
    from_ms: int = Field(description="road time the window opened")
    until_ms: int = Field(description="road time it ends: a service door opened in it raises no door_open")


class PowerCycleRequest(In):
    off_s: int = Field(10, ge=1, le=600, description="seconds the port stays off before it is switched on again")


class DecisionOut(BaseModel):
    requested_level: float = Field(description="the level the operator asked for")
    applied_level: float = Field(description="the level the pole was sent")
    rule: Literal["requested", "floor", "forced", "emergency"] = Field(
        description="what set the applied level: the request itself, the segment's floor, a forced request "
                    "under the floor, or the emergency all-on")
    why: str = Field(examples=["raised to segment S2's floor of 50 % (lighting class M3 for the 910 vehicles/h "
                               "measured)"])
    floor: float | None = Field(description="the segment's floor when the command left, % of rated")
    traffic_class: str | None = Field(description="the lighting class of the segment's measured traffic")
    vehicles_h: float | None = Field(description="the traffic measured on the segment, vehicles per hour")
    how_to_force: str | None = Field(description="set when the level was raised: how to apply it as asked")


class AppliedOut(BaseModel):
    pole: str
    cmd_id: str
    level: float | None = Field(description="the level the pole was sent")
    rule: str | None
    why: str | None


class CommandAccepted(BaseModel):
    command_ids: list[str] = Field(description="one command per pole")
    road: str
    target: str = Field(examples=["segment S3"])
    poles: int
    level: float | None = Field(None, description="the level requested")
    force: bool = False
    expires_ms: int | None = None
    applied: list[AppliedOut] = Field(default_factory=list, description="per pole, the level sent and why")
    raised: int = Field(0, description="poles sent more than the level requested (their segment's floor)")
    how_to_force: str | None = Field(None, description="set when some pole was raised")


class PoleCommandStatus(BaseModel):
    status: CommandStatus
    dim: float | None
    error: str | None
    ack_ms: int | None


class CommandOut(BaseModel):
    cmd_id: str
    type: str
    road: str
    pole: str
    issued_ms: int
    expires_ms: int | None
    level: float | None = Field(description="the level sent to the pole")
    ramp_ms: int | None
    actor: str
    force: bool
    decision: DecisionOut | None = Field(description="for an operator's dim: requested vs applied, and why")
    port: str | None = Field(None, description="a port or power_cycle command: the equipment's port")
    on: bool | None = Field(None, description="a port command: switched on or off")
    off_s: int | None = Field(None, description="a power_cycle: seconds off")
    done: bool = Field(description="no pole is pending any more")
    summary: dict[str, int] = Field(description="poles per status")
    poles: dict[str, PoleCommandStatus]


class CommandBatch(BaseModel):
    count: int
    done: bool = Field(description="no pole of any of these commands is pending")
    summary: dict[str, int] = Field(description="poles per status over all the commands")
    commands: list[CommandOut]


class EmergencyOut(BaseModel):
    road: str
    emergency: bool


# ------------------------------------------------------------------ schedules
class Step(In):
    at: str = Field(max_length=12, pattern=AT_RE.pattern, examples=["22:00"],
                    description="HH:MM, dusk, dawn, dusk+N or dawn-N (minutes)")
    level: float = Field(ge=0, le=100)

    @field_validator("at")
    @classmethod
    def _at(cls, v: str) -> str:
        if not AT_RE.match(v):
            raise ValueError("expected HH:MM, dusk, dawn, dusk+N or dawn-N, e.g. 22:00 or dusk+15")
        return v


class ScheduleIn(In):
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["default", "exception"] = Field(description="exception: only on the listed dates")
    segments: list[str] | None = Field(None, description="null: every segment")
    dates: list[DateStr] = Field(default_factory=list, max_length=366,
                                 description="YYYY-MM-DD dates of a calendar exception")
    priority: int = Field(0, ge=0, le=100)
    steps: list[Step] = Field(min_length=1, max_length=48)

    model_config = {"json_schema_extra": {"examples": [{
        "name": "Spring Festival", "kind": "exception", "segments": ["S2", "S3"], "dates": ["2027-02-06"],
        "priority": 10, "steps": [{"at": "dusk", "level": 100}, {"at": "dawn", "level": 0}]}]}}


class ScheduleOut(BaseModel):
    id: str
    road: str
    name: str
    kind: str
    segments: list[str] | None
    dates: list[str]
    priority: int
    steps: list[dict[str, Any]]


class ActiveSchedules(BaseModel):
    road: str
    now_ms: int
    segments: dict[str, str | None] = Field(description="segment -> the schedule in force there now")


# ------------------------------------------------------------------ faults
class FaultOut(BaseModel):
    fault_id: str
    type: str
    severity: str
    state: FaultState
    road: str
    pole: str | None
    span: list[str] | None
    segment: str | None
    side: str | None
    chainage_m: float | None
    lat: float | None
    lon: float | None
    feeder: str | None
    cabinet: str | None = Field(None, description="the cabinet of a feeder's or a cabinet's own fault")
    equipment: str | None = Field(None, description="an equipment_fault's port: the equipment to fix")
    first_seen_ts: int
    last_seen_ts: int
    summary: str
    location: str = Field(description="where to go, in words", examples=[
        "segment S3, north side, K1+592, between poles NH-046 and NH-047"])
    evidence: dict[str, Any]
    acknowledged_by: str | None
    acknowledged_ms: int | None
    resolved_by: str | None
    resolved_ms: int | None
    notes: list[dict[str, Any]]


class FaultList(BaseModel):
    count: int
    faults: list[FaultOut]


class FaultAction(In):
    note: str = Field("", max_length=1000, examples=["crew on site, replacing driver"])


# ------------------------------------------------------------------ readings and energy
class Readings(BaseModel):
    road: str
    start_ms: int
    end_ms: int
    every_s: int
    count: int
    columns: list[str]
    readings: list[dict[str, Any]] = Field(description="one object per pole and time: time (ms), pole, fields")


class EnergyTotals(BaseModel):
    energy_kwh: float
    baseline_kwh: float = Field(description="the same night at full power")
    savings_kwh: float
    savings_pct: float


class PoleEnergyOut(EnergyTotals):
    pole: str
    segment: str


class SegmentEnergyOut(EnergyTotals):
    segment: str
    minutes_under_floor: float = Field(description="lit minutes some pole spent under the segment's floor")
    violations: int = Field(description="1 when the segment spent any lit time under its floor, else 0")


class EnergyOut(EnergyTotals):
    road: str
    day: str = Field(description="the night's date (local, noon to noon)")
    co2_kg_saved: float
    violations: int = Field(description="segments that spent lit time under their floor; 0 when compliant")
    minutes_under_floor: float
    segments: list[SegmentEnergyOut]
    poles: list[PoleEnergyOut]


# ------------------------------------------------------------------ audit, tokens, webhooks, health
class AuditEntry(BaseModel):
    id: int
    ts_ms: int
    actor: str
    role: str
    token_id: str | None
    action: str
    target: str
    params: dict[str, Any]
    result: str
    detail: str
    count: int = Field(1, description="refusals of one caller are aggregated into one row per minute")


class AuditList(BaseModel):
    count: int
    entries: list[AuditEntry]


class TokenCreate(In):
    role: Role
    name: str = Field(min_length=1, max_length=100, pattern=r"\S")
    expires_in_days: float | None = Field(None, gt=0, le=3650, description="lifetime; none: until revoked")


class TokenOut(BaseModel):
    id: str
    name: str
    role: str
    created_ms: int
    revoked_ms: int | None
    expires_ms: int | None = None


class TokenCreated(TokenOut):
    token: str = Field(description="shown once; only its hash is kept")


class WhoAmI(BaseModel):
    token_id: str
    name: str
    role: str
    permissions: list[str]


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    ready: bool
    checks: dict[str, bool]
