"""Strict, fast parsing of protocol payloads.

Every rejection raises :class:`~streetlight.errors.ProtocolError` with a machine-readable
``reason``, one of :data:`REASONS`.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from ..errors import ProtocolError
from .messages import (
    COMMAND_MODELS,
    EVENT_MODELS,
    MAX_PAYLOAD,
    Ack,
    Alert,
    CabinetTelemetry,
    Command,
    Config,
    Event,
    Heartbeat,
    State,
    Telemetry,
)

REASONS = (
    "bad_topic", "unknown_road", "unknown_pole", "too_large", "not_utf8", "invalid_json", "non_finite",
    "duplicate_key", "not_object", "missing_field", "wrong_type", "out_of_range", "bad_value",
    "unknown_type", "duplicate", "bad_status",
    # version 1.1: a part of a message refused against the registry (the rest is kept)
    "unknown_port", "unknown_cabinet", "unknown_feeder", "energy_decreased",
)

M = TypeVar("M", bound=BaseModel)

_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "too_long", "too_short",
                 "string_too_long", "string_too_short", "int_too_big"}


def _count_keys_and_strings(obj: Any) -> int:
    """Number of quoted tokens (keys plus string values) a canonical encoding of ``obj`` has."""
    if isinstance(obj, dict):
        return sum(1 + _count_keys_and_strings(v) for v in obj.values())
    if isinstance(obj, list):
        return sum(_count_keys_and_strings(v) for v in obj)
    return 1 if isinstance(obj, str) else 0


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ProtocolError("duplicate_key", f"key {k!r} appears more than once", k)
        out[k] = v
    return out


def _no_constants(name: str) -> Any:
    raise ProtocolError("non_finite", f"{name} is not allowed", None)


def loads_object(raw: bytes | bytearray | memoryview | str) -> dict[str, Any]:
    """Decode a payload into a JSON object, enforcing the protocol's common rules."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    raw = bytes(raw)
    if len(raw) > MAX_PAYLOAD:
        raise ProtocolError("too_large", f"payload of {len(raw)} bytes exceeds {MAX_PAYLOAD}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        # orjson refuses some valid JSON (integers beyond 64 bits); the standard parser decides,
        # with the protocol's own rules for NaN/Infinity and duplicate keys
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("not_utf8", "payload is not valid UTF-8") from None
        try:
            obj = json.loads(raw, parse_constant=_no_constants, object_pairs_hook=_reject_duplicates)
        except ProtocolError:
            raise
        except (ValueError, RecursionError):
            raise ProtocolError("invalid_json", f"not valid JSON: {err}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("not_object", f"payload is a JSON {type(obj).__name__}, not an object")
    # Duplicate keys: orjson keeps the last one silently. If the quote count of the raw bytes is
    # exactly what the decoded object implies, no key was dropped (a duplicate adds quotes);
    # otherwise (escaped quotes, or a real duplicate) decide with the slow exact parser.
    if raw.count(b'"') != 2 * _count_keys_and_strings(obj):
        json.loads(raw, object_pairs_hook=_reject_duplicates)
    return obj


def _from_validation(err: ValidationError) -> ProtocolError:
    first = err.errors()[0]
    field = ".".join(str(x) for x in first["loc"]) or None
    kind = first["type"]
    if kind == "missing":
        reason = "missing_field"
    elif kind in _RANGE_ERRORS:
        reason = "out_of_range"
    elif kind in ("literal_error", "value_error", "string_pattern_mismatch", "finite_number"):
        reason = "bad_value"
    else:
        reason = "wrong_type"
    return ProtocolError(reason, first["msg"], field)


def _validate(model: type[M], obj: dict[str, Any]) -> M:
    try:
        return model.model_validate(obj)
    except ValidationError as err:
        raise _from_validation(err) from None


def parse_telemetry(raw: bytes) -> Telemetry:
    return _validate(Telemetry, loads_object(raw))


def parse_event(raw: bytes) -> Event:
    obj = loads_object(raw)
    kind = obj.get("type")
    model = EVENT_MODELS.get(kind, Event) if isinstance(kind, str) else Event
    return _validate(model, obj)


def parse_state(raw: bytes) -> State:
    return _validate(State, loads_object(raw))


def parse_status(raw: bytes) -> str:
    """``online`` or ``offline`` (a bare string, not JSON, per the page)."""
    text = bytes(raw).strip()
    if text == b"online":
        return "online"
    if text == b"offline":
        return "offline"
    raise ProtocolError("bad_status", f"status must be 'online' or 'offline', got {bytes(raw)[:40]!r}")


def parse_ack(raw: bytes) -> Ack:
    return _validate(Ack, loads_object(raw))


def parse_command(raw: bytes) -> Command:
    obj = loads_object(raw)
    kind = obj.get("type")
    model = COMMAND_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ProtocolError("unknown_type", f"unknown command type {kind!r}; known: {sorted(COMMAND_MODELS)}", "type")
    return _validate(model, obj)


def parse_config(raw: bytes) -> Config:
    return _validate(Config, loads_object(raw))


def parse_heartbeat(raw: bytes) -> Heartbeat:
    return _validate(Heartbeat, loads_object(raw))


def parse_alert(raw: bytes) -> Alert:
    return _validate(Alert, loads_object(raw))


def parse_cabinet_telemetry(raw: bytes) -> CabinetTelemetry:
    return _validate(CabinetTelemetry, loads_object(raw))


PARSERS = {
    "telemetry": parse_telemetry,
    "event": parse_event,
    "state": parse_state,
    "status": parse_status,
    "ack": parse_ack,
    "cmd": parse_command,
    "config": parse_config,
    "heartbeat": parse_heartbeat,
    "alerts": parse_alert,
}


def parse_payload(kind: str, raw: bytes) -> Any:
    """Parse the payload of a topic kind (see :mod:`.topics`)."""
    try:
        parser = PARSERS[kind]
    except KeyError:
        raise ProtocolError("bad_topic", f"no payload type for topic kind {kind!r}") from None
    return parser(raw)
