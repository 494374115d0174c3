"""The scenario judge: the alerts the platform published against the faults the scenario injected.

One judge for every caller (the pytest plugin's ``simulate`` and ``streetlight scenario run
--check``). Pure: alerts, expectations and the fault timeline in, a ``Verdict`` out. The rules:

* An expectation is met by the FIRST alert (state ``open``) of its type at its place (pole, span
  or feeder; none given: anywhere on the road). A fault's opening is the first ``open`` alert
  published under its ``fault_id``; its ``last_seen_ts`` is the road time of the tick it opened
  on (``first_seen_ts`` is backdated to where the evidence began, so it says nothing about when
  the crew was told).
* The delay runs from the fault's first evidence (the scenario's ``after``: by default the
  injection time) to that opening, in report intervals, and must be at most ``within_reports``.
* An alert opened BEFORE the first evidence is a false alarm, never a delay of 0.
* One failure opened as two faults fails the run: a second fault id at the same place, opened
  while the injected fault was never repaired (the fault timeline says when it ended).
* Any opened alert that matches no expectation is a false alarm.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..faults import FAULT_TYPES, Fault
from ..truth import FaultSpan


class Expectation(Protocol):
    """What a scenario expects (``simulators.scenario.Expected`` is one)."""

    @property
    def type(self) -> str: ...
    @property
    def pole(self) -> str | None: ...
    @property
    def span(self) -> tuple[str, str] | None: ...
    @property
    def within_reports(self) -> int: ...
    @property
    def after_ms(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Opening:
    """The first ``open`` alert of one fault id: when and where the platform told the crew."""

    fault_id: str
    type: str
    pole: str | None
    span: tuple[str, str] | None
    feeder: str | None
    opened_ms: int
    alert: dict[str, Any]

    @property
    def where(self) -> str:
        return _where(self.pole, self.span, self.feeder, self.cabinet)

    @property
    def cabinet(self) -> str | None:
        """The cabinet of a cabinet's own fault (an Alert names it in ``evidence.cabinet``)."""
        ev = self.alert.get("evidence") or {}
        return self.alert.get("cabinet") or (ev.get("cabinet") if isinstance(ev, Mapping) else None)


@dataclass(slots=True)
class Row:
    """One expectation and what the platform reported for it."""

    fault: str
    expected: str
    reported: str
    delay_reports: float | None
    ok: bool
    note: str = ""
    fault_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class FalseAlarm:
    opening: Opening
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.opening.alert, "why": self.why}


@dataclass
class Verdict:
    rows: list[Row] = field(default_factory=list)
    false_alarms: list[FalseAlarm] = field(default_factory=list)
    unmet: list[Any] = field(default_factory=list)  # the expectations whose row failed

    @property
    def passed(self) -> bool:
        return all(r.ok for r in self.rows) and not self.false_alarms


def _get(alert: Any, key: str) -> Any:
    return alert.get(key) if isinstance(alert, Mapping) else getattr(alert, key, None)


def _as_dict(alert: Any) -> dict[str, Any]:
    if isinstance(alert, Mapping):
        return dict(alert)
    dump = getattr(alert, "model_dump", None)
    return dump(mode="json") if dump is not None else dict(vars(alert))


def _where(pole: str | None, span: Sequence[str] | None, feeder: str | None = None, cabinet: str | None = None) -> str:
    if span:
        return f"span {span[0]}–{span[1]}"
    if pole:
        return f"pole {pole}"
    if feeder:
        return f"feeder {feeder}"
    return f"cabinet {cabinet}" if cabinet else "road"


def openings(alerts: Iterable[Any]) -> list[Opening]:
    """Each fault id's first ``open`` alert (Alert models or their dicts), earliest first."""
    first: dict[str, Opening] = {}
    for a in alerts:
        if _get(a, "state") != "open":
            continue
        fid = str(_get(a, "fault_id"))
        span = _get(a, "span")
        o = Opening(fid, str(_get(a, "type")), _get(a, "pole"), tuple(span) if span else None, _get(a, "feeder"),
                    int(_get(a, "last_seen_ts")), _as_dict(a))
        if fid not in first or o.opened_ms < first[fid].opened_ms:
            first[fid] = o
    return sorted(first.values(), key=lambda o: (o.opened_ms, o.fault_id))


def timeline_of(faults: Iterable[Fault]) -> list[FaultSpan]:
    """The fault timeline a scenario plans (the truth records the same, at step instants)."""
    out = []
    for f in faults:
        target, _ = FAULT_TYPES[f.type]
        out.append(FaultSpan(f.type, target, f.label, (), None, f.at_ms, f.until_ms))
    return out


def _label(exp: Expectation) -> str | None:
    if exp.span:
        return f"{exp.span[0]}/{exp.span[1]}"
    return exp.pole or getattr(exp, "feeder", None) or getattr(exp, "cabinet", None)


