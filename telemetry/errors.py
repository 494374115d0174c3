"""Errors of the telemetry package.

    StreetlightError
    └── TelemetryError                 base of every storage error
        ├── WriteError                 a write did not go through; ``retryable`` says whether the
        │   │                          same bytes may succeed later
        │   ├── DatabaseUnavailable    connection refused/reset, timeout or 5xx: retryable, the
        │   │                          batch goes to the spool
        │   └── BadPoints              400 (type conflict, unparsable point): never retried, the
        │                              offending lines go to the dead-letter file
        ├── SpoolFull                  the on-disk spool reached its byte limit; nothing was
        │                              written, the caller must hold the data (do not ack it)
        └── QueryError                 an InfluxQL query failed (bad query or database away)
"""

from __future__ import annotations

from streetlight.errors import StreetlightError


class TelemetryError(StreetlightError):
    """Base of the telemetry package's errors."""


class WriteError(TelemetryError):
    retryable = False

    def __init__(self, detail: str, status: int | None = None) -> None:
        self.detail = detail
        self.status = status
        super().__init__(f"InfluxDB write failed ({status or 'no response'}): {detail}")


class DatabaseUnavailable(WriteError):
    retryable = True


class BadPoints(WriteError):
    retryable = False


class SpoolFull(TelemetryError):
    def __init__(self, path: str, limit: int) -> None:
        self.path = path
        self.limit = limit
        super().__init__(f"spool {path} is full ({limit} bytes); raise the limit or bring InfluxDB back")


class QueryError(TelemetryError):
    def __init__(self, query: str, detail: str) -> None:
        self.query = query
        self.detail = detail
        super().__init__(f"InfluxQL query failed: {detail} (query: {query[:200]})")
