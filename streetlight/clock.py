"""Road time: the one clock the platform decides on.

Every decision is taken on message time (``ts``), never on the arrival time, so a replay at any
speed gives the same results. But a pole's clock can be wrong (a dead RTC battery, a lost NTP
fix), and a road must not follow one bad clock. So a road's time is a consensus:

* **devices** (a replay, a simulated road on its own clock): road time is the newest instant
  that *more than a third of the road's poles* have reached, i.e. the k-th newest of the poles'
  latest ``ts`` with ``k = n // 3 + 1`` for a road of ``n`` poles. Up to a third of the poles
  ahead by any amount cannot push it forward; poles behind, or silent, cannot hold it back while
  more than a third report. Until two thirds of the poles (``2k - 1``) have been heard once, road
  time is unknown (so that a third behind cannot hold it back at the start either).
* **wall** (a live road): the same consensus, never further than the tolerance past the wall
  clock, and the wall clock itself until enough poles have reported (so an operator can act at
  once after a start, whatever the report interval).
* **auto** (the default): *wall* if the first consensus lies within the tolerance of the wall
  clock, *devices* otherwise; decided once per road.

Readings are judged against the consensus itself, never against an extrapolation, so a stalled
pipeline or a backlog delivered late is judged by the time of the stream it belongs to. Between
readings, "now" (heartbeats, silence, an operator's action) moves on with the wall clock at real
speed once the consensus has not moved for a moment (the road, or most of it, is quiet), so that
silence itself is noticed; on a live road never past the wall clock. "Now" never goes back.

A reading whose ``ts`` is further from road time than the tolerance is not evidence of time: it
is used at its own time less the pole's estimated offset (the lowest offset seen since its clock
last changed), so it keeps its own cadence, and never past road time by more than the tolerance
(:meth:`RoadClock.judge` says so and by how much). A pole whose last two readings were out of
tolerance is *skewed* until two readings are back within it (the controller raises
``clock_skew`` on it).
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

ClockMode = Literal["auto", "wall", "devices"]
CLOCK_MODES: tuple[str, ...] = ("auto", "wall", "devices")
DEFAULT_TOLERANCE_MS = 120_000
QUIET_AFTER_S = 2.0  # wall seconds without a timed message before road time moves on by itself
SKEW_AFTER = 2  # consecutive readings out of (or back within) tolerance before a pole's state flips


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_local(text: str, tz: str = "Asia/Shanghai") -> int:
    """``2026-11-23 18:00`` (local time of the road) -> epoch milliseconds."""
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(tz))
    return int(dt.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class ClockPolicy:
    mode: ClockMode = "auto"
    tolerance_ms: int = DEFAULT_TOLERANCE_MS
    quiet_after_s: float = QUIET_AFTER_S


class Judgement(NamedTuple):
    """What road time makes of one reading's ``ts``. (A named tuple, not a frozen dataclass: one is
    built for every message the gateway takes in, and a tuple is built in a third of the time.)"""

    ts_ms: int  # the time to use: the device's own, or road time when the device's is out of tolerance
    offset_ms: int | None  # device ts minus road time (None while road time is unknown)
    corrected: bool  # this reading's ts was replaced by road time
    skewed: bool  # the pole's clock is out of tolerance (after hysteresis)
    road_ms: int | None  # road time as it stood after this reading (None while unknown)


class RoadClock:
    """One road's time (see the module docstring). Thread-safe.

    Readings are observed one by one in stream order (:meth:`observe`), and each is judged against
    road time as it stands after it, so the same stream gives the same judgements however it is
    cut into batches and however fast it is replayed.
    """

    def __init__(self, poles: Iterable[str], policy: ClockPolicy | None = None, *,
                 wall: Callable[[], int] = wall_ms, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or ClockPolicy()
        self._wall = wall
        self._mono = monotonic
        self._index = {p: i for i, p in enumerate(poles)}
        n = len(self._index)
        self.quorum = n // 3 + 1
        # road time is known once enough poles are heard that the k-th newest is an honest one
        # even if a third of those heard are behind: k honest plus k - 1 others
        self.known_after = 2 * self.quorum - 1
        self._latest: list[int | None] = [None] * n  # each pole's most recent reading ts
        self._sorted: list[int] = []  # the same values, sorted (k-th newest by index)
        self._mode: ClockMode | None = None if self.policy.mode == "auto" else self.policy.mode
        self._consensus: int | None = None
        self._moved_at = 0.0  # monotonic time the consensus last moved
        self._last_now: int | None = None  # road time never goes back
        self._out = [0] * n  # consecutive readings out of tolerance, per pole
        self._back = [0] * n  # consecutive readings back within it
        self._skewed = [False] * n
        self._offset: list[int | None] = [None] * n  # a skewed pole's estimated offset
        self._tol = self.policy.tolerance_ms
        self._lock = threading.Lock()

    def observe(self, pole: str, ts: int) -> Judgement:
        """Take one reading's device ``ts`` as evidence of road time, then judge it against road time."""
        with self._lock:
            i = self._index.get(pole)
            if i is None:
                return Judgement(ts, None, False, False, self._now_locked())
            old = self._latest[i]
            if old != ts:
                if old is not None:
                    del self._sorted[bisect.bisect_left(self._sorted, old)]
                bisect.insort(self._sorted, ts)
                self._latest[i] = ts
                if len(self._sorted) >= self.known_after:
                    kth = self._sorted[-self.quorum]
                    if self._consensus is None or kth > self._consensus:
                        self._consensus = kth
                        self._moved_at = self._mono()
                    if self._mode is None:
                        near = abs(self._consensus - self._wall()) <= self.policy.tolerance_ms
                        self._mode = "wall" if near else "devices"
            now = self._evidence_locked()
            # the common case, decided here without the general path: a reading within tolerance of
            # road time from a pole whose clock has been back within it for SKEW_AFTER readings (so
            # it is not skewed and has no offset estimate): nothing of the pole's state can change
            if now is not None and self._back[i] == SKEW_AFTER and -self._tol <= ts - now <= self._tol:
                return Judgement(ts, ts - now, False, False, now)
            return self._judge_at(i, ts, now)

    def judge(self, pole: str, ts: int) -> Judgement:
        """Judge a message that is not evidence of time (a state, an ack) against road time.

        Such a message may be old without any clock being wrong: a retained state is as old as the
        pole's last change (a gateway that starts is handed every pole's), an ack is late when the
        link or the platform was slow. So only one *ahead* of road time by more than the tolerance
        tells of a wrong clock (and counts towards the pole's skew like a reading); one behind is
        taken at its own time, unless the pole is already known to be skewed, when it is placed by
        the pole's estimated offset like its readings.
        """
        with self._lock:
            i = self._index.get(pole)
            if i is None:
                return Judgement(ts, None, False, False, self._now_locked())
            now = self._evidence_locked()
            if now is None:
                return Judgement(ts, None, False, False, None)
            offset = ts - now
            est = self._offset[i]
            if self._skewed[i] and est is not None:
                return Judgement(min(ts - est, now + self.policy.tolerance_ms), offset, True, True, now)
            if offset > self.policy.tolerance_ms:
                return self._judge_at(i, ts, now)
            return Judgement(ts, offset, False, self._skewed[i], now)

    def _evidence_locked(self) -> int | None:
        """Road time as the readings themselves say it: the consensus (on a live road no further
        than the tolerance past the wall clock). Never extrapolated: a stalled pipeline, or a
        backlog delivered late, is judged against the time of the stream it belongs to."""
        if self._consensus is None:
            return None
        if self._mode == "wall":
            return min(self._consensus, self._wall() + self.policy.tolerance_ms)
        return self._consensus

    def _judge_at(self, i: int, ts: int, now: int | None) -> Judgement:
        """Judge pole ``i``'s ``ts`` against road time ``now`` (from :meth:`_evidence_locked`)."""
        if now is None:
            return Judgement(ts, None, False, False, None)
        offset = ts - now
        tol = self.policy.tolerance_ms
        out = abs(offset) > tol
        if out:
            self._out[i] = min(self._out[i] + 1, SKEW_AFTER)
            self._back[i] = 0
            if self._out[i] >= SKEW_AFTER:
                self._skewed[i] = True
            # the pole's offset, estimated from its readings so far: the lowest seen since its clock
            # last changed (road time lags the pole's own stream while the rest of the road's
            # readings are still on their way, which adds to what a reading shows, never takes off)
            est = self._offset[i]
            if est is None or abs(offset - est) > tol:
                est = offset
            elif offset < est:
                est = offset
            self._offset[i] = est
            # placed at its own time less that offset, so it keeps its own cadence (a reading pinned to
            # road time as it stood on arrival would leave the pole looking silent while road time
            # catches up), and never past road time by more than the tolerance
            used = min(ts - est, now + tol)
        else:
            self._back[i] = min(self._back[i] + 1, SKEW_AFTER)
            self._out[i] = 0
            if self._back[i] >= SKEW_AFTER:
                self._skewed[i] = False
                self._offset[i] = None
            used = ts
        return Judgement(used, offset, out, self._skewed[i], now)

    # -- reading ---------------------------------------------------------------------------------
    @property
    def mode(self) -> ClockMode | None:
        """``wall`` or ``devices`` once decided (``None`` while ``auto`` has not decided yet)."""
        return self._mode

    def now_ms(self) -> int | None:
        """Road time now: the readings' time, moving on at real speed once they have not moved it
        for a moment (a quiet road), on a live road never past the wall clock and the wall clock
        itself until enough poles have reported; ``None`` on a replay until they have."""
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> int | None:
        evidence = self._evidence_locked()
        if evidence is None:
            if self._mode != "wall":
                return None
            now = self._wall()
        else:
            # readings that have not moved road time for a moment of wall time: the road (or most of
            # it) is quiet, and road time moves on at real speed so that the silence is noticed
            idle = self._mono() - self._moved_at
            now = evidence + int(idle * 1000) if idle > self.policy.quiet_after_s else evidence
            if self._mode == "wall":
                now = min(now, self._wall())
        if self._last_now is not None and now < self._last_now:
            return self._last_now
        self._last_now = now
        return now

    def skewed(self, pole: str) -> bool:
        i = self._index.get(pole)
        return i is not None and self._skewed[i]


