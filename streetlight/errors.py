"""The shared exception tree.

    StreetlightError                 base of every error the platform raises on purpose
    ├── ProtocolError                a message or topic breaks the device protocol (``reason`` is
    │                                machine-readable, e.g. ``duplicate_key``, ``out_of_range``)
    ├── RegistryError                a road registry file is wrong; ``problems`` lists every
    │                                (pole, field, message) found, not just the first
    ├── UnknownRoadError             a road id that no registry knows
    └── ServerStartError             a local Mosquitto/InfluxDB could not be started

Other packages define their own trees below ``StreetlightError`` (see their ``errors`` modules).
"""

from __future__ import annotations

from dataclasses import dataclass


class StreetlightError(Exception):
    """Base of all errors raised on purpose by the platform."""


class ProtocolError(StreetlightError):
    """A payload or topic that breaks ``docs/protocol.md``.

    ``reason`` is a short machine-readable code, stable across versions, used to count
    rejections; ``detail`` is for people; ``field`` names the offending field when there is one.
    """

    def __init__(self, reason: str, detail: str, field: str | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.field = field
        where = f" (field {field!r})" if field else ""
        super().__init__(f"{reason}: {detail}{where}")


@dataclass(frozen=True, slots=True)
class RegistryProblem:
    pole: str | None
    field: str
    message: str

    def __str__(self) -> str:
        who = f"pole {self.pole}" if self.pole else "road"
        return f"{who}: {self.field}: {self.message}"


class RegistryError(StreetlightError):
    """A registry file with one or more problems; all of them are in ``problems``."""

    def __init__(self, source: str, problems: list[RegistryProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) in the road registry:\n{lines}")


class UnknownRoadError(StreetlightError):
    def __init__(self, road: str, known: list[str]) -> None:
        self.road = road
        self.known = known
        super().__init__(
            f"unknown road {road!r}; known roads: {', '.join(known) or 'none'} "
            "(or pass a registry file path, or 'synthetic:N' for a synthetic road of N poles)"
        )


class ServerStartError(StreetlightError):
    def __init__(self, server: str, detail: str) -> None:
        self.server = server
        self.detail = detail
        super().__init__(f"could not start {server}: {detail}")
