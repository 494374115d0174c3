"""Operator overrides: a level for a pole, a segment or the road, with a priority and an expiry.

For each pole the active override with the highest priority wins; on a tie the more specific
scope (pole > segment > road), then the newer one. Emergency all-on is not an override: it
beats everything and is kept by the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from streetlight.registry import Pole

_SPECIFIC = {"pole": 2, "segment": 1, "road": 0}


@dataclass(frozen=True, slots=True)
class Override:
    id: str
    scope: Literal["pole", "segment", "road"]
    target: str | None  # pole or segment id; None for the road
    level: float
    start_ms: int
    expires_ms: int | None = None  # None = until cleared
    priority: int = 0
    actor: str = "operator"
    note: str = ""
    force: bool = False  # allow a level under the segment's floor (e.g. a crew at work)

    def __post_init__(self) -> None:
        if not 0 <= self.level <= 100:
            raise ValueError(f"override level {self.level}: expected 0 … 100")
        if self.scope != "road" and not self.target:
            raise ValueError(f"a {self.scope} override needs a target id")
        if self.expires_ms is not None and self.expires_ms <= self.start_ms:
            raise ValueError("an override must expire after it starts")

    def applies_to(self, pole: Pole) -> bool:
        if self.scope == "road":
            return True
        return (pole.id if self.scope == "pole" else pole.segment) == self.target

    def active(self, now: int) -> bool:
        return self.start_ms <= now and (self.expires_ms is None or now < self.expires_ms)


class OverrideSet:
    def __init__(self) -> None:
        self._by_id: dict[str, Override] = {}

    def set(self, o: Override) -> None:
        self._by_id[o.id] = o

    def clear(self, override_id: str) -> bool:
        return self._by_id.pop(override_id, None) is not None

    def expire(self, now: int) -> list[Override]:
        gone = [o for o in self._by_id.values() if o.expires_ms is not None and now >= o.expires_ms]
        for o in gone:
            del self._by_id[o.id]
        return gone

    def all(self) -> list[Override]:
        return list(self._by_id.values())

    def winner(self, pole: Pole, now: int) -> Override | None:
        best: Override | None = None
        for o in self._by_id.values():
            if not (o.active(now) and o.applies_to(pole)):
                continue
            # >=: of two set at the same instant, the one set later (kept in insertion order) wins
            if best is None or (o.priority, _SPECIFIC[o.scope], o.start_ms) >= (best.priority, _SPECIFIC[best.scope], best.start_ms):
                best = o
        return best
