"""Errors of the gateway package.

    StreetlightError
    └── GatewayError               base of the gateway's own errors
        ├── NotConnected           an operation needs the broker and the gateway is not connected
        └── UnknownPoleError       a command or config for a road/pole this gateway does not serve

Invalid device messages are not exceptions here: they are :class:`streetlight.errors.ProtocolError`
inside the pipeline, counted and kept by :mod:`.rejected`, never raised to a caller.
"""

from __future__ import annotations

from streetlight.errors import StreetlightError


class GatewayError(StreetlightError):
    """Base of the gateway's errors."""


class NotConnected(GatewayError):
    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(f"not connected to the broker at {url}; start the gateway or check the broker")


class UnknownPoleError(GatewayError):
    def __init__(self, road: str, pole: str | None) -> None:
        self.road = road
        self.pole = pole
        what = f"pole {pole!r} of road {road!r}" if pole else f"road {road!r}"
        super().__init__(f"{what} is not served by this gateway (check the configured roads)")
