"""LwM2M payloads: plain text, TLV and SenML-JSON values, and the CoRE link format of a register.

``decode`` turns a payload into ``{(object, instance, resource): value}`` typed by
:data:`lwm2m.objects.RESOURCES`; ``encode`` writes one resource value in any of the three.
Anything malformed raises :class:`~lwm2m.errors.CodecError` naming what is wrong.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator

import orjson

from .errors import CodecError, UnsupportedFormat
from .objects import Kind, Path, kind_of, parse_path

TEXT, LINK_FORMAT, SENML_JSON, TLV = 0, 40, 110, 11542
OLD_TEXT, OLD_TLV = 1541, 1542  # the pre-1.0 numbers some LwM2M 1.0 stacks still send
FORMATS = {"text": TEXT, "tlv": TLV, "senml-json": SENML_JSON}
MAX_PAYLOAD = 16 * 1024
Value = int | float | bool | str


# -- single values ----------------------------------------------------------------------------------
def _from_text(kind: Kind, text: str) -> Value:
    t = text.strip()
    if kind == "string":
        return text
    if kind == "boolean":
        # the specification says 0/1; several stacks in the field send true/false
        if t in ("1", "true", "True"):
            return True
        if t in ("0", "false", "False"):
            return False
        raise CodecError(f"not a boolean: {t[:40]!r}")
    try:
        number = float(t)
    except ValueError:
        raise CodecError(f"not a number: {t[:40]!r}") from None
    if not math.isfinite(number):
        raise CodecError(f"not a finite number: {t[:40]!r}")
    if kind in ("integer", "time"):
        if number != int(number):
            raise CodecError(f"not an integer: {t[:40]!r}")
        return int(number)
    return number


def _check(kind: Kind, value: object) -> Value:
    """A JSON value of the right kind (bool is not a number, a number is not a bool)."""
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "string" and isinstance(value, str):
        return value
    if kind in ("integer", "time", "float") and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise CodecError("not a finite number")
        if kind != "float":
            if value != int(value):
                raise CodecError(f"not an integer: {value!r}")
            return int(value)
        return float(value)
    raise CodecError(f"expected a {kind}, got {type(value).__name__}")


def _from_tlv_bytes(kind: Kind, raw: bytes) -> Value:
    if kind == "string":
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise CodecError("a string value that is not UTF-8") from None
    if kind == "boolean":
        if raw not in (b"\x00", b"\x01"):
            raise CodecError(f"a TLV boolean is one byte 0 or 1, got {raw[:8].hex()}")
        return raw == b"\x01"
    if kind == "float":
        if len(raw) not in (4, 8):
            raise CodecError(f"a TLV float has 4 or 8 bytes, got {len(raw)}")
        number = struct.unpack(">f" if len(raw) == 4 else ">d", raw)[0]
        if not math.isfinite(number):
            raise CodecError("not a finite number")
        return float(number)
    if len(raw) not in (1, 2, 4, 8):
        raise CodecError(f"a TLV integer has 1, 2, 4 or 8 bytes, got {len(raw)}")
    return int.from_bytes(raw, "big", signed=True)


# -- TLV --------------------------------------------------------------------------------------------
def _tlv(buf: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(type, id, value) of each TLV entry at this level."""
    i = 0
    while i < len(buf):
        head = buf[i]
        i += 1
        typ = head >> 6
        id_len = 2 if head & 0x20 else 1
        len_type = (head >> 3) & 0x03
        if i + id_len + len_type > len(buf):
            raise CodecError("TLV entry cut short")
        ident = int.from_bytes(buf[i:i + id_len], "big")
        i += id_len
        if len_type == 0:
            length = head & 0x07
        else:
            length = int.from_bytes(buf[i:i + len_type], "big")
            i += len_type
        if i + length > len(buf):
            raise CodecError(f"TLV entry {ident} says {length} bytes but {len(buf) - i} are left")
        yield typ, ident, buf[i:i + length]
        i += length


def _decode_tlv(payload: bytes, base: tuple[int, ...]) -> dict[Path, Value]:
    out: dict[Path, Value] = {}

    def resources(obj: int, inst: int, buf: bytes) -> None:
        for typ, rid, value in _tlv(buf):
            if typ == 3:
                kind = kind_of((obj, inst, rid))
                if kind is None:
                    out[(obj, inst, rid)] = value.hex()  # kept raw: the caller counts it as unknown
                else:
                    out[(obj, inst, rid)] = _from_tlv_bytes(kind, value)
            elif typ == 2:
                list(_tlv(value))  # multiple-instance resources are not read here, but must be well formed
            else:
                raise CodecError(f"TLV type {typ} inside an object instance")

    if len(base) == 1:
        for typ, inst, value in _tlv(payload):
            if typ != 0:
                raise CodecError("an object's TLV must hold object instances")
            resources(base[0], inst, value)
    elif len(base) == 2:
        resources(base[0], base[1], payload)
    elif len(base) == 3:
        resources(base[0], base[1], payload)
    else:
        raise CodecError(f"cannot read TLV for the path {base}")
    return out


