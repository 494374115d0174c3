"""Duplicate detection by (pole, boot, seq).

A pole's ``seq`` restarts at 0 after a reboot, announced by a ``reboot`` event: each reboot
starts a new boot, found by its ``ts``. A late message (a redelivery from before the reboot)
carries a ``ts`` older than the reboot and is checked against the boot it belongs to. Each boot
keeps the last 4,096 sequence numbers as a bit mask, so memory stays small and flat however
long a pole runs (512 bytes per pole: 5 MB for 10,000 poles).
Storage is idempotent as well (same message, same point), so this decides what listeners see
and what is counted, not whether a row is doubled.
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOW = 4096  # seqs remembered per boot, as bits: 512 bytes per pole however long it runs
FULL = (1 << WINDOW) - 1
KEEP_BOOTS = 3


@dataclass(slots=True)
class _Boot:
    start_ts: int
    max_seq: int = -1
    mask: int = 0  # bit i set: seq (max_seq - i) was seen

    def check_and_add(self, seq: int) -> bool:
        """True if seen before; records it otherwise. A seq older than the window is taken as new
        (its rewrite in storage is idempotent, so at worst a listener hears it twice)."""
        if seq > self.max_seq:
            shift = seq - self.max_seq
            self.mask = 1 if self.max_seq < 0 or shift >= WINDOW else ((self.mask << shift) | 1) & FULL
            self.max_seq = seq
            return False
        off = self.max_seq - seq
        if off >= WINDOW:
            return False
        bit = 1 << off
        if self.mask & bit:
            return True
        self.mask |= bit
        return False


class Dedup:
    def __init__(self) -> None:
        self._poles: dict[tuple[str, str], list[_Boot]] = {}

    def is_duplicate(self, road: str, pole: str, ts: int, seq: int, reboot: bool = False) -> bool:
        """True if this (pole, boot, seq) was seen before; records it otherwise."""
        boots = self._poles.get((road, pole))
        if boots is None:
            boots = self._poles[(road, pole)] = [_Boot(start_ts=-1)]
        if reboot:
            if any(b.start_ts == ts for b in boots):
                return True
            new = _Boot(start_ts=ts)
            new.check_and_add(seq)
            boots.append(new)
            boots.sort(key=lambda b: b.start_ts)
            del boots[:-KEEP_BOOTS]
            return False
        boot = boots[0]
        for b in boots:
            if b.start_ts <= ts:
                boot = b
        return boot.check_and_add(seq)

    def boot(self, road: str, pole: str) -> int:
        """Number of reboots seen for a pole (0 before the first)."""
        boots = self._poles.get((road, pole), [])
        return sum(1 for b in boots if b.start_ts >= 0)
