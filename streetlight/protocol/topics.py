"""The topic grammar of the device protocol, in one place.

    sl/v1/{road}/{pole}/{kind}     kind: telemetry event state status ack cmd config
    sl/v1/{road}/heartbeat
    sl/v1/{road}/alerts
    sl/v1/{road}/cabinet/{cabinet}/{kind}   kind: telemetry status (version 1.1)

and the platform's own mirror, outside the device contract (no device writes or reads it):

    sl/mirror/v1/{road}/{pole}/{kind}  kind: an uplink kind; what another edge (LwM2M) handed to
                                       the gateway, for the API processes' read model
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..errors import ProtocolError

PREFIX = "sl/v1"
ID_RE = re.compile(r"^[A-Za-z0-9-]{1,32}$")
POLE_KINDS = ("telemetry", "event", "state", "status", "ack", "cmd", "config")
ROAD_KINDS = ("heartbeat", "alerts")
UPLINK_KINDS = ("telemetry", "event", "state", "status", "ack")  # pole -> platform
DOWNLINK_KINDS = ("cmd", "config")  # platform -> pole
CABINET_KINDS = ("telemetry", "status")  # cabinet -> platform
CABINET = "cabinet"
# outside ``sl/v1``: no gateway subscription (``sl/v1/+/+/…``, shared or not) and no device ACL line
# matches it, so what is mirrored there is never ingested or stored a second time
MIRROR_PREFIX = "sl/mirror/v1"

Kind = Literal["telemetry", "event", "state", "status", "ack", "cmd", "config", "heartbeat", "alerts"]


def _check_id(value: str, what: str) -> str:
    if not ID_RE.match(value):
        raise ProtocolError("bad_topic", f"{what} {value!r} does not match [A-Za-z0-9-]{{1,32}}", what)
    return value


@dataclass(frozen=True, slots=True)
class Topic:
    """A concrete (wildcard-free) protocol topic."""

    road: str
    kind: Kind
    pole: str | None = None
    cabinet: str | None = None  # a distribution cabinet's topic (then ``pole`` is None)

    def __post_init__(self) -> None:
        _check_id(self.road, "road")
        if self.cabinet is not None:
            _check_id(self.cabinet, "cabinet")
            if self.pole is not None or self.kind not in CABINET_KINDS:
                raise ProtocolError("bad_topic", f"a cabinet topic is one of {CABINET_KINDS}, not {self.kind!r}",
                                    "kind")
        elif self.kind in POLE_KINDS:
            if self.pole is None:
                raise ProtocolError("bad_topic", f"a {self.kind} topic needs a pole", "pole")
            _check_id(self.pole, "pole")
        elif self.kind in ROAD_KINDS:
            if self.pole is not None:
                raise ProtocolError("bad_topic", f"a {self.kind} topic is per road, not per pole", "pole")
        else:
            raise ProtocolError("bad_topic", f"unknown topic kind {self.kind!r}", "kind")

    def __str__(self) -> str:
        if self.cabinet is not None:
            return f"{PREFIX}/{self.road}/{CABINET}/{self.cabinet}/{self.kind}"
        if self.pole is None:
            return f"{PREFIX}/{self.road}/{self.kind}"
        return f"{PREFIX}/{self.road}/{self.pole}/{self.kind}"


def pole_topic(road: str, pole: str, kind: Kind) -> str:
    return str(Topic(road, kind, pole))


def road_topic(road: str, kind: Kind) -> str:
    return str(Topic(road, kind))


def cabinet_topic(road: str, cabinet: str, kind: Literal["telemetry", "status"]) -> str:
    return str(Topic(road, kind, None, cabinet))


def parse_topic(topic: str) -> Topic:
    """Parse a topic string; raises :class:`ProtocolError` (``bad_topic``) if it is not in the grammar."""
    parts = topic.split("/")
    if len(parts) == 5 and parts[0] == "sl" and parts[1] == "v1" and parts[4] in POLE_KINDS:
        return Topic(parts[2], parts[4], parts[3])  # type: ignore[arg-type]
    if len(parts) == 6 and parts[0] == "sl" and parts[1] == "v1" and parts[3] == CABINET and parts[5] in CABINET_KINDS:
        return Topic(parts[2], parts[5], None, parts[4])  # type: ignore[arg-type]
    if len(parts) == 4 and parts[0] == "sl" and parts[1] == "v1" and parts[3] in ROAD_KINDS:
        return Topic(parts[2], parts[3])  # type: ignore[arg-type]
    raise ProtocolError("bad_topic", f"topic {topic[:200]!r} is not in the protocol grammar", "topic")


def subscription(road: str = "+", kind: str = "+", pole: str = "+") -> str:
    """A subscription filter for pole topics, e.g. ``sl/v1/+/+/telemetry``."""
    return f"{PREFIX}/{road}/{pole}/{kind}"


def cabinet_subscription(road: str = "+", kind: str = "+", cabinet: str = "+") -> str:
    """A subscription filter for cabinet topics, e.g. ``sl/v1/+/cabinet/+/telemetry``."""
    return f"{PREFIX}/{road}/{CABINET}/{cabinet}/{kind}"


def shared(group: str, topic_filter: str) -> str:
    """An MQTT 5 shared subscription so several gateway processes split the load."""
    return f"$share/{group}/{topic_filter}"


def mirror_topic(topic: str) -> str:
    """The mirror of a pole's uplink topic (``sl/v1/r/p/telemetry`` → ``sl/mirror/v1/r/p/telemetry``)."""
    t = parse_topic(topic)
    if t.pole is None or t.kind not in UPLINK_KINDS:
        raise ProtocolError("bad_topic", f"only a pole's uplink topic is mirrored, not {topic[:200]!r}", "topic")
    return f"{MIRROR_PREFIX}/{t.road}/{t.pole}/{t.kind}"


def unmirror(topic: str) -> str | None:
    """The protocol topic a mirror topic stands for; ``None`` when ``topic`` is not on the mirror."""
    if not topic.startswith(MIRROR_PREFIX + "/"):
        return None
    return PREFIX + topic[len(MIRROR_PREFIX):]


def mirror_subscription(road: str = "+", kind: str = "+") -> str:
    """A subscription filter for mirrored uplink messages, e.g. ``sl/mirror/v1/nanhuan-1/+/telemetry``."""
    return f"{MIRROR_PREFIX}/{road}/+/{kind}"
