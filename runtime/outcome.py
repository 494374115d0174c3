"""Compare what the platform reported during a scenario with what the scenario expected."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class OutcomeRow:
    fault: str
    expected: str
    reported: str
    delay_reports: float | None
    ok: bool
    note: str = ""


@dataclass
class Outcome:
    rows: list[OutcomeRow] = field(default_factory=list)
    false_alarms: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.ok for r in self.rows) and not self.false_alarms


def _where(pole: str | None, span: Any, feeder: str | None = None) -> str:
    if span:
        return f"span {span[0]}–{span[1]}"
    if pole:
        return f"pole {pole}"
    return f"feeder {feeder}" if feeder else "road"


def compare(expected: list[Any], alerts: list[dict[str, Any]], report_interval_s: float) -> Outcome:
    """Match each expected fault to the first alert of the same type and location.

    ``expected`` items have ``type``, ``pole``, ``span``, ``within_reports`` and ``after_ms`` (the
    time of the first evidence); ``alerts`` are the Alert payloads the platform published. The
    delay runs from ``after_ms`` to the platform time at which the fault's first alert was
    published. An opened alert that matches no expectation is a false alarm.
    """
    out = Outcome()
    opened = [a for a in alerts if a.get("state") == "open"]
    # the first alert of a fault is the moment the platform told the crew: its last_seen_ts is
    # the tick it opened on (first_seen_ts is backdated to when the evidence began)
    first_by_id: dict[str, dict[str, Any]] = {}
    for a in opened:
        first_by_id.setdefault(a["fault_id"], a)
    unmatched = dict(first_by_id)
    interval_ms = report_interval_s * 1000.0
    for exp in expected:
        span = tuple(exp.span) if getattr(exp, "span", None) else None
        feeder = getattr(exp, "feeder", None)
        want = _where(exp.pole, span, feeder)
        candidates = [
            a for a in first_by_id.values()
            if a["type"] == exp.type
            and (a.get("pole") == exp.pole if exp.pole else True)
            and (tuple(a.get("span") or ()) == span if span else True)
            # a feeder's fault is the feeder's, not one of its poles'
            and (a.get("feeder") == feeder and not a.get("pole") if feeder else True)
        ]
        if not candidates:
            same_type = [a for a in first_by_id.values() if a["type"] == exp.type]
            got = ", ".join(_where(a.get("pole"), a.get("span"), a.get("feeder")) for a in same_type) or "nothing"
            out.rows.append(OutcomeRow(exp.type, want, got, None, False, "not reported at the expected place"))
            continue
        alert = min(candidates, key=lambda a: a["last_seen_ts"])
        unmatched.pop(alert["fault_id"], None)
        delay = max(0.0, (alert["last_seen_ts"] - exp.after_ms) / interval_ms)
        ok = delay <= exp.within_reports
        out.rows.append(OutcomeRow(exp.type, want, _where(alert.get("pole"), alert.get("span"), alert.get("feeder")),
                                   round(delay, 1), ok,
                                   "" if ok else f"later than {exp.within_reports} report intervals"))
    out.false_alarms = list(unmatched.values())
    return out


def format_table(outcome: Outcome) -> str:
    head = ("fault", "expected location", "reported location", "delay (reports)", "result")
    rows = [(r.fault, r.expected, r.reported, "—" if r.delay_reports is None else f"{r.delay_reports:g}",
             "ok" if r.ok else f"MISS: {r.note}") for r in outcome.rows]
    for a in outcome.false_alarms:
        rows.append((a["type"], "(none expected)", _where(a.get("pole"), a.get("span"), a.get("feeder")), "—",
                     "FALSE ALARM"))
    if not rows:
        rows.append(("(none)", "(none expected)", "(none reported)", "—", "ok"))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)
