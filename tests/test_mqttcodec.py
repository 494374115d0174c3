"""The one MQTT packet codec: what it encodes, the stream cut back into the same packets."""

from __future__ import annotations

import pytest

from streetlight import mqttcodec as mc


@pytest.mark.parametrize("n", [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455])
def test_varint_reads_back_what_it_writes(n: int) -> None:
    b = mc.varint(n)
    assert len(b) == 1 + (n >= 128) + (n >= 16_384) + (n >= 2_097_152)
    assert mc.read_varint(b, 0) == (n, len(b))
    assert mc.read_varint(b[:-1], 0) == (-1, 0)  # cut short: not yet a number


def test_a_remaining_length_of_five_bytes_is_malformed() -> None:
    with pytest.raises(mc.MalformedPacket):
        mc.read_varint(b"\xff\xff\xff\xff\x01", 0)


def test_publishes_scan_back_in_order_across_any_cut() -> None:
    msgs = [(f"sl/v1/r/P-{i}/telemetry", b"x" * (i * 37), i % 2 == 0) for i in range(12)]
    data, nxt, n = mc.publishes(msgs, 65_530)
    assert n == 12 and nxt == 65_530 + 12 - 65_535
    for cut in (0, 1, 2, 5, 200, len(data) // 2, len(data) - 1):
        first, used = mc.scan(data[:cut])
        rest, used2 = mc.scan(data[used:])
        assert used + used2 == len(data)
        got = first + rest
        assert [(t, p) for _, _, t, _, p in got] == [(t, p) for t, p, _ in msgs]
        assert [mid for *_, mid, _ in got] == [65_530, 65_531, 65_532, 65_533, 65_534, 65_535, 1, 2, 3, 4, 5, 6]
        assert [bool(flags & 1) for _, flags, *_ in got] == [r for *_, r in msgs]
        assert all((flags >> 1) & 3 == 1 for _, flags, *_ in got)


def test_one_publish_matches_the_batch_encoder() -> None:
    assert mc.publish("a/b", b"{}", 7) == mc.publishes([("a/b", b"{}", False)], 7)[0]
    assert mc.publish("a/b", b"{}", 7, retain=True) == mc.publishes([("a/b", b"{}", True)], 7)[0]


def test_mqtt5_publish_properties_are_skipped() -> None:
    body = mc.string("t/1") + b"\x00\x09" + b"\x03\x01\x01\x00" + b"payload"  # 3 bytes of properties
    pkts, used = mc.scan(mc.packet(mc.PUBLISH, 0x02, body), version=mc.MQTT_5)
    assert pkts == [(mc.PUBLISH, 0x02, "t/1", 9, b"payload")] and used == len(body) + 2
    qos0 = mc.publish("t/2", b"p", qos=0, version=mc.MQTT_5)
    assert mc.scan(qos0, version=mc.MQTT_5)[0] == [(mc.PUBLISH, 0, "t/2", 0, b"p")]


def test_control_packets() -> None:
    stream = mc.puback(513) + mc.pubacks([1, 2]) + mc.PINGREQ_PACKET + b"\x90\x04\x00\x05\x01\x80"
    pkts, used = mc.scan(stream)
    assert used == len(stream)
    assert [(k, mid) for k, _, _, mid, _ in pkts] == [(mc.PUBACK, 513), (mc.PUBACK, 1), (mc.PUBACK, 2),
                                                     (mc.PINGREQ, 0), (mc.SUBACK, 5)]
    assert mc.suback_codes(pkts[-1][4]) == b"\x01\x80"
    assert mc.suback_codes(b"\x00\x05\x00\x01", version=mc.MQTT_5) == b"\x01"
    assert mc.connack(b"\x01\x00") == (True, 0) and mc.connack(b"\x00\x05") == (False, 5)


def test_connect_flags_and_fields() -> None:
    pkt = mc.connect("sl-1", keepalive_s=30, username="u", password="p", will=("s/t", b"offline"))
    pkts, _ = mc.scan(pkt)
    kind, _, _, _, body = pkts[0]
    assert kind == mc.CONNECT
    assert body[:7] == mc.string("MQTT") + b"\x04" and body[7] == 0x02 | 0x04 | 0x08 | 0x20 | 0x80 | 0x40
    assert body[8:10] == b"\x00\x1e"
    assert body[10:] == mc.string("sl-1") + mc.string("s/t") + mc.string(b"offline") + mc.string("u") + mc.string("p")
    v5 = mc.connect("g", version=mc.MQTT_5, clean=False, properties=b"\x21\x00\x10")
    body5 = mc.scan(v5)[0][0][4]
    assert body5[6:8] == b"\x05\x00" and body5[10:14] == b"\x03\x21\x00\x10"
