"""The one rule of a fault's lifecycle, used by the controller's book, the state store and every
platform adapter:

    open ──acknowledge──▶ acknowledged ──resolve──▶ resolved
      └──────────────────── resolve ──────────────────▲

A fault is acknowledged only while open (a crew takes it once); it is resolved from open or
acknowledged; resolved is final (a cause that comes back opens a new fault).
"""

from __future__ import annotations

from typing import Final

from ..errors import FaultStateError

OPEN: Final = "open"
ACKNOWLEDGED: Final = "acknowledged"
RESOLVED: Final = "resolved"
STATES: Final = (OPEN, ACKNOWLEDGED, RESOLVED)
LIVE: Final = frozenset({OPEN, ACKNOWLEDGED})

_ALLOWED: Final[dict[str, frozenset[str]]] = {
    OPEN: frozenset({ACKNOWLEDGED, RESOLVED}),
    ACKNOWLEDGED: frozenset({RESOLVED}),
    RESOLVED: frozenset(),
}

# what the person asking can do instead, by (from, to)
_HINTS: Final[dict[tuple[str, str], str]] = {
    (ACKNOWLEDGED, ACKNOWLEDGED): "a crew has taken it already; resolve it after the repair",
    (RESOLVED, ACKNOWLEDGED): "resolved is final; if the problem is back, a new fault opens when the "
                              "controller sees it again",
    (RESOLVED, RESOLVED): "nothing left to do",
}


def allowed(current: str, to: str) -> bool:
    """Whether a fault in state ``current`` may move to ``to``."""
    return to in _ALLOWED.get(current, frozenset())


def check(fault_id: str, current: str, to: str) -> str:
    """``to`` if the lifecycle allows the move, else :class:`FaultStateError` saying what to do."""
    if to not in STATES:
        raise FaultStateError(fault_id, current, to, f"the states are {', '.join(STATES)}")
    if current not in STATES:
        raise FaultStateError(fault_id, current, to, f"{current!r} is not a fault state; the states are "
                                                     f"{', '.join(STATES)}")
    if not allowed(current, to):
        raise FaultStateError(fault_id, current, to, _HINTS.get((current, to), f"it can become "
                                                     f"{' or '.join(sorted(_ALLOWED[current])) or 'nothing else'}"))
    return to
