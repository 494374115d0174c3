"""Scenarios as YAML files: a road, a start, a duration, faults, and what the platform must report.

``load_scenario`` takes a shipped name (``cable-cut``) or a path. Every problem is reported as a
``ScenarioError`` naming the file, the line and what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streetlight.errors import StreetlightError
from streetlight.protocol import ALERT_TYPES
from streetlight.registry import Road, load_road

from .errors import ScenarioError
from .faults import FAULT_TYPES, Fault
from .traffic import Surge

_DUR = re.compile(r"^(?:(\d+)h)?\s*(?:(\d+)m(?:in)?)?\s*(?:(\d+)s)?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SurgeEntry(_Strict):
    at: str
    duration: str | int
    factor: float = Field(gt=0, le=50)
    segment: str | None = None
    pedestrian_factor: float | None = Field(None, gt=0, le=50)


class TrafficEntry(_Strict):
    scale: float = Field(1.0, gt=0, le=20)
    surges: list[SurgeEntry] = Field(default_factory=list)


class FaultEntry(_Strict):
    type: str
    at: str
    until: str | None = None
    pole: str | None = None
    span: list[str] | None = None
    feeder: str | None = None
    cabinet: str | None = None  # cabinet_silent: the cabinet whose reports stop
    watts: float | None = Field(None, gt=0, le=50_000)  # illegal_tap: the load hung on the feeder
    drift: float | None = Field(None, gt=0, le=5)
    ma: float | None = Field(None, ge=0, le=1000)
    volts: float | None = Field(None, ge=-100, le=200)
    ramp: str | int | None = None  # a drifting driver or rising leakage reaches its value over this
    offset: str | None = None  # clock_offset: the pole's clock ahead (+1h) or behind (-10m) of true time
    reboot_event: bool | None = None  # false: the restart (a repaired cut, a reboot) sends no reboot event
    port: str | None = None  # port_trip, equipment_hung: the equipment's port on the pole (cam-1)
    degrees: float | None = Field(None, ge=0, le=90)  # pole_struck: how far the pole leans


class ExpectedEntry(_Strict):
    type: str
    pole: str | None = None
    span: list[str] | None = None
    feeder: str | None = None  # a feeder's fault (feeder_outage, a feeder's voltage): located at its cabinet
    cabinet: str | None = None  # a cabinet's own fault (comm_loss of its controller): no feeder, no pole
    within_reports: int = Field(6, ge=1, le=100_000)
    after: str | None = None


class ScenarioFile(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = ""
    road: str
    start: str
    duration: str | int
    speed: float | Literal["max"] = 60
    seed: int = 0
    report_interval_s: int = Field(10, ge=1, le=3600)
    # how a dead pole's connection ends: silent (as in the field) or a clean close (will at once)
    disconnect: Literal["silent", "clean"] = "silent"
    link: Literal["4g", "nbiot", "plc"] | None = None  # None: poles act on commands at once
    traffic: TrafficEntry = Field(default_factory=TrafficEntry)
    faults: list[FaultEntry] = Field(default_factory=list)
    expected: list[ExpectedEntry] = Field(default_factory=list)


@dataclass(frozen=True)
class Expected:
    type: str
    pole: str | None
    span: tuple[str, str] | None
    within_reports: int
    after_ms: int
    feeder: str | None = None
    cabinet: str | None = None


@dataclass
class Scenario:
    name: str
    road: Road
    start_ms: int
    duration_s: int
    speed: float | None  # None: as fast as possible
    seed: int
    report_interval_s: int
    faults: list[Fault] = field(default_factory=list)
    expected: list[Expected] = field(default_factory=list)
    surges: list[Surge] = field(default_factory=list)
    traffic_scale: float = 1.0
    description: str = ""
    source: str = ""
    disconnect: str = "silent"  # "silent" | "clean", see simulators.transport
    link: str | None = None  # a name in simulators.device.LINKS; None = no command delay

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_s * 1000


SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


def shipped_scenarios() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in SCENARIO_DIR.glob("*.yaml"))


def load_scenario(ref: str) -> Scenario:
    """A shipped scenario by name, or a scenario file by path."""
    if ref in shipped_scenarios():
        return _load(SCENARIO_DIR / f"{ref}.yaml", f"{ref} ({SCENARIO_DIR / (ref + '.yaml')})")
    p = Path(ref)
    if not p.exists():
        raise ScenarioError(ref, None, f"no such scenario file; shipped scenarios: {', '.join(shipped_scenarios())}")
    return _load(p, str(p))


class _Ctx:
    """Line numbers of the YAML nodes, for messages that point at the mistake."""

    def __init__(self, source: str, root: yaml.Node | None) -> None:
        self.source, self.root = source, root

    def line(self, path: tuple[Any, ...]) -> int | None:
        node = self.root
        if node is None:
            return None
        for key in path:
            if isinstance(node, yaml.MappingNode):
                nxt = next((v for k, v in node.value if k.value == key), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                nxt = node.value[key]
            else:
                nxt = None
            if nxt is None:
                break
            node = nxt
        return node.start_mark.line + 1

    def error(self, path: tuple[Any, ...], problem: str) -> ScenarioError:
        where = ".".join(str(p) for p in path)
        return ScenarioError(self.source, self.line(path), f"{where}: {problem}" if where else problem)


def _load(path: Path, source: str) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ScenarioError(source, None, f"cannot read: {err.strerror}") from err
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise ScenarioError(source, mark.line + 1 if mark else None, f"not valid YAML: {err}") from None
    ctx = _Ctx(source, root)
    if not isinstance(data, dict):
        raise ctx.error((), "a scenario is a mapping with name, road, start, duration, ...")
    try:
        sf = ScenarioFile.model_validate(data)
    except ValidationError as err:
        e = err.errors()[0]
        loc = tuple(x for x in e["loc"] if not (isinstance(x, str) and x in ("str", "int", "float", "literal['max']")))
        raise ctx.error(loc, e["msg"]) from None
    return _build(sf, ctx)


def _duration_s(value: str | int, ctx: _Ctx, path: tuple[Any, ...]) -> int:
    if isinstance(value, int):
        secs = value
    else:
        m = _DUR.match(value.strip())
        if not m or not any(m.groups()):
            raise ctx.error(path, f"bad duration {value!r}: write 3h, 90m, 2h30m or seconds")
        secs = int(m.group(1) or 0) * 3600 + int(m.group(2) or 0) * 60 + int(m.group(3) or 0)
    if secs <= 0:
        raise ctx.error(path, "duration must be positive")
    return secs


def _time_ms(value: str, start: datetime, ctx: _Ctx, path: tuple[Any, ...]) -> int:
    """``+40m`` after the start, ``HH:MM`` (the next such local time), or ``YYYY-MM-DD HH:MM``."""
    v = value.strip()
    try:
        if v.startswith("+"):
            m = _DUR.match(v[1:].strip())
            if not m or not any(m.groups()):
                raise ValueError
            return int(start.timestamp() * 1000) + _duration_s(v[1:], ctx, path) * 1000
        if re.fullmatch(r"\d{1,2}:\d\d", v):
            h, m = map(int, v.split(":"))
            if h > 23 or m > 59:
                raise ValueError
            t = start.replace(hour=h, minute=m, second=0, microsecond=0)
            if t < start:
                t += timedelta(days=1)
            return int(t.timestamp() * 1000)
        t = datetime.fromisoformat(v)
        if t.tzinfo is None:
            t = t.replace(tzinfo=start.tzinfo)
        return int(t.timestamp() * 1000)
    except ValueError:
        raise ctx.error(path, f"bad time {value!r}: write +40m, HH:MM or YYYY-MM-DD HH:MM") from None


def _build(sf: ScenarioFile, ctx: _Ctx) -> Scenario:
    try:
        road = load_road(sf.road)
    except StreetlightError as err:
        raise ctx.error(("road",), str(err)) from None
    tz = ZoneInfo(road.timezone)
    try:
        start = datetime.fromisoformat(sf.start)
    except ValueError:
        raise ctx.error(("start",), f"bad start {sf.start!r}: write YYYY-MM-DD HH:MM (local time of the road)") from None
    start = start.replace(tzinfo=tz) if start.tzinfo is None else start
    start_ms = int(start.timestamp() * 1000)
    duration_s = _duration_s(sf.duration, ctx, ("duration",))
    end_ms = start_ms + duration_s * 1000

    def pole_index(pid: str, path: tuple[Any, ...]) -> int:
        if not road.has_pole(pid):
            raise ctx.error(path, f"unknown pole {pid!r} on road {road.id} ({road.poles[0].id} … {road.poles[-1].id})")
        return road.pole(pid).index

    def when(value: str, path: tuple[Any, ...]) -> int:
        t = _time_ms(value, start, ctx, path)
        if not start_ms <= t <= end_ms:
            raise ctx.error(path, f"time {value!r} is outside the scenario ({sf.start} + {duration_s} s)")
        return t

    surges = []
    seg_ids = [s.id for s in road.segments]
    for k, s in enumerate(sf.traffic.surges):
        p = ("traffic", "surges", k)
        if s.segment is not None and s.segment not in seg_ids:
            raise ctx.error(p + ("segment",), f"unknown segment {s.segment!r}; known: {', '.join(seg_ids)}")
        a = when(s.at, p + ("at",))
        surges.append(Surge(a, a + _duration_s(s.duration, ctx, p + ("duration",)) * 1000, s.factor,
                            None if s.segment is None else seg_ids.index(s.segment), s.pedestrian_factor))

    faults: list[Fault] = []
    for k, f in enumerate(sf.faults):
        p = ("faults", k)
        if f.type not in FAULT_TYPES:
            raise ctx.error(p + ("type",), f"unknown fault {f.type!r}; known: {', '.join(FAULT_TYPES)}")
        target = FAULT_TYPES[f.type][0]
        at = when(f.at, p + ("at",))
        until = when(f.until, p + ("until",)) if f.until else None
        if until is not None and until <= at:
            raise ctx.error(p + ("until",), "a fault must clear after it starts")
        params = {k2: v for k2, v in (("drift", f.drift), ("ma", f.ma), ("volts", f.volts), ("degrees", f.degrees),
                                      ("watts", f.watts)) if v is not None}
        if f.watts is not None and f.type != "illegal_tap":
            raise ctx.error(p + ("watts",), "only an illegal_tap has watts")
        if f.type in ("port_trip", "equipment_hung"):
            ports = [q.id for q in road.pole(f.pole).ports] if f.pole and road.has_pole(f.pole) else []
            if f.port not in ports:
                raise ctx.error(p + ("port",), f"a {f.type} needs 'port', one of the pole's ports: {', '.join(ports)}")
        elif f.port is not None:
            raise ctx.error(p + ("port",), "only port_trip and equipment_hung name a port")
        if f.type == "clock_offset":
            if not f.offset or f.offset.strip()[0] not in "+-":
                raise ctx.error(p + ("offset",), "a clock_offset needs 'offset', signed: +8760h (a year ahead), -10m")
            sign = -1 if f.offset.strip()[0] == "-" else 1
            params["ms"] = float(sign * _duration_s(f.offset.strip()[1:], ctx, p + ("offset",)) * 1000)
        elif f.offset is not None:
            raise ctx.error(p + ("offset",), "only a clock_offset has an offset")
        if f.ramp is not None:
            if f.type not in ("driver_degradation", "leakage"):
                raise ctx.error(p + ("ramp",), "only driver_degradation and leakage ramp up")
            params["ramp_s"] = float(_duration_s(f.ramp, ctx, p + ("ramp",)))
        announce = True
        if f.reboot_event is not None:
            if f.type not in ("cable_cut", "reboot"):
                raise ctx.error(p + ("reboot_event",), "only cable_cut (on repair) and reboot restart devices")
            announce = f.reboot_event
        if target == "pole":
            if not f.pole:
                raise ctx.error(p, f"a {f.type} fault needs 'pole'")
            faults.append(Fault(f.type, at, (pole_index(f.pole, p + ("pole",)),), None, until, params, f.pole,
                                reboot_event=announce, port=f.port or ""))
        elif target == "cabinet":
            if f.cabinet not in road.cabinet_by_id:
                raise ctx.error(p + ("cabinet",), f"a {f.type} needs 'cabinet', one of {', '.join(road.cabinet_by_id)}")
            faults.append(Fault(f.type, at, (), None, until, params, f.cabinet, cabinet=f.cabinet))
        elif target == "span":
            a, b = _span(f.span, road, ctx, p + ("span",), pole_index)
            fd = road.feeder_by_id[road.pole(b).feeder]
            down = tuple(road.pole(pid).index for pid in fd.poles[road.pole(b).feeder_position - 1:])
            faults.append(Fault(f.type, at, down, None, until, params, f"{a}/{b}", announce))
        else:
            if f.feeder not in road.feeder_by_id:
                raise ctx.error(p + ("feeder",), f"unknown feeder {f.feeder!r}; known: {', '.join(road.feeder_by_id)}")
            fi = [fd.id for fd in road.feeders].index(f.feeder)
            idx = tuple(road.pole(pid).index for pid in road.feeder_by_id[f.feeder].poles)
            faults.append(Fault(f.type, at, idx, fi, until, params, f.feeder))

    expected = []
    for k, e in enumerate(sf.expected):
        p = ("expected", k)
        if e.type not in ALERT_TYPES:
            raise ctx.error(p + ("type",), f"unknown alert type {e.type!r}; known: {', '.join(ALERT_TYPES)}")
        if e.pole is not None:
            pole_index(e.pole, p + ("pole",))
        span = _span(e.span, road, ctx, p + ("span",), pole_index) if e.span is not None else None
        if e.feeder is not None and e.feeder not in road.feeder_by_id:
            raise ctx.error(p + ("feeder",), f"unknown feeder {e.feeder!r}; known: {', '.join(road.feeder_by_id)}")
        if e.cabinet is not None and e.cabinet not in road.cabinet_by_id:
            raise ctx.error(p + ("cabinet",), f"unknown cabinet {e.cabinet!r}; known: {', '.join(road.cabinet_by_id)}")
        if e.after is not None:
            after = when(e.after, p + ("after",))
        else:
            label = e.pole or (f"{span[0]}/{span[1]}" if span else None) or e.feeder or e.cabinet
            match = [f for f in faults if FAULT_TYPES[f.type][1] == e.type and (label is None or f.label == label)]
            if not match:
                raise ctx.error(p, f"no fault in this scenario produces {e.type} at {label or 'the road'}; add 'after:'")
            after = match[0].at_ms
        expected.append(Expected(e.type, e.pole, span, e.within_reports, after, e.feeder, e.cabinet))

    return Scenario(
        name=sf.name, road=road, start_ms=start_ms, duration_s=duration_s,
        speed=None if sf.speed == "max" else float(sf.speed), seed=sf.seed, report_interval_s=sf.report_interval_s,
        faults=faults, expected=expected, surges=surges, traffic_scale=sf.traffic.scale,
        description=sf.description, source=ctx.source, disconnect=sf.disconnect, link=sf.link,
    )


def _span(span: list[str] | None, road: Road, ctx: _Ctx, path: tuple[Any, ...], pole_index: Any) -> tuple[str, str]:
    """Two neighbouring poles on one feeder, the upstream (still powered) one first."""
    if not span or len(span) != 2:
        raise ctx.error(path, "a span is two poles: [last powered, first dead]")
    a, b = span
    pole_index(a, path)
    pole_index(b, path)
    pa, pb = road.pole(a), road.pole(b)
    if pa.feeder != pb.feeder or pb.feeder_position != pa.feeder_position + 1:
        raise ctx.error(path, f"{a} and {b} are not neighbours on one feeder (cabinet side first): "
                              f"{a} is {pa.feeder}#{pa.feeder_position}, {b} is {pb.feeder}#{pb.feeder_position}")
    return a, b