def _tlv_entry(typ: int, ident: int, value: bytes) -> bytes:
    head = typ << 6
    id_bytes = ident.to_bytes(2 if ident > 255 else 1, "big")
    if ident > 255:
        head |= 0x20
    n = len(value)
    if n < 8:
        return bytes([head | n]) + id_bytes + value
    size = 1 if n < 1 << 8 else 2 if n < 1 << 16 else 3
    return bytes([head | size << 3]) + id_bytes + n.to_bytes(size, "big") + value


def _tlv_value(kind: Kind, value: Value) -> bytes:
    if kind == "string":
        return str(value).encode()
    if kind == "boolean":
        return b"\x01" if value else b"\x00"
    if kind == "float":
        return struct.pack(">d", float(value))
    n = int(value)
    for size in (1, 2, 4, 8):
        if -(1 << (8 * size - 1)) <= n < 1 << (8 * size - 1):
            return n.to_bytes(size, "big", signed=True)
    raise CodecError(f"integer out of range: {n}")


# -- SenML-JSON -------------------------------------------------------------------------------------
def _decode_senml(payload: bytes) -> dict[Path, Value]:
    try:
        records = orjson.loads(payload)
    except orjson.JSONDecodeError as err:
        raise CodecError(f"SenML-JSON that is not JSON: {err}") from None
    if not isinstance(records, list) or not records:
        raise CodecError("SenML-JSON must be a non-empty array of records")
    out: dict[Path, Value] = {}
    bn = ""
    for rec in records:
        if not isinstance(rec, dict):
            raise CodecError("a SenML record must be an object")
        if "bn" in rec:
            if not isinstance(rec["bn"], str):
                raise CodecError("SenML bn must be a string")
            bn = rec["bn"]
        name = rec.get("n", "")
        if not isinstance(name, str):
            raise CodecError("SenML n must be a string")
        try:
            path = parse_path(bn + name)
        except ValueError as err:
            raise CodecError(str(err)) from None
        if len(path) != 3:
            continue  # a resource instance (4 ids) or a bare base record: not read here
        given = [k for k in ("v", "vb", "vs", "vd") if k in rec]
        if len(given) != 1:
            if not given and "bn" in rec:
                continue
            raise CodecError(f"SenML record {bn + name} needs exactly one of v, vb, vs")
        kind = kind_of((path[0], path[1], path[2]))
        raw = rec[given[0]]
        key = (path[0], path[1], path[2])
        out[key] = _check(kind, raw) if kind is not None else str(raw)
    return out


# -- entry points -----------------------------------------------------------------------------------
def decode(content_format: int | None, payload: bytes, base: tuple[int, ...]) -> dict[Path, Value]:
    """Values in ``payload`` read from the path ``base`` (object, instance[, resource])."""
    if len(payload) > MAX_PAYLOAD:
        raise CodecError(f"payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
    if content_format in (None, TEXT, OLD_TEXT):
        if len(base) != 3:
            raise CodecError("a plain-text value needs a resource path")
        path = (base[0], base[1], base[2])
        kind = kind_of(path)
        try:
            text = payload.decode()
        except UnicodeDecodeError:
            raise CodecError("plain text that is not UTF-8") from None
        return {path: _from_text(kind, text) if kind is not None else text}
    if content_format in (TLV, OLD_TLV):
        return _decode_tlv(payload, base)
    if content_format == SENML_JSON:
        return _decode_senml(payload)
    raise UnsupportedFormat(f"content format {content_format} is not decoded here (text, TLV, SenML-JSON are)")


def encode(content_format: int, path: Path, value: Value) -> bytes:
    """One resource value, as a Write carries it."""
    kind = kind_of(path)
    if kind is None:
        raise CodecError(f"unknown resource {path}")
    if content_format == TEXT:
        if kind == "boolean":
            return b"1" if value else b"0"
        if kind in ("integer", "time"):
            return str(int(value)).encode()
        return (repr(float(value)) if kind == "float" else str(value)).encode()
    if content_format == TLV:
        return _tlv_entry(3, path[2], _tlv_value(kind, value))
    if content_format == SENML_JSON:
        key = "vb" if kind == "boolean" else "vs" if kind == "string" else "v"
        return orjson.dumps([{"bn": f"/{path[0]}/{path[1]}/", "n": str(path[2]), key: value}])
    raise UnsupportedFormat(f"content format {content_format} is not written here")


LINK_RE = re.compile(r"<([^>]*)>")


def parse_links(payload: bytes) -> list[tuple[int, ...]]:
    """The object instances of a register's link format (``</3416/0>,</3418/0>``); ``</>`` and
    attributes are ignored."""
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        raise CodecError("link format that is not UTF-8") from None
    links = LINK_RE.findall(text)
    if text.strip() and not links:
        raise CodecError(f"not CoRE link format: {text[:60]!r}")
    out: list[tuple[int, ...]] = []
    for link in links:
        if link.strip("/") == "":
            continue
        try:
            out.append(parse_path(link))
        except ValueError as err:
            raise CodecError(str(err)) from None
    return out
