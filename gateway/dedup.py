"""Duplicate detection: the same reading, not the same number.

A pole's ``seq`` restarts at 0 after a reboot. An announced reboot (a ``reboot`` event) starts a
new boot at its ``ts``; so does a ``seq`` that goes back (or repeats) on a report with a ``ts``
newer than anything the boot has sent, because that is a restart whose event was lost in the
power cut (an *unannounced restart*). A late message (a redelivery from before a restart)
carries a ``ts`` older than the restart and is checked against the boot it belongs to.

Within a boot, each of the last :data:`SLOTS` sequence numbers is remembered with a 32-bit
digest of its payload and its ``ts``. A message is then judged:

* ``DUPLICATE``: same ``seq``, same payload (a QoS 1 redelivery): not stored again;
* ``NEW``: a ``seq`` not remembered (a seq older than the window is taken as new: storage is
  idempotent, the same message lands on the same point);
* ``RESTART``: an unannounced restart, stored and counted;
* ``REUSED``: the same ``seq`` with a different payload and another ``ts``: a different reading,
  stored (it lands on a point of its own) and counted;
* ``CONFLICT``: the same ``seq`` and ``ts`` with a different payload. It would land on the point
  of the reading already stored and overwrite it, so it is not stored: the pipeline records it
  as rejected (reason ``seq_conflict``) with its raw bytes.

Memory: 20 bytes a slot, 5 KB per boot, allocated on a pole's first message; at most
:data:`KEEP_BOOTS` boots per pole.
"""

from __future__ import annotations

import zlib
from array import array
from dataclasses import dataclass, field
from enum import Enum

SLOTS = 256  # seqs remembered per boot; redeliveries come from a pole's in-flight window (~20)
KEEP_BOOTS = 3


class Verdict(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    RESTART = "restart"
    REUSED = "reused"
    CONFLICT = "conflict"

    @property
    def stored(self) -> bool:
        return self not in (Verdict.DUPLICATE, Verdict.CONFLICT)


def digest(payload: bytes) -> int:
    return zlib.crc32(payload)


@dataclass(slots=True)
class _Boot:
    start_ts: int
    max_seq: int = -1
    last_ts: int = -1  # newest ts this boot has sent
    seqs: array = field(default_factory=lambda: array("q", [-1]) * SLOTS)  # slot seq % SLOTS
    digests: array = field(default_factory=lambda: array("L", [0]) * SLOTS)
    times: array = field(default_factory=lambda: array("q", [0]) * SLOTS)

    def lookup(self, seq: int) -> tuple[int, int] | None:
        """(digest, ts) of ``seq`` if remembered."""
        i = seq % SLOTS
        return (self.digests[i], self.times[i]) if self.seqs[i] == seq else None

    def add(self, seq: int, dig: int, ts: int) -> None:
        if seq > self.max_seq:
            self.max_seq = seq
        if ts > self.last_ts:
            self.last_ts = ts
        i = seq % SLOTS
        if self.seqs[i] > seq:  # the slot holds a newer seq: keep it, this one is older than the window
            return
        self.seqs[i], self.digests[i], self.times[i] = seq, dig, ts


class Dedup:
    def __init__(self) -> None:
        self._poles: dict[tuple[str, str], list[_Boot]] = {}

    def judge(self, road: str, pole: str, ts: int, seq: int, payload: bytes, reboot: bool = False) -> Verdict:
        """Judge one telemetry or event message and remember it if it is stored."""
        key = (road, pole)
        dig = digest(payload)
        boots = self._poles.get(key)
        if boots is None:
            boots = self._poles[key] = [_Boot(start_ts=-1)]
        if reboot:
            for b in boots:
                if b.start_ts == ts:
                    seen = b.lookup(seq)
                    if seen is not None and seen[0] == dig:
                        return Verdict.DUPLICATE
            self._new_boot(boots, ts).add(seq, dig, ts)
            return Verdict.NEW
        boot = boots[0]
        for b in boots:
            if b.start_ts <= ts:
                boot = b
        slot = seq % SLOTS  # boot.lookup(seq), inlined: this runs for every reading
        seen = (boot.digests[slot], boot.times[slot]) if boot.seqs[slot] == seq else None
        if seen is not None and seen[0] == dig:
            return Verdict.DUPLICATE
        if boot is boots[-1] and boot.max_seq >= seq and ts > boot.last_ts:
            self._new_boot(boots, ts).add(seq, dig, ts)
            return Verdict.RESTART
        if seen is not None:
            if seen[1] == ts:
                return Verdict.CONFLICT
            boot.add(seq, dig, ts)
            return Verdict.REUSED
        boot.add(seq, dig, ts)
        return Verdict.NEW

    @staticmethod
    def _new_boot(boots: list[_Boot], ts: int) -> _Boot:
        new = _Boot(start_ts=ts)
        boots.append(new)
        boots.sort(key=lambda b: b.start_ts)
        del boots[:-KEEP_BOOTS]
        return new

    def is_duplicate(self, road: str, pole: str, ts: int, seq: int, reboot: bool = False,
                     payload: bytes = b"") -> bool:
        """True if this is a duplicate; records it otherwise (``judge`` says why)."""
        return not self.judge(road, pole, ts, seq, payload, reboot).stored

    def boot(self, road: str, pole: str) -> int:
        """Number of restarts seen for a pole, announced or not (0 before the first)."""
        boots = self._poles.get((road, pole), [])
        return sum(1 for b in boots if b.start_ts >= 0)
