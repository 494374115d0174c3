"""Clocks. Every decision is taken on message time (``ts``), never on the wall clock.

* :class:`EventClock` — the platform's clock: the latest device ``ts`` seen, so a replay at any
  speed gives the same results; between messages it moves on with the wall clock at the rate
  observed, so heartbeats keep flowing when a road is quiet.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_local(text: str, tz: str = "Asia/Shanghai") -> int:
    """``2026-11-23 18:00`` (local time of the road) -> epoch milliseconds."""
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(tz))
    return int(dt.timestamp() * 1000)


class EventClock:
    """Platform time: the newest ``ts`` observed, extrapolated at the observed rate."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ts: int | None = None
        self._wall = 0.0
        self._rate = 1.0  # observed simulated ms per wall ms

    def observe(self, ts_ms: int) -> None:
        now = time.monotonic()
        with self._lock:
            if self._ts is None:
                self._ts, self._wall = ts_ms, now
                return
            if ts_ms > self._ts:
                dwall = (now - self._wall) * 1000.0
                if dwall > 50:
                    self._rate = max(1.0, min(10_000.0, (ts_ms - self._ts) / dwall))
                    self._wall = now
                self._ts = ts_ms

    def now_ms(self) -> int | None:
        """Platform time, or ``None`` before any message has been seen."""
        with self._lock:
            if self._ts is None:
                return None
            return self._ts + int((time.monotonic() - self._wall) * 1000.0 * min(self._rate, 1.0))
