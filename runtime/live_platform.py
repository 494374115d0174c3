"""The live platform behind the API's port: gateway, controller and InfluxDB in one process.

:class:`LivePlatform` implements :class:`api.platform.PlatformPort` over a running
:class:`gateway.service.GatewayService` and a :class:`~runtime.control.ControlService`.

With ``lease_s`` it is one of several core processes for the same roads (``runtime.leases``):
its gateway stores its share of a shared subscription, while its controller hears every message
of its roads on a read of their topics of its own (:class:`runtime.read_model.ReadModel`, a
session that ends with its connection), and decides only for the roads whose lease it holds.
With ``ingest=False`` as well it is a controller process: its gateway stores nothing and only
sends (commands, config, alerts, the heartbeat of the roads it holds), on the road time and twins
of that read; the gateways of the deployment store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from api.platform import (
    DEFAULT_OVERRIDE_MS,
    CabinetReport,
    Command,
    Conflict,
    Decision,
    Energy,
    FaultView,
    FeederReport,
    LiveEvent,
    NotFound,
    PoleEnergy,
    PoleStatus,
    QueueSubscription,
    RoadTime,
    Schedule,
    SegmentEnergy,
    Subscribers,
    TwinView,
    Unavailable,
    active_schedule_ids,
    command_event,
    explain,
    port_of,
    twin_event,
)
from controller.errors import FaultStateError, UnknownFaultError
from controller.faults import Fault, lifecycle
from gateway.commands import CommandRecord
from gateway.inbound import Inbound
from gateway.service import GatewayService
from gateway.twins import TwinStore
from runtime.leases import LeaseStore, LeaseTerms, RoadLeases
from runtime.read_model import ReadModel
from runtime.state import ControllerStore
from streetlight.protocol import Ack
from streetlight.registry import Road
from streetlight.settings import Settings

from .control import ControlService, NotHolder, RoadTimeUnknown
from .schedules import entries_of, import_schedule_file, load_schedules
from .views import (
    ReadingsUnavailable,
    fault_list,
    latest_frame,
    readings_frame,
    stored_fault_record,
    stored_fault_view,
    twin_view,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Issued:
    """What the API knows of a command it issued that the gateway's record does not carry."""

    actor: str
    expires_ms: int | None
    force: bool
    decision: Decision | None


