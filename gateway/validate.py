"""Topic and payload validation against the protocol page and the served roads.

The common case (a well-formed telemetry) takes a fast path with exactly the protocol's
semantics: one ``orjson`` decode, a quote count proving there is no duplicate key and no string
value, then the strict pydantic model. Anything else, or any doubt, goes through
:func:`streetlight.protocol.parse_payload`, which decides and names the reason.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from streetlight.errors import ProtocolError
from streetlight.protocol import MAX_PAYLOAD, UPLINK_KINDS, Telemetry, parse_payload, parse_topic
from streetlight.registry import Road

from .inbound import Inbound


class Validator:
    def __init__(self, roads: list[Road]) -> None:
        self.roads = {r.id: r for r in roads}
        self._topics: dict[str, tuple[str, str, str]] = {}  # valid topics only: bounded by the registry

    def topic(self, topic: str) -> tuple[str, str, str]:
        """(road, pole, kind) of an uplink topic; raises ProtocolError (bad_topic, unknown_road/pole)."""
        hit = self._topics.get(topic)
        if hit is not None:
            return hit
        t = parse_topic(topic)
        if t.kind not in UPLINK_KINDS or t.pole is None:
            raise ProtocolError("bad_topic", f"{t.kind!r} is not a pole-to-platform topic", "topic")
        road = self.roads.get(t.road)
        if road is None:
            raise ProtocolError("unknown_road", f"road {t.road!r} is not served here ({', '.join(self.roads)})", "topic")
        if not road.has_pole(t.pole):
            raise ProtocolError("unknown_pole", f"pole {t.pole!r} is not in road {t.road!r}", "topic")
        self._topics[topic] = (t.road, t.pole, t.kind)
        return t.road, t.pole, t.kind

    def message(self, road: str, pole: str, kind: str, payload: bytes, now_ms: int) -> Inbound:
        """Parse the payload; ``now_ms`` stands in for ``ts`` on a status (which has none)."""
        ts, msg = self.parse(kind, payload, now_ms)
        return Inbound(road, pole, kind, ts, msg)

    @staticmethod
    def parse(kind: str, payload: bytes, now_ms: int) -> tuple[int, Any]:
        """(ts, parsed message) of a payload, as :meth:`message` without building the Inbound (the
        pipeline builds it once, on road time); raises ProtocolError."""
        if kind == "telemetry":
            fast = _fast_telemetry(payload)
            if fast is not None:
                return fast.ts, fast
        msg = parse_payload(kind, payload)
        return (now_ms if kind == "status" else msg.ts), msg


def _fast_telemetry(payload: bytes) -> Telemetry | None:
    if len(payload) > MAX_PAYLOAD:
        return None
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    # two quotes per top-level key and none elsewhere: no duplicate key was folded away by the
    # decoder and no value is a string or a nested object
    if type(obj) is not dict or payload.count(b'"') != 2 * len(obj):
        return None
    try:
        return Telemetry.model_validate(obj)
    except ValidationError:
        return None  # the slow path names the reason
