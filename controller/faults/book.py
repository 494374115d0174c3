"""The fault book: one fault per root cause, moved along its lifecycle (``lifecycle``).

Each tick the detectors hand over the findings they see now. A finding with no live fault
opens one; a live fault whose finding is gone resolves (the rules carry their own hysteresis);
a change of place or size is an update. A fault resolved by a person while its evidence is
still there is not reopened until the evidence has cleared once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from ..errors import UnknownFaultError
from . import lifecycle
from .model import Fault, Finding, chainage_text

_MATERIAL = ("span", "pole", "feeder", "cabinet")
_LIFECYCLE = ("acknowledged_by", "acknowledged_ts", "resolved_by", "resolved_ts")


def snapshot(f: Fault) -> Fault:
    """A copy that later ticks do not change (what was published stays what it was)."""
    return replace(f, span=list(f.span) if f.span else None, evidence=dict(f.evidence))


class FaultBook:
    def __init__(self, road_id: str, severity: dict[str, str], first_seq: int = 1) -> None:
        self.road_id = road_id
        self.severity = severity
        self.next_seq = first_seq
        self.live: dict[tuple[str, str], Fault] = {}  # open or acknowledged
        self.by_id: dict[str, Fault] = {}
        self._suppressed: set[tuple[str, str]] = set()
        self._pending: list[Fault] = []  # changed by people since the last tick

    def restore(self, faults: Iterable[Fault]) -> None:
        """Faults loaded from storage (after a restart): live ones keep their ids."""
        for f in faults:
            self.by_id[f.fault_id] = f
            if f.state in lifecycle.LIVE:
                self.live[f.key] = f
            try:
                self.next_seq = max(self.next_seq, int(f.fault_id.split("-")[1]) + 1)
            except (IndexError, ValueError):
                pass

    def is_live(self, key: tuple[str, str]) -> bool:
        return key in self.live

    def _new_id(self) -> str:
        fid = f"F-{self.next_seq:06d}"
        self.next_seq += 1
        return fid

    def reconcile(self, now: int, findings: list[Finding], may_resolve: bool = True) -> list[Fault]:
        """``may_resolve=False`` while the rules warm up after a start (restored faults stay)."""
        changed: list[Fault] = list(self._pending)
        self._pending.clear()
        seen: set[tuple[str, str]] = set()
        for fd in findings:
            key = fd.key
            if key in seen:
                continue
            seen.add(key)
            if key in self._suppressed:
                continue
            f = self.live.get(key)
            loc = fd.location
            if f is None:
                f = Fault(fault_id=self._new_id(), type=fd.type, severity=self.severity.get(fd.type, "major"),
                          state=lifecycle.OPEN, road=self.road_id, pole=loc.get("pole"), span=loc.get("span"),
                          segment=loc.get("segment"), side=loc.get("side"), chainage_m=loc.get("chainage_m"),
                          lat=loc.get("lat"), lon=loc.get("lon"), feeder=loc.get("feeder"),
                          first_seen_ts=min(fd.first_ts, now), last_seen_ts=now, summary=fd.summary,
                          evidence=fd.evidence, cabinet=loc.get("cabinet"),
                          chainage=chainage_text(loc.get("chainage_m")), equipment=loc.get("equipment"))
                self.live[key] = f
                self.by_id[f.fault_id] = f
                changed.append(f)
                continue
            material = any(loc.get(k) != getattr(f, k) for k in _MATERIAL) or fd.summary != f.summary
            f.last_seen_ts = now
            f.evidence = {**fd.evidence, **{k: f.evidence[k] for k in _LIFECYCLE if k in f.evidence}}
            if material:
                for k in ("pole", "span", "segment", "side", "chainage_m", "lat", "lon", "feeder", "cabinet"):
                    setattr(f, k, loc.get(k))
                f.chainage = chainage_text(f.chainage_m)
                f.summary = fd.summary
                changed.append(f)
        for key in list(self.live):
            if key not in seen and may_resolve:
                f = self.live.pop(key)
                f.state = lifecycle.check(f.fault_id, f.state, lifecycle.RESOLVED)
                f.last_seen_ts = max(f.last_seen_ts, now)
                f.evidence = {**f.evidence, "resolved": "evidence cleared"}
                changed.append(f)
        self._suppressed &= seen
        return [snapshot(f) for f in changed]

    def acknowledge(self, fault_id: str, actor: str, ts_ms: int) -> Fault:
        f = self._get(fault_id)
        f.state = lifecycle.check(fault_id, f.state, lifecycle.ACKNOWLEDGED)
        f.evidence = {**f.evidence, "acknowledged_by": actor, "acknowledged_ts": ts_ms}
        self._pending.append(f)
        return snapshot(f)

    def resolve(self, fault_id: str, actor: str, ts_ms: int) -> Fault:
        """Resolved by a person: not reopened until its evidence has cleared once."""
        f = self._get(fault_id)
        f.state = lifecycle.check(fault_id, f.state, lifecycle.RESOLVED)
        f.last_seen_ts = max(f.last_seen_ts, ts_ms)
        f.evidence = {**f.evidence, "resolved_by": actor, "resolved_ts": ts_ms}
        self.live.pop(f.key, None)
        self._suppressed.add(f.key)
        self._pending.append(f)
        return snapshot(f)

    def _get(self, fault_id: str) -> Fault:
        try:
            return self.by_id[fault_id]
        except KeyError:
            raise UnknownFaultError(fault_id, f"on road {self.road_id}") from None

    def open_faults(self) -> list[Fault]:
        return [snapshot(f) for f in sorted(self.live.values(), key=lambda f: f.fault_id)]