class StreamTime:
    """Road time as far as one consumer of the message stream has been told.

    The gateway's clock runs ahead of what a consumer (the twins, the controller) has been handed:
    batches wait between being put on road time and being stored. A consumer judging silence on
    the clock's "now" would see poles silent that have reported, in messages still on their way.
    So it takes the road time of the last message it was given; once it has been given nothing
    for a moment, the road clock's own (which moves on over a quiet road), but never further past
    that last message than the wall time since it.
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic, quiet_after_s: float = QUIET_AFTER_S) -> None:
        self._mono = monotonic
        self.quiet_after_s = quiet_after_s
        self.ms: int | None = None  # road time of the last message given
        self._at = 0.0

    def given(self, road_ms: int | None) -> None:
        """A message was handed over, carrying road time ``road_ms`` (``None`` while unknown)."""
        if road_ms is not None and (self.ms is None or road_ms >= self.ms):
            self.ms, self._at = road_ms, self._mono()

    def now(self, clock_now: int | None) -> int | None:
        """Road time for this consumer, given the road clock's ``now_ms()``."""
        if self.ms is None or clock_now is None:
            return clock_now
        idle = self._mono() - self._at
        if idle <= self.quiet_after_s:
            return self.ms
        return max(self.ms, min(clock_now, self.ms + int(idle * 1000)))


class RoadClocks:
    """The clocks of every road a platform serves, by road id."""

    def __init__(self, roads: dict[str, Iterable[str]], policy: ClockPolicy | None = None, *,
                 wall: Callable[[], int] = wall_ms, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or ClockPolicy()
        self._wall = wall
        self.roads = {rid: RoadClock(poles, self.policy, wall=wall, monotonic=monotonic)
                      for rid, poles in roads.items()}

    def __getitem__(self, road: str) -> RoadClock:
        return self.roads[road]

    def now_ms(self, road: str | None = None) -> int | None:
        """Road time of ``road``; without one, that of the most advanced road (``None`` if none known)."""
        if road is not None:
            clock = self.roads.get(road)
            return clock.now_ms() if clock is not None else None
        known = [t for c in self.roads.values() if (t := c.now_ms()) is not None]
        return max(known) if known else None

    def now_or_wall(self, road: str | None = None) -> int:
        """Road time, or the wall clock while road time is unknown (nothing heard yet)."""
        now = self.now_ms(road)
        return now if now is not None else self._wall()