def _repaired_ms(exp: Expectation, timeline: Sequence[FaultSpan]) -> int | None:
    """When the injected fault behind ``exp`` ended (None: never, or not known)."""
    label = _label(exp)
    spans = [s for s in timeline if FAULT_TYPES.get(s.type, ("", ""))[1] == exp.type
             and (label is None or s.label == label)]
    if not spans:
        return None
    began = [s for s in spans if s.began_ms <= exp.after_ms]
    span = max(began, key=lambda s: s.began_ms) if began else min(spans, key=lambda s: s.began_ms)
    return span.ended_ms


def _at_place(o: Opening, exp: Expectation) -> bool:
    if o.type != exp.type:
        return False
    if exp.pole is not None and o.pole != exp.pole:
        return False
    if exp.span is not None and o.span != tuple(exp.span):
        return False
    feeder = getattr(exp, "feeder", None)
    cabinet = getattr(exp, "cabinet", None)
    if cabinet is not None and (o.cabinet != cabinet or o.pole is not None or o.feeder is not None):
        return False  # a cabinet's own fault names the cabinet alone
    # a feeder's fault is the feeder's (no pole named), not one of its poles' faults of that type
    return feeder is None or (o.feeder == feeder and o.pole is None)


def judge_faults(expected: Sequence[Expectation], alerts: Iterable[Any], report_interval_s: float,
                 timeline: Sequence[FaultSpan] = ()) -> Verdict:
    """Judge ``alerts`` (as published, any order) against ``expected``; see the module's rules."""
    interval_ms = report_interval_s * 1000.0
    opened = openings(alerts)
    used: set[str] = set()
    early: dict[str, str] = {}
    out = Verdict()
    order = sorted(range(len(expected)), key=lambda k: expected[k].after_ms)
    rows: dict[int, Row] = {}
    for n, k in enumerate(order):
        exp = expected[k]
        want = _where(exp.pole, exp.span, getattr(exp, "feeder", None), getattr(exp, "cabinet", None))
        here = [o for o in opened if o.fault_id not in used and _at_place(o, exp)]
        for o in here:
            if o.opened_ms < exp.after_ms:
                early.setdefault(o.fault_id, f"opened {(exp.after_ms - o.opened_ms) / 1000:g} s before the "
                                             f"fault's first evidence")
        on_time = [o for o in here if o.opened_ms >= exp.after_ms]
        if not on_time:
            if any(o.opened_ms < exp.after_ms for o in here):
                rows[k] = Row(exp.type, want, want, None, False, "only opened before the first evidence")
            else:
                same = [o.where for o in opened if o.type == exp.type]
                rows[k] = Row(exp.type, want, ", ".join(same) or "nothing", None, False,
                              "not reported at the expected place")
            continue
        first = on_time[0]
        used.add(first.fault_id)
        delay = round((first.opened_ms - exp.after_ms) / interval_ms, 1)
        ok, note = delay <= exp.within_reports, ""
        if not ok:
            note = f"later than {exp.within_reports} report intervals"
        # the same place again before the fault was repaired (or the next injection there): one
        # failure opened as several faults, so several work orders for one crew job
        repaired = _repaired_ms(exp, timeline)
        later = [expected[j].after_ms for j in order[n + 1:] if _same_place(expected[j], exp)]
        until = min([t for t in (repaired, *later) if t is not None], default=None)
        again = [o for o in on_time[1:] if until is None or o.opened_ms < until]
        used.update(o.fault_id for o in again)
        ids = [first.fault_id, *(o.fault_id for o in again)]
        if again:
            ok = False
            note = f"one failure opened as {len(ids)} faults ({', '.join(ids)}) while never repaired"
        rows[k] = Row(exp.type, want, first.where, delay, ok, note, ids)
    out.rows = [rows[k] for k in range(len(expected))]
    out.unmet = [expected[k] for k in range(len(expected)) if not rows[k].ok]
    for o in opened:
        if o.fault_id not in used:
            out.false_alarms.append(FalseAlarm(o, early.get(o.fault_id, "matches no expectation")))
    return out


def _same_place(a: Expectation, b: Expectation) -> bool:
    return ((a.type, a.pole, a.span, getattr(a, "feeder", None), getattr(a, "cabinet", None))
            == (b.type, b.pole, b.span, getattr(b, "feeder", None), getattr(b, "cabinet", None)))


def format_table(verdict: Verdict) -> str:
    """The verdict as a crew reads it: fault, expected and reported place, delay, result."""
    head = ("fault", "expected location", "reported location", "delay (reports)", "result")
    rows = [(r.fault, r.expected, r.reported, "—" if r.delay_reports is None else f"{r.delay_reports:g}",
             "ok" if r.ok else f"MISS: {r.note}") for r in verdict.rows]
    for fa in verdict.false_alarms:
        rows.append((fa.opening.type, "(none expected)", fa.opening.where, "—", f"FALSE ALARM: {fa.why}"))
    if not rows:
        rows.append(("(none)", "(none expected)", "(none reported)", "—", "ok"))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)