class LivePlatform:
    def __init__(self, settings: Settings, roads: list[Road], *, client_id: str = "streetlight-gateway",
                 shared_group: str | None = None, report_interval_s: int = 10, lease_s: float | None = None,
                 ingest: bool = True, **gateway_kw: Any) -> None:
        if not ingest and lease_s is None:
            raise ValueError("a controller without a gateway of its own runs with road leases (give lease_s)")
        self.settings = settings
        self.roads: dict[str, Road] = {r.id: r for r in roads}
        data = Path(settings.data_dir)
        data.mkdir(parents=True, exist_ok=True)
        self.store = ControllerStore(settings.state_location("controller.sqlite3"))
        import_schedule_file(self.store, roads, data / "schedules.json")  # kept there by older releases
        self.observations: ReadModel | None = None
        self.leases: RoadLeases | None = None
        if lease_s is not None:
            self.observations = ReadModel(settings, roads, client_id=f"{client_id}-controller",
                                          report_interval_s=report_interval_s)
            self.leases = RoadLeases(LeaseStore(self.store.db), [r.id for r in roads], client_id,
                                     LeaseTerms(int(lease_s * 1000)))
            # the heartbeat says "the platform decides for this road": its holder beats, no one else
            gateway_kw.setdefault("heartbeat", self.leases.holds)
        if not ingest:
            assert self.observations is not None
            gateway_kw.update(ingest=False, clock=self.observations.clock, twins=self.observations.twins)
            self.observations.online_listeners.append(self._on_back_online)
        self.gateway = GatewayService(settings, roads, client_id=client_id, shared_group=shared_group, **gateway_kw)
        # every message, where the gateway of a core process on a shared subscription has its share
        self._twins: TwinStore = self.observations.twins if self.observations is not None else self.gateway.twins
        self.control = ControlService(self.gateway, roads, self.store, report_interval_s=report_interval_s,
                                      observations=self.observations, leases=self.leases)
        self.live = Subscribers()
        self._commands: dict[str, _Issued] = {}
        if self.observations is not None:
            self.observations.add_listener(self._on_observed)
        else:
            self.gateway.add_listener(self._on_inbound)
        self.gateway.commands.add_listener(self._on_command_done)
        self.control.fault_listeners.append(self._on_fault)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.gateway.start()
        if self.observations is not None:
            self.observations.start()
        if self.leases is not None:
            self.leases.start()
        self.control.start()

    def stop(self) -> None:
        self.control.stop()
        if self.leases is not None:
            self.leases.stop(release=True)  # another process takes the roads at once, not at expiry
        if self.observations is not None:
            self.observations.stop()
        self.gateway.stop()
        self.control.save_energy()  # after the gateway's last batch: what was acknowledged is metered
        self.store.close()

    def __enter__(self) -> LivePlatform:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- live events ---------------------------------------------------------------------------
    def subscribe(self) -> QueueSubscription:
        return self.live.subscribe()

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        self.live.emit(LiveEvent(kind, data, self.now_ms()))

    def _on_inbound(self, inb: Inbound) -> None:
        # state and status changes are what a map shows; per-report telemetry would flood browsers
        if inb.kind in ("state", "status") and self.live.active:
            twin = self.twin(inb.road, inb.pole)
            if twin is not None:
                self._emit("twin", twin_event(inb.road, twin))

    def _on_observed(self, inb: Inbound) -> None:
        # on a shared subscription a pole's Ack reaches one gateway of several: the one whose
        # command it answers may not be it, so the controller's own read settles it too (once)
        if inb.kind == "ack" and isinstance(inb.message, Ack):
            self.gateway.commands.on_ack(inb.road, inb.pole, inb.message)
        self._on_inbound(inb)

    def _on_back_online(self, road: str, pole: str) -> None:
        self.gateway.commands.on_online(road, pole)  # what was held for it goes out now

    def _on_command_done(self, rec: CommandRecord) -> None:
        if self.live.active:
            self._emit("command", command_event(self._command_view(rec)))

    def _on_fault(self, f: Fault) -> None:
        self._emit("alert", self._fault_record(f))

    # -- the road, live ------------------------------------------------------------------------
    def _road(self, road: str) -> Road:
        r = self.roads.get(road)
        if r is None:
            raise NotFound("road", road, f"roads served: {', '.join(self.roads)}")
        return r

    def twin(self, road: str, pole: str) -> TwinView | None:
        r = self._road(road)
        if not r.has_pole(pole):
            return None
        _, reason = self.control.level_of(road, pole)
        return twin_view(pole, self._twins.get(road, pole), reason,
                         self.gateway.metrics.restarts.get((road, pole), 0))

    def twins(self, road: str) -> list[TwinView]:
        r = self._road(road)
        return [tw for p in r.poles if (tw := self.twin(road, p.id)) is not None]

    # -- control -------------------------------------------------------------------------------
    def dim(self, road: str, poles: list[str], level: float, ramp_ms: int, expires_ms: int | None,
            actor: str, force: bool = False) -> list[Command]:
        r = self._road(road)
        unknown = [p for p in poles if not r.has_pole(p)]
        if unknown:
            raise NotFound("pole", unknown[0], f"poles of {road}: {r.poles[0].id} … {r.poles[-1].id}")
        if not self.gateway.connected:
            raise Unavailable("the broker is not connected; try again in a moment")
        now = self.now_ms()
        expires = expires_ms if expires_ms is not None else now + DEFAULT_OVERRIDE_MS
        try:
            records = self.control.override(road, poles, level, expires, actor, ramp_ms=ramp_ms, force=force)
        except (RoadTimeUnknown, NotHolder) as err:
            raise Unavailable(str(err)) from None
        emergency = self.control.emergency_active(road)
        out = []
        for rec in records:
            decision = self._decision(r, rec.pole, level, float(rec.params.get("level", level)), force, emergency)
            self._commands[rec.cmd_id] = _Issued(actor, expires, force, decision)
            out.append(self._command_view(rec))
        return out

    def _decision(self, r: Road, pole: str, requested: float, applied: float, force: bool,
                  emergency: bool) -> Decision:
        segment = r.pole(pole).segment
        floor, seg = self.control.floor_of(r.id, pole)
        if seg is not None and seg.trusted:
            cls = self.control.lighting_class_name(r.id, seg.raw_class)
            return explain(requested, applied, segment=segment, floor=floor, force=force, emergency=emergency,
                           basis=f"lighting class {cls} for the {seg.vehicles_h:.0f} vehicles/h measured",
                           traffic_class=cls, vehicles_h=seg.vehicles_h)
        # while its traffic count is not trusted the controller holds the schedule's level as the floor
        why = f"its traffic count is not trusted: {seg.why}" if seg is not None else "no traffic judged yet"
        return explain(requested, applied, segment=segment, floor=floor, force=force, emergency=emergency,
                       basis=f"the schedule's level, as {why}")

    def identify(self, road: str, pole: str, seconds: int, actor: str) -> Command:
        r = self._road(road)
        if not r.has_pole(pole):
            raise NotFound("pole", pole)
        if not self.control.holds(road):
            raise Unavailable(str(NotHolder(road, None)))
        rec = self.gateway.commands.identify(road, pole, seconds)
        self._commands[rec.cmd_id] = _Issued(actor, None, False, None)
        return self._command_view(rec)

    def switch_port(self, road: str, pole: str, port: str, on: bool, actor: str) -> Command:
        port_of(self._pole_road(road, pole), pole, port)
        rec = self.gateway.commands.port(road, pole, port, on)
        self._commands[rec.cmd_id] = _Issued(actor, None, False, None)
        return self._command_view(rec)

    def power_cycle(self, road: str, pole: str, port: str, off_s: int, actor: str) -> Command:
        port_of(self._pole_road(road, pole), pole, port)
        rec = self.gateway.commands.power_cycle(road, pole, port, off_s)
        self._commands[rec.cmd_id] = _Issued(actor, None, False, None)
        return self._command_view(rec)

    def maintenance(self, road: str, pole: str, minutes: int, actor: str) -> tuple[int, int]:
        self._pole_road(road, pole)
        try:
            return self.control.maintenance(road, pole, minutes)
        except RoadTimeUnknown as err:
            raise Unavailable(str(err)) from None

    def _pole_road(self, road: str, pole: str) -> Road:
        r = self._road(road)
        if not r.has_pole(pole):
            raise NotFound("pole", pole)
        return r

    def cabinet(self, road: str, cabinet: str) -> CabinetReport:
        self._road(road)
        # a controller on road leases hears the cabinets on its own read, where its gateway has a share
        cabinets = self.observations.cabinets if self.observations is not None else self.gateway.cabinets
        t = cabinets.get(road, cabinet)
        if t is None:
            raise NotFound("cabinet", cabinet)
        c = t.last
        feeders = {k: FeederReport(f.breaker, f.current_a, f.energy_wh) for k, f in c.feeders.items()} if c else {}
        return CabinetReport(t.online, t.last_seen_ms, c.voltage_v if c else None, feeders)

    def _command_view(self, rec: CommandRecord) -> Command:
        issued = self._commands.get(rec.cmd_id)
        level = rec.params.get("level")
        return Command(
            cmd_id=rec.cmd_id, type=rec.type, road=rec.road, pole=rec.pole, issued_ms=rec.created_ms,
            actor=issued.actor if issued else rec.source,
            status=PoleStatus(rec.status, rec.result_dim, rec.error, rec.acked_ms),
            level=None if level is None else float(level), ramp_ms=rec.params.get("ramp_ms"),
            expires_ms=issued.expires_ms if issued else None, force=bool(issued and issued.force),
            decision=issued.decision if issued else None, port=rec.params.get("port"), on=rec.params.get("on"),
            off_s=rec.params.get("off_s"))

    def command(self, cmd_id: str) -> Command | None:
        rec = self.gateway.commands.get(cmd_id)
        return self._command_view(rec) if rec else None

    def emergency(self, road: str, on: bool, actor: str) -> None:
        self._road(road)
        try:
            self.control.emergency(road, on, actor)
        except (RoadTimeUnknown, NotHolder) as err:
            raise Unavailable(str(err)) from None

    def emergency_active(self, road: str) -> bool:
        self._road(road)
        return self.control.emergency_active(road)

    # -- schedules -----------------------------------------------------------------------------
    # Stored once, in the controller's SQLite store (runtime/state.py): the entries are each
    # version's body and the controller's book is compiled from them.
    def schedules(self, road: str) -> list[Schedule]:
        return load_schedules(self.store, self._road(road))

    def _apply_schedules(self, road: str, schedules: list[Schedule], actor: str) -> None:
        r = self._road(road)
        try:
            self.control.set_schedules(road, entries_of(schedules), actor)
        except KeyError as err:
            raise NotFound("segment", str(err.args[0]), f"segments of {road}: {', '.join(r.segment_by_id)}") from None
        except ValueError as err:
            raise Conflict(str(err)) from None
        except NotHolder as err:
            raise Unavailable(str(err)) from None

    def put_schedule(self, road: str, schedule: Schedule, actor: str) -> Schedule:
        schedules = self.schedules(road)
        sid = schedule.id or f"sch-{len(schedules) + 1:03d}-{self.now_ms() % 100000}"
        stored = replace(schedule, id=sid, road=road)
        self._apply_schedules(road, [s for s in schedules if s.id != sid] + [stored], actor)
        return stored

    def delete_schedule(self, road: str, schedule_id: str, actor: str) -> None:
        schedules = self.schedules(road)
        if not any(s.id == schedule_id for s in schedules):
            raise NotFound("schedule", schedule_id, "list schedules with GET /api/v1/schedules")
        self._apply_schedules(road, [s for s in schedules if s.id != schedule_id], actor)

    def active_schedules(self, road: str, now_ms: int) -> dict[str, str | None]:
        return active_schedule_ids(self._road(road), self.schedules(road), now_ms)

    # -- faults --------------------------------------------------------------------------------
    def _fault_record(self, f: Fault) -> dict[str, Any]:
        return stored_fault_record(self.store, f)

    def faults(self, road: str | None = None, state: str | None = None, type: str | None = None,
               segment: str | None = None, severity: str | None = None) -> list[FaultView]:
        roads = [road] if road else list(self.roads)
        for rid in roads:
            self._road(rid)
        return fault_list(self.store, roads, state, type, segment, severity)

    def fault(self, fault_id: str) -> FaultView | None:
        try:
            return stored_fault_view(self.store, self.store.fault(fault_id))
        except UnknownFaultError:
            return None

    def _transition(self, fault_id: str, to: str, actor: str, note: str) -> FaultView:
        move = self.control.acknowledge if to == lifecycle.ACKNOWLEDGED else self.control.resolve
        try:
            f = move(fault_id, actor, note)
        except UnknownFaultError:
            raise NotFound("fault", fault_id, "list faults with GET /api/v1/faults") from None
        except FaultStateError as err:
            raise Conflict(str(err)) from None
        except NotHolder as err:
            raise Unavailable(str(err)) from None
        record = self._fault_record(f)
        self._emit("alert", record)
        return FaultView.from_dict(record)

    def ack_fault(self, fault_id: str, actor: str, note: str) -> FaultView:
        return self._transition(fault_id, lifecycle.ACKNOWLEDGED, actor, note)

    def resolve_fault(self, fault_id: str, actor: str, note: str) -> FaultView:
        return self._transition(fault_id, lifecycle.RESOLVED, actor, note)

    # -- telemetry and energy ------------------------------------------------------------------
    def telemetry(self, road: str, poles: list[str], start_ms: int, end_ms: int, every_s: int) -> pd.DataFrame:
        r = self._road(road)
        try:
            return readings_frame(self.gateway.store, r, poles, start_ms, end_ms, every_s)
        except KeyError as err:
            raise NotFound("pole", str(err.args[0])) from None
        except ReadingsUnavailable as err:
            raise Unavailable(str(err)) from None

    def latest(self, road: str) -> pd.DataFrame:
        self._road(road)
        return latest_frame(self._twins.all(road))

    def energy(self, road: str, day: date) -> Energy:
        r = self._road(road)
        rep = self.control.energy_report(road, day.isoformat())
        rated_kw = sum(p.rated_power_w for p in r.poles) / 1000.0
        night_hours = rep.baseline_kwh / rated_kw if rep.baseline_kwh and rated_kw else 0.0
        poles = [PoleEnergy(p.id, p.segment, rep.pole_kwh.get(p.id, 0.0), p.rated_power_w / 1000.0 * night_hours)
                 for p in r.poles]
        segments = [SegmentEnergy(s.id, rep.minutes_under_floor.get(s.id, 0.0)) for s in r.segments]
        return Energy(road, day.isoformat(), poles, segments, rep.co2_kg)

    # -- health and own metrics ----------------------------------------------------------------
    def ready(self) -> dict[str, bool]:
        try:
            db = bool(self.gateway.store.client.ping())
        except Exception:
            db = False
        # road time is known once two thirds of each road's poles have reported (streetlight.clock);
        # until then an operator's dim cannot be timed and is answered 503
        road_time = all(self.control.clock.now_ms(r) is not None for r in self.roads)
        return {"broker": self.gateway.connected, "database": db, "road_time": road_time}

    def stats(self) -> dict[str, float]:
        m = self.gateway.metrics
        hist = m.command_latency.collect()[0].samples
        total = next((s.value for s in hist if s.name.endswith("_sum")), 0.0)
        count = next((s.value for s in hist if s.name.endswith("_count")), 0.0)
        return {
            "messages_in_total": float(m.messages_in),
            "messages_rejected_total": float(sum(m.rejected.values())),
            "points_written_total": float(m.written),
            "duplicates_total": float(m.duplicates),
            "unannounced_restarts_total": float(m.restarts_total),
            "seq_reused_total": float(m.seq_reused),
            "spool_depth": float(m.spool_depth),
            "command_latency_seconds": float(total / count) if count else 0.0,
            "commands_total": float(count),
        }

    def now_ms(self) -> int:
        return self.control.now_ms()

    def road_time(self, road: str) -> RoadTime:
        self._road(road)
        mode = self.control.clock[road].mode
        return RoadTime(self.control.now_ms(road), mode or "unknown")

