"""Plain text, TLV and SenML-JSON, and the link format of a register: values in, values out, and
every malformed payload refused with a named reason."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwm2m.codec import SENML_JSON, TEXT, TLV, decode, encode, parse_links
from lwm2m.errors import CodecError, UnsupportedFormat

COMMAND, DIM, FAILURE, VOLTAGE = (3416, 0, 1), (3416, 0, 3), (3416, 0, 5), (3418, 0, 1)


@pytest.mark.parametrize("fmt", [TEXT, TLV, SENML_JSON])
@pytest.mark.parametrize(("path", "value"), [(COMMAND, 30), (DIM, 0), (FAILURE, True), (FAILURE, False),
                                             (VOLTAGE, 229.5), ((3, 0, 0), "Vendor 路灯")])
def test_every_format_round_trips(fmt, path, value):
    assert decode(fmt, encode(fmt, path, value), path) == {path: value}


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_tlv_integers_of_every_width(n):
    assert decode(TLV, encode(TLV, COMMAND, n), COMMAND) == {COMMAND: n}


def test_text_booleans_as_the_field_sends_them():
    assert decode(TEXT, b"true", FAILURE) == {FAILURE: True}
    assert decode(None, b"0", FAILURE) == {FAILURE: False}  # no Content-Format: plain text


def test_tlv_of_an_object_instance_and_of_an_object():
    body = encode(TLV, (3418, 0, 1), 230.0) + encode(TLV, (3418, 0, 4), 84.0)
    assert decode(TLV, body, (3418, 0)) == {(3418, 0, 1): 230.0, (3418, 0, 4): 84.0}
    wrapped = bytes([0x08 | 0x00, 0, len(body)]) + body  # object instance 0, 8-bit length
    assert decode(TLV, wrapped, (3418,)) == {(3418, 0, 1): 230.0, (3418, 0, 4): 84.0}


def test_senml_with_a_base_name_for_several_resources():
    body = orjson.dumps([{"bn": "/3418/0/", "n": "1", "v": 231}, {"n": "4", "v": 80.5}, {"n": "5", "v": 0.9}])
    assert decode(SENML_JSON, body, (3418, 0)) == {(3418, 0, 1): 231.0, (3418, 0, 4): 80.5, (3418, 0, 5): 0.9}


@pytest.mark.parametrize(("fmt", "payload", "path"), [
    (TEXT, b"abc", VOLTAGE), (TEXT, b"nan", VOLTAGE), (TEXT, b"30.5", COMMAND), (TEXT, b"yes", FAILURE),
    (TEXT, b"\xff\xfe", VOLTAGE), (TEXT, b"1", (3418, 0)),
    (TLV, b"\xc8", DIM), (TLV, b"\xc8\x03\x05\x01", DIM), (TLV, b"\xc3\x03\x00\x00\x01", DIM),
    (TLV, b"\xc1\x05\x02", FAILURE), (TLV, b"\xc3\x01\x00\x00\x00", VOLTAGE), (TLV, b"\x41\x01\x00", (3418, 0)),
    (SENML_JSON, b"{", VOLTAGE), (SENML_JSON, b"{}", VOLTAGE), (SENML_JSON, b"[]", VOLTAGE),
    (SENML_JSON, b'[{"n": "/3418/0/1", "v": "230"}]', VOLTAGE), (SENML_JSON, b'[{"n": "/3416/0/5", "v": 1}]', FAILURE),
    (SENML_JSON, b'[{"n": "/x/0/1", "v": 1}]', VOLTAGE), (SENML_JSON, b'[{"n": "/3418/0/1"}]', VOLTAGE),
    (SENML_JSON, b'[{"n": "/3418/0/1", "v": 1, "vb": true}]', VOLTAGE), (SENML_JSON, b"[1]", VOLTAGE),
    (TEXT, b"1" * 20_000, VOLTAGE),
])
def test_malformed_payloads_are_refused_with_a_reason(fmt, payload, path):
    with pytest.raises(CodecError) as info:
        decode(fmt, payload, path)
    assert info.value.reason == "bad_payload" and info.value.detail


def test_an_unknown_content_format_is_named():
    with pytest.raises(UnsupportedFormat) as info:
        decode(60, b"\xa0", VOLTAGE)  # CBOR
    assert info.value.reason == "unsupported_format" and "60" in info.value.detail


def test_unknown_resources_are_kept_raw_for_the_caller_to_count():
    assert decode(TEXT, b"x", (3416, 0, 999)) == {(3416, 0, 999): "x"}


def test_register_links():
    assert parse_links(b'</>;rt="oma.lwm2m",</3/0>,</3416/0>,</3418/0>;ver=2.0') == [(3, 0), (3416, 0), (3418, 0)]
    assert parse_links(b"") == []
    for bad in (b"3416/0", b"</3416/x>", b"</1/2/3/4/5>", b"\xff"):
        with pytest.raises(CodecError):
            parse_links(bad)
