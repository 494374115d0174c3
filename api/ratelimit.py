"""A token bucket per bearer token for the command routes (a stuck script cannot flood the road)."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, monotonic time)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0.0 if the request may go now, else the seconds to wait before the next one."""
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate if self.rate > 0 else 60.0


class FailureThrottle:
    """Failed authentications per client address: past ``limit`` in a minute, the address waits.

    A guesser of tokens meets this long before anything else: a refused address is told when to
    come back (429 ``Retry-After``) and is not even looked up, so 16,000 guesses in ten seconds
    cost one dictionary look-up each. The table is bounded: at ``max_addresses`` the quietest
    addresses are forgotten first.
    """

    def __init__(self, limit: int, window_s: float = 60.0, max_addresses: int = 100_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_addresses = max_addresses
        self._failures: dict[str, tuple[float, int]] = {}  # address -> (window start, failures in it)
        self._lock = threading.Lock()

    def wait(self, address: str) -> float:
        """0.0 if ``address`` may try now, else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            start, count = self._failures.get(address, (now, 0))
            if now - start >= self.window_s:
                return 0.0
            return self.window_s - (now - start) if count >= self.limit else 0.0

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            start, count = self._failures.get(address, (now, 0))
            if now - start >= self.window_s:
                start, count = now, 0
            self._failures[address] = (start, count + 1)
            if len(self._failures) > self.max_addresses:
                for key, _ in sorted(self._failures.items(), key=lambda kv: kv[1][1])[: self.max_addresses // 10]:
                    del self._failures[key]
