"""Turn what the pole watches see into findings: one root cause, one finding.

Supply and silence are judged per feeder, walking from the cabinet outward:

* every pole of a feeder lost -> ``feeder_outage`` (one per cabinet when all its feeders are out);
* a run of at least ``min_cable_run`` lost poles at the feeder's far end, upstream poles normal
  -> one ``cable_fault`` on the span between the last good and the first dead pole;
* any other lost pole -> ``comm_loss`` (silent) or ``voltage_out_of_band`` (reports no supply).

A feeder is not judged while it settles: while one of its poles is merely overdue (a cut whose
poles fall silent a few seconds apart is located once, at the right span), and while part of a
dark run has come back and the rest not yet (poles reboot one by one after a repair). Poles in a supply fault get no
pole-level findings (a cut is not nine lamp failures), unless such a fault was already open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from streetlight.registry import Road, format_chainage

from ..tables import FaultTable
from .model import Finding, cabinet_location, pole_location, span_location, where
from .pole_rules import PoleWatch

_POLE_RULES = (("lamp", "lamp_failure"), ("driver", "driver_fault"), ("volt", "voltage_out_of_band"),
               ("leak", "leakage"), ("day", "day_burning"), ("cycling", "cycling"))


def _dark_list(ids: list[str]) -> str:
    return f"{ids[0]} … {ids[-1]}" if len(ids) > 2 else ", ".join(ids)


class Detector:
    def __init__(self, road: Road, table: FaultTable, interval_ms: int) -> None:
        self.road = road
        self.f = table
        self.interval_ms = interval_ms
        self._held: dict[str, list[Finding]] = {}  # per feeder, the last settled supply findings
        self._held_lost: dict[str, set[str]] = {}
        self._back_since: dict[str, int] = {}  # per feeder, when part of its dark run came back
        self._volt_feeders: set[str] = set()  # feeders whose supply is out of band as a whole

    def _settling(self, feeder: str, ws: list[PoleWatch], lost: list[bool], lost_ids: set[str], now: int,
                  start_ms: int) -> bool:
        """Whether the feeder is still changing, so that judging it now would misplace a fault.

        Falling dark: a pole is overdue but not yet silent (a cut's poles go quiet seconds apart).
        Coming back: part of the last dark run talks again while the rest is still dark. After a
        repair the poles reboot and reconnect one by one; judged in between, the run would split
        into a shorter cable span and comm losses for the poles not yet back. The run is held
        until all of it is back, or for ``return_settle_intervals`` after its first pole returned
        (then what is still dark is judged on its own).
        """
        if any(not x and w.overdue(now, self.interval_ms, start_ms) for w, x in zip(ws, lost, strict=True)):
            return True
        held = self._held_lost[feeder]
        if not (held - lost_ids and held & lost_ids):
            return False
        since = self._back_since.setdefault(feeder, now)
        return now - since <= self.f.return_settle_intervals * self.interval_ms

    def supply_findings(self, watches: dict[str, PoleWatch], now: int, start_ms: int) -> tuple[list[Finding], set[str]]:
        """Feeder-level findings and the poles they cover."""
        road, f = self.road, self.f
        out: list[Finding] = []
        covered: set[str] = set()
        feeder_out: dict[str, list[str]] = {}  # cabinet -> feeders wholly out
        per_feeder: dict[str, list[Finding]] = {}
        for fd in road.feeders:
            ws = [watches[p] for p in fd.poles]
            lost = [w.silent(now, self.interval_ms, start_ms) or w.no_supply() for w in ws]
            lost_ids = {w.pole.id for w, x in zip(ws, lost, strict=True) if x}
            if fd.id in self._held and self._settling(fd.id, ws, lost, lost_ids, now, start_ms):
                per_feeder[fd.id] = self._held[fd.id]  # keep the last settled findings meanwhile
                covered |= self._held_lost[fd.id]
                continue
            self._back_since.pop(fd.id, None)
            found: list[Finding] = []
            if lost and all(lost):
                feeder_out.setdefault(fd.cabinet, []).append(fd.id)
                found.append(self._feeder_outage(fd.id, fd.cabinet, list(fd.poles), ws, now))
            else:
                k = len(ws)
                while k > 0 and lost[k - 1]:
                    k -= 1
                tail = ws[k:]
                cable = len(tail) >= f.min_cable_run
                if cable:
                    found.append(self._cable(ws[k - 1], tail, now))
                upstream = range(k) if cable else range(len(ws))
                found.extend(self._single(ws[j], now, start_ms) for j in upstream if lost[j])
            per_feeder[fd.id] = found
            self._held[fd.id] = found
            self._held_lost[fd.id] = lost_ids
            covered |= lost_ids
        for cab, feeders in feeder_out.items():
            all_feeders = [x.id for x in road.feeders if x.cabinet == cab]
            if len(all_feeders) > 1 and sorted(feeders) == sorted(all_feeders):
                for fid in feeders:
                    per_feeder[fid] = [x for x in per_feeder[fid] if x.type != "feeder_outage"]
                n = sum(len(road.feeder_by_id[x].poles) for x in feeders)
                out.append(Finding("feeder_outage", cabinet_location(road, cab, None),
                                   f"Cabinet {cab} out: feeders {', '.join(feeders)} all dark ({n} poles); check the cabinet supply and breakers",
                                   {"feeders": feeders, "poles_dark": n}, now))
        for found in per_feeder.values():
            out.extend(found)
        return out, covered

    def _feeder_outage(self, feeder: str, cabinet: str, ids: list[str], ws: list[PoleWatch], now: int) -> Finding:
        first = min((w.last_msg_ts for w in ws if w.last_msg_ts >= 0), default=now)
        return Finding("feeder_outage", cabinet_location(self.road, cabinet, feeder),
                       f"Feeder {feeder} from cabinet {cabinet} is out: all {len(ids)} poles dark ({_dark_list(sorted(ids))}); check the feeder breaker in {cabinet}",
                       {"poles_dark": len(ids), "last_message_ts": first}, now)

    def _cable(self, good: PoleWatch, tail: list[PoleWatch], now: int) -> Finding:
        loc = span_location(good.pole, tail[0].pole)
        side = {"N": "north side", "S": "south side"}.get(loc["side"], loc["side"])
        ids = [w.pole.id for w in tail]
        summary = (f"Supply lost between {good.pole.id} and {tail[0].pole.id} ({format_chainage(loc['chainage_m'])}, "
                   f"{side}, segment {loc['segment']}): {len(tail)} poles dark downstream on feeder {loc['feeder']}")
        return Finding("cable_fault", loc, summary,
                       {"last_good": good.pole.id, "first_dead": tail[0].pole.id, "dark_poles": ids,
                        "silent": [w.pole.id for w in tail if not w.no_supply()],
                        "no_supply": [w.pole.id for w in tail if w.no_supply()]}, now)

    def _single(self, w: PoleWatch, now: int, start_ms: int) -> Finding:
        p = w.pole
        if w.no_supply() and not w.silent(now, self.interval_ms, start_ms):
            assert w.last is not None
            return Finding("voltage_out_of_band", pole_location(p),
                           f"No supply at {p.id} ({where(p)}): {w.last.voltage_v:.0f} V while its feeder neighbours are normal; check the pole's fuse and service cable",
                           {"voltage_v": w.last.voltage_v}, w.last.ts)
        silent_s = (now - w.last_msg_ts) / 1000 if w.last_msg_ts >= 0 else None
        why = "reported offline" if w.online is False and w.status_ts >= w.last_msg_ts else f"silent for {silent_s:.0f} s" if silent_s else "never reported"
        return Finding("comm_loss", pole_location(p),
                       f"{p.id} ({where(p)}) {why} while its feeder neighbours report; check the pole's controller and uplink",
                       {"last_message_ts": w.last_msg_ts, "status": "offline" if w.online is False else None}, now)

    def pole_findings(self, watches: dict[str, PoleWatch], covered: set[str], stuck: np.ndarray,
                      is_live: Callable[[tuple[str, str]], bool]) -> list[Finding]:
        out: list[Finding] = []
        volt_by_feeder: dict[str, list[Finding]] = {}
        for i, p in enumerate(self.road.poles):
            w = watches[p.id]
            for attr, ftype in _POLE_RULES:
                rule = getattr(w, attr)
                if not rule.active:
                    continue
                if ftype == "lamp_failure" and w.cycling.active:
                    continue  # a lamp going off and on by itself is one cycling fault
                if p.id in covered and not is_live((ftype, p.id)):
                    continue
                fd = Finding(ftype, pole_location(p), self._pole_summary(ftype, w, rule.evidence),
                             dict(rule.evidence), rule.first_bad_ts if rule.first_bad_ts >= 0 else 0)
                if ftype == "voltage_out_of_band":
                    volt_by_feeder.setdefault(p.feeder, []).append(fd)
                else:
                    out.append(fd)
            if w.clock_skewed:
                off = w.clock_offset_ms
                out.append(Finding("clock_skew", pole_location(p),
                                   f"Clock of {p.id} ({where(p)}) is {_duration(abs(off))} {'ahead of' if off > 0 else 'behind'} road time; its readings are stored at road time until it is set right (check the controller's RTC battery and time sync)",
                                   {"offset_ms": off}, w.clock_since_ts))
            if stuck[i] and p.id not in covered:
                out.append(Finding("detector_stuck", pole_location(p),
                                   f"Traffic detector at {p.id} ({where(p)}) reads zero while its neighbours count; adaptive dimming ignores it until repaired",
                                   {"window_s": self.f.stuck_window_s}, w.last_msg_ts))
        self._volt_feeders &= set(volt_by_feeder)
        for feeder, fds in volt_by_feeder.items():
            reporting = [watches[x] for x in self.road.feeder_by_id[feeder].poles if watches[x].last is not None and x not in covered]
            # a feeder's poles report one after the other, so a tick may fall between the first
            # and the last of them: counted are the poles whose latest report is out of band, open
            # or not yet, and once the feeder is out as a whole it stays one fault until none of
            # its poles is (they come back one by one too)
            low = [w for w in reporting if w.volt.active or w.volt.bad > 0]
            share = len(low) / max(1, len(reporting))
            if feeder in self._volt_feeders or (
                    len(low) >= self.f.voltage_feeder_min_poles and share >= self.f.voltage_feeder_share):
                self._volt_feeders.add(feeder)
                vs = [fd.evidence.get("voltage_v", 0.0) for fd in fds]
                fd_ = self.road.feeder_by_id[feeder]
                loc = cabinet_location(self.road, fd_.cabinet, feeder)
                out.append(Finding("voltage_out_of_band", loc,
                                   f"Supply voltage out of band on feeder {feeder} (cabinet {fd_.cabinet}): {len(fds)} poles at {min(vs):.0f}–{max(vs):.0f} V (band 198–235 V); check the cabinet supply",
                                   {"poles": [fd.location["pole"] for fd in fds], "voltage_v": [min(vs), max(vs)]},
                                   min(fd.first_ts for fd in fds)))
            else:
                out.extend(fds)
        return out

    def _pole_summary(self, ftype: str, w: PoleWatch, ev: dict[str, Any]) -> str:
        p = w.pole
        at = f"{p.id} ({where(p)})"
        if ftype == "lamp_failure":
            if "device_code" in ev:
                return f"Lamp failed at {at}: device reports {ev['device_code'] or 'lamp fault'}; replace the lamp"
            return f"Lamp dark at {at}: told {ev.get('commanded', 0):.0f} %, supply {ev.get('voltage_v', 0):.0f} V, drawing {ev.get('power_w', 0):.1f} W; replace the lamp"
        if ftype == "driver_fault":
            if "device_code" in ev:
                return f"LED driver fault at {at}: device reports {ev['device_code'] or 'driver fault'}; check the driver"
            return f"Power off its curve at {at}: {ev.get('power_w', 0):.0f} W at {ev.get('dim', 0):.0f} % (expected about {ev.get('expected_w', 0):.0f} W); check the LED driver"
        if ftype == "leakage":
            return f"DANGER leakage current {ev.get('leakage_ma', 0):.0f} mA at {at} (limit {ev.get('limit_ma', 30):.0f} mA): isolate the pole before touching it"
        if ftype == "voltage_out_of_band":
            return f"Supply voltage {ev.get('voltage_v', 0):.0f} V at {at}, outside 198–235 V; check the pole's connection"
        if ftype == "day_burning":
            if "device_code" in ev:
                return f"Lamp burning in daylight at {at}: device reports {ev['device_code'] or 'day burner'}; check the relay and light sensor"
            if "full_output_since_ts" in ev:
                return f"Lamp burning in daylight at {at}: full output ({ev.get('power_w', 0):.0f} W) although told {ev.get('commanded', 0):.0f} %; the relay is stuck closed, replace it"
            return f"Lamp burning in daylight at {at}: drawing {ev.get('power_w', 0):.0f} W; check the relay and light sensor"
        if ftype == "cycling":
            if "device_code" in ev:
                return f"Lamp cycling at {at}: device reports {ev['device_code'] or 'cycling failure'}; replace the lamp or driver"
            return f"Lamp cycling at {at}: went off and on by itself {ev.get('off_on_transitions', 0)} times in {ev.get('window_s', 0) / 60:.0f} min; replace the lamp or driver"
        return f"{ftype} at {at}"


def _duration(ms: int) -> str:
    """``3 s``, ``10 min``, ``2.0 h``, ``365 d``: an offset as a crew reads it."""
    s = ms / 1000
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 172_800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86_400:.0f} d"
