"""The one narrow port through which the API reaches the running platform.

The API never talks to the broker, the controller or InfluxDB directly: it calls a
:class:`PlatformPort`. ``api.memory_platform.MemoryPlatform`` implements it in memory (tests,
benchmarks); ``runtime.live_platform.LivePlatform`` wires the
gateway, the controller and the telemetry store behind the same methods. One API test suite runs
on both (``tests/api``).

Shapes exchanged, all as the frozen dataclasses below:

* twin: :class:`TwinView`, a pole as it last reported. A live ``twin`` event carries it as a
  dict (:func:`twin_event`).
* command: :class:`Command`, one per pole on every platform, with the :class:`Decision` that
  turned the operator's requested level into the level the pole was sent.
* fault: :class:`FaultView`, the fields of a protocol Alert (``docs/protocol.md``) plus its
  cabinet and who acknowledged and resolved it, with the notes. A live ``alert`` event still
  carries the platform's fault record as a dict (webhooks send it as it is): read it with
  :meth:`FaultView.from_dict`.
* energy: :class:`Energy` (the views add totals, savings and violations).
* schedule: :class:`Schedule`, a default schedule or a calendar exception, its dates as
  ``datetime.date`` and its steps as the controller's :class:`controller.schedule.Step`. Where it
  is kept as JSON (the controller's store, the control channel) it is the dict of
  :meth:`Schedule.to_dict` (the controller's schedule entry), read with :meth:`Schedule.from_dict`.
* live event: :class:`LiveEvent` with ``kind`` ``twin``, ``command`` or ``alert``.
* cabinet: :class:`CabinetReport` as last reported; :func:`cabinet_state` adds the registry's side.

Errors: a port method raises :class:`NotFound` for an unknown id and :class:`Conflict` for a
transition that is not allowed (resolving a resolved fault); the API maps them to 404 / 409.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from controller.schedule import Step, night_of
from streetlight.errors import StreetlightError
from streetlight.registry import Road

LIVE_KINDS = ("twin", "command", "alert")
DEFAULT_OVERRIDE_MS = 4 * 3_600_000  # an operator's level without an expiry lasts four hours


def active_schedule_ids(road: Road, schedules: list[Schedule], now_ms: int) -> dict[str, str | None]:
    """Per segment, the schedule in force at ``now_ms``: a calendar exception for tonight (the
    controller's night, noon to noon: :func:`controller.schedule.night_of`) beats a default; among
    those, one naming the segment beats a road-wide one, then the higher priority."""
    tonight = night_of(now_ms, road.timezone)
    out: dict[str, str | None] = {}
    for seg in road.segments:
        fits = [s for s in schedules if not s.segments or seg.id in s.segments]
        exceptions = [s for s in fits if s.kind == "exception" and tonight in s.dates]
        defaults = [s for s in fits if s.kind == "default"]
        best = max(exceptions or defaults, key=lambda s: (bool(s.segments), s.priority), default=None)
        out[seg.id] = best.id if best else None
    return out


class PlatformError(StreetlightError):
    """Base of the errors a platform adapter raises on purpose."""


class NotFound(PlatformError):
    def __init__(self, kind: str, key: str, hint: str = "") -> None:
        self.kind = kind
        self.key = key
        self.hint = hint
        super().__init__(f"no {kind} {key!r}" + (f"; {hint}" if hint else ""))


class Conflict(PlatformError):
    """A state transition that is not allowed from the current state."""


class Unavailable(PlatformError):
    """The broker or the database is away; the request may be retried."""


@dataclass(frozen=True, slots=True)
class RoadTime:
    """What time it is on a road: ``mode`` is ``wall`` (road time is the wall clock), ``devices``
    (a simulated or replayed road on its own clock: the poles' consensus, streetlight.clock) or
    ``unknown`` (not enough of the road heard yet; ``now_ms`` is then the wall clock)."""

    now_ms: int
    mode: str


@dataclass(frozen=True, slots=True)
class PortState:
    """One switched, metered port of a pole (protocol 1.1) as last reported; ``tripped``: its
    protection opened and it has not reported on since."""

    on: bool | None = None
    power_w: float | None = None
    link: str | None = None  # up | down | none
    tripped: bool = False


@dataclass(frozen=True, slots=True)
class TwinView:
    """A pole as it last reported. ``level`` is its output, ``reason`` the rule that set it
    (``schedule``, ``adaptive``, ``override``, ``emergency``, ``manual`` …); ``restarts`` counts the
    reboots whose event was lost (seq back, ts forward) since the gateway started."""

    pole: str
    online: bool
    level: float | None = None
    reason: str | None = None
    mode: str | None = None
    last_seen_ms: int | None = None
    power_w: float | None = None
    voltage_v: float | None = None
    restarts: int = 0
    ports: dict[str, PortState] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TwinView:
        """A twin as a dict (a live event's data) as a view; keys it does not show are left."""
        kw = {k: d[k] for k in _TWIN_FIELDS if k in d}
        kw["ports"] = {k: v if isinstance(v, PortState) else PortState(**v) for k, v in (d.get("ports") or {}).items()}
        return cls(**kw)


_TWIN_FIELDS = tuple(TwinView.__dataclass_fields__)


def twin_event(road: str, twin: TwinView) -> dict[str, Any]:
    """The data of a ``twin`` live event: a pole's state or status changed."""
    return {"road": road, **asdict(twin)}


@dataclass(frozen=True, slots=True)
class Decision:
    """What the platform made of an operator's level for one pole, and why.

    ``applied`` is the level the pole was sent: the request, raised to the segment's floor
    (what the lighting class of its measured traffic needs) unless forced, or 100 under the
    emergency all-on. ``rule`` names what set it: ``requested``, ``floor``, ``forced`` or
    ``emergency``; ``why`` says it in one sentence an operator can read.
    """

    requested: float
    applied: float
    rule: str
    why: str
    floor: float | None = None
    traffic_class: str | None = None
    vehicles_h: float | None = None

    @property
    def raised(self) -> bool:
        return self.applied > self.requested


@dataclass(frozen=True, slots=True)
class PoleStatus:
    status: str  # pending | acked | failed | expired
    dim: float | None = None  # the level the pole reported with its ack
    error: str | None = None
    ack_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """One command to one pole, as the API shows it."""

    cmd_id: str
    type: str  # dim | identify | port | power_cycle
    road: str
    pole: str
    issued_ms: int
    actor: str
    status: PoleStatus
    level: float | None = None  # the level sent (a dim)
    ramp_ms: int | None = None
    expires_ms: int | None = None
    force: bool = False
    decision: Decision | None = None  # for an operator's dim: requested vs applied and why
    port: str | None = None  # a port or power_cycle command (protocol 1.1): the equipment's port
    on: bool | None = None  # a port command: switched on or off
    off_s: int | None = None  # a power_cycle: how long the port stays off


@dataclass(frozen=True, slots=True)
class FaultView:
    """One fault as the API shows it: where, what, since when, and its work-order state."""

    fault_id: str
    type: str
    severity: str
    state: str  # open | acknowledged | resolved
    road: str
    pole: str | None
    span: list[str] | None  # a cable fault: the two poles of the span
    segment: str | None
    side: str | None
    chainage_m: float | None
    lat: float | None
    lon: float | None
    feeder: str | None
    first_seen_ts: int
    last_seen_ts: int
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    cabinet: str | None = None
    equipment: str | None = None  # the port, for an equipment_fault (protocol 1.1)
    acknowledged_by: str | None = None
    acknowledged_ms: int | None = None
    resolved_by: str | None = None
    resolved_ms: int | None = None
    notes: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FaultView:
        """A fault record (a live event's data, a channel answer) as a view; keys it does not show are left."""
        return cls(**{k: d[k] for k in _FAULT_FIELDS if k in d})


_FAULT_FIELDS = tuple(FaultView.__dataclass_fields__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """A road's dimming schedule (``kind`` ``default``) or calendar exception (``exception``: only on
    the nights of its ``dates``), for every segment (``segments`` None or empty) or the ones named;
    among those that fit a segment, ``priority`` decides (:func:`active_schedule_ids`). ``id`` and
    ``road`` are None on a schedule not stored yet: :meth:`PlatformPort.put_schedule` names it."""

    name: str
    kind: str  # default | exception
    steps: tuple[Step, ...]
    segments: tuple[str, ...] | None = None
    dates: tuple[date, ...] = ()
    priority: int = 0
    id: str | None = None
    road: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Schedule:
        """A schedule entry as the controller stores it and the control channel carries it (the
        inverse of :meth:`to_dict`); ``dates``, ``priority``, ``id`` and ``road`` may be missing."""
        segments = d.get("segments")
        return cls(name=str(d["name"]), kind=str(d["kind"]),
                   steps=tuple(Step(str(s["at"]), float(s["level"])) for s in d["steps"]),
                   segments=tuple(segments) if segments is not None else None,
                   dates=tuple(date.fromisoformat(x) for x in d.get("dates") or ()),
                   priority=int(d.get("priority", 0)), id=d.get("id"), road=d.get("road"))

    def to_dict(self) -> dict[str, Any]:
        """The controller's schedule entry (``controller.schedule_entries``): JSON-ready, dates as
        ``YYYY-MM-DD``."""
        return {"id": self.id, "road": self.road, "name": self.name, "kind": self.kind,
                "segments": list(self.segments) if self.segments is not None else None,
                "dates": [x.isoformat() for x in self.dates], "priority": self.priority,
                "steps": [{"at": s.at, "level": s.level} for s in self.steps]}


@dataclass(frozen=True, slots=True)
class FeederReport:
    """One feeder of a cabinet as the cabinet last reported it (protocol 1.1)."""

    breaker: str | None = None  # closed | open
    current_a: float | None = None
    energy_wh: float | None = None  # cumulative


@dataclass(frozen=True, slots=True)
class CabinetReport:
    """A distribution cabinet as last reported; ``online`` None and no feeders: not heard since the
    platform started."""

    online: bool | None = None
    last_seen_ms: int | None = None
    voltage_v: float | None = None
    feeders: dict[str, FeederReport] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PoleEnergy:
    pole: str
    segment: str
    energy_kwh: float
    baseline_kwh: float  # the same night at full power


@dataclass(frozen=True, slots=True)
class SegmentEnergy:
    segment: str
    minutes_under_floor: float  # lit time some pole of it spent under its floor (a forced dim)


@dataclass(frozen=True, slots=True)
class Energy:
    """A night's energy on a road, as the controller accounted it."""

    road: str
    day: str  # the night's date (noon to noon, local)
    poles: list[PoleEnergy]
    segments: list[SegmentEnergy]
    co2_kg_saved: float


def port_of(road: Road, pole: str, port: str) -> None:
    """Raise :class:`NotFound` unless ``pole`` carries a port ``port`` (protocol 1.1 equipment)."""
    ports = [q.id for q in road.pole(pole).ports]
    if port not in ports:
        raise NotFound("port", port, f"{pole} has {', '.join(ports) if ports else 'no ported equipment'}")


def cabinet_state(road: Road, cabinet: str, reported: CabinetReport | None) -> dict[str, Any]:
    """A cabinet as the registry knows it, with each feeder's state as last reported."""
    if cabinet not in road.cabinet_by_id:
        raise NotFound("cabinet", cabinet, f"road {road.id} has {', '.join(road.cabinet_by_id)}")
    c = road.cabinet_by_id[cabinet]
    rep = reported or CabinetReport()
    feeders = []
    for f in road.feeders_of(cabinet):
        fr = rep.feeders.get(f.id) or FeederReport()
        feeders.append({"feeder": f.id, "poles": list(f.poles), "breaker": fr.breaker, "current_a": fr.current_a,
                        "energy_wh": fr.energy_wh})
    return {"road": road.id, "cabinet": c.id, "name": c.name, "chainage_m": c.chainage_m, "lat": c.lat, "lon": c.lon,
            "meter": c.meter, "online": rep.online, "last_seen_ms": rep.last_seen_ms, "voltage_v": rep.voltage_v,
            "feeders": feeders}


def command_event(cmd: Command) -> dict[str, Any]:
    """The data of a ``command`` live event: one pole's status changed."""
    st = cmd.status
    return {"cmd_id": cmd.cmd_id, "type": cmd.type, "road": cmd.road, "pole": cmd.pole, "level": cmd.level,
            "status": st.status, "dim": st.dim, "error": st.error, "ack_ms": st.ack_ms}


FORCE_HINT = "an admin may send \"force\": true to apply the requested level under the floor"


def explain(requested: float, applied: float, *, segment: str, floor: float | None, basis: str,
            force: bool = False, emergency: bool = False, traffic_class: str | None = None,
            vehicles_h: float | None = None) -> Decision:
    """The one wording of a dim's outcome on every platform. ``applied`` is the level the pole was
    sent; ``basis`` says where the segment's floor comes from (its traffic class, or the schedule
    while its traffic count is not trusted)."""
    def out(rule: str, why: str) -> Decision:
        return Decision(requested, applied, rule, why, floor, traffic_class, vehicles_h)

    if emergency:
        return out("emergency", "the road's emergency all-on holds every pole at 100 %")
    if applied > requested:
        return out("floor", f"raised to segment {segment}'s floor of {applied:g} % ({basis}); {FORCE_HINT}")
    if force and floor is not None and requested < floor:
        return out("forced", f"forced under segment {segment}'s floor of {floor:g} % ({basis})")
    return out("requested", "applied as requested")


@dataclass(frozen=True, slots=True)
class LiveEvent:
    kind: str  # one of LIVE_KINDS
    data: dict[str, Any]
    ts_ms: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class QueueSubscription:
    """A bounded queue of live events for one reader; a stalled reader loses events, never the road."""

    def __init__(self, on_close: Callable[[QueueSubscription], None], maxsize: int = 10_000) -> None:
        self._q: queue.Queue[LiveEvent] = queue.Queue(maxsize)
        self._on_close = on_close
        self.dropped = 0

    def put(self, event: LiveEvent) -> None:
        try:
            self._q.put_nowait(event)
        except queue.Full:
            self.dropped += 1

    def get(self, timeout: float) -> LiveEvent | None:
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._on_close(self)


class Subscribers:
    """The live-event readers of a platform: each gets its own bounded queue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: list[QueueSubscription] = []

    def subscribe(self) -> QueueSubscription:
        sub = QueueSubscription(self._remove)
        with self._lock:
            self._subs.append(sub)
        return sub

    def _remove(self, sub: QueueSubscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    @property
    def active(self) -> bool:
        return bool(self._subs)

    def emit(self, event: LiveEvent) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            sub.put(event)


class Subscription(Protocol):
    def get(self, timeout: float) -> LiveEvent | None:
        """The next live event, or ``None`` after ``timeout`` seconds without one."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class PlatformPort(Protocol):
    """What the API needs from the running platform."""

    roads: dict[str, Road]

    # the road, live
    def twin(self, road: str, pole: str) -> TwinView | None: ...
    def twins(self, road: str) -> list[TwinView]: ...

    # control
    def dim(self, road: str, poles: list[str], level: float, ramp_ms: int, expires_ms: int | None,
            actor: str, force: bool = False) -> list[Command]: ...
    def identify(self, road: str, pole: str, seconds: int, actor: str) -> Command: ...
    def switch_port(self, road: str, pole: str, port: str, on: bool, actor: str) -> Command: ...
    def power_cycle(self, road: str, pole: str, port: str, off_s: int, actor: str) -> Command: ...
    def maintenance(self, road: str, pole: str, minutes: int, actor: str) -> tuple[int, int]: ...
    def command(self, cmd_id: str) -> Command | None: ...
    def emergency(self, road: str, on: bool, actor: str) -> None: ...
    def emergency_active(self, road: str) -> bool: ...

    # distribution cabinets (protocol 1.1): see ``cabinet_state``
    def cabinet(self, road: str, cabinet: str) -> CabinetReport: ...

    # schedules and calendar exceptions
    def schedules(self, road: str) -> list[Schedule]: ...
    def put_schedule(self, road: str, schedule: Schedule, actor: str) -> Schedule:
        """Store ``schedule`` on ``road`` (a new one when its ``id`` is None, else replacing that
        id) and return it as stored; :class:`NotFound` for an unknown segment, :class:`Conflict`
        when the road would be left without a road-wide default."""
        ...
    def delete_schedule(self, road: str, schedule_id: str, actor: str) -> None: ...
    def active_schedules(self, road: str, now_ms: int) -> dict[str, str | None]: ...

    # faults
    def faults(self, road: str | None = None, state: str | None = None, type: str | None = None,
               segment: str | None = None, severity: str | None = None) -> list[FaultView]: ...
    def fault(self, fault_id: str) -> FaultView | None: ...
    def ack_fault(self, fault_id: str, actor: str, note: str) -> FaultView: ...
    def resolve_fault(self, fault_id: str, actor: str, note: str) -> FaultView: ...

    # telemetry and energy
    def telemetry(self, road: str, poles: list[str], start_ms: int, end_ms: int,
                  every_s: int) -> pd.DataFrame: ...
    def latest(self, road: str) -> pd.DataFrame: ...
    def energy(self, road: str, day: date) -> Energy: ...

    # live stream, health, own metrics
    def subscribe(self) -> Subscription: ...
    def ready(self) -> dict[str, bool]: ...
    def stats(self) -> dict[str, float]: ...
    def now_ms(self) -> int: ...
    def road_time(self, road: str) -> RoadTime: ...
