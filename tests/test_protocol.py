import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streetlight.errors import ProtocolError
from streetlight.protocol import (
    Ack,
    Config,
    DimCommand,
    Telemetry,
    parse_ack,
    parse_command,
    parse_config,
    parse_event,
    parse_payload,
    parse_state,
    parse_status,
    parse_telemetry,
    parse_topic,
    pole_topic,
    road_topic,
)
from streetlight.protocol.messages import MAX_PAYLOAD

GOOD = {"ts": 1764000000000, "seq": 7, "dim": 50, "power_w": 81.5, "voltage_v": 221.3, "current_a": 0.37, "pf": 0.97,
        "energy_wh": 1234.5, "lux": 3.2, "vehicles": 4, "pedestrians": 0, "leakage_ma": 1.2, "temp_c": 31, "rssi_dbm": -71}


def raw(obj):
    return json.dumps(obj).encode()


def test_good_telemetry_round_trips():
    t = parse_telemetry(raw(GOOD))
    assert t.seq == 7 and t.power_w == 81.5
    assert parse_telemetry(t.to_bytes()) == t


def test_unknown_fields_are_ignored():
    assert parse_telemetry(raw({**GOOD, "firmware_extra": {"x": 1}})).seq == 7


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"ts": 1, "ts": 2}', "duplicate_key"),
        (b'{"ts": 1, "seq": 1, "dim": NaN, "power_w": 1, "voltage_v": 1}', "non_finite"),
        (b'{"ts": 1, "seq": 1, "dim": Infinity, "power_w": 1, "voltage_v": 1}', "non_finite"),
        (b"[1, 2]", "not_object"),
        (b'"online"', "not_object"),
        (b"\xff\xfe", "not_utf8"),
        (b"{not json", "invalid_json"),
        (b"{" + b'"a": "' + b"x" * MAX_PAYLOAD + b'"}', "too_large"),
        (raw({k: v for k, v in GOOD.items() if k != "power_w"}), "missing_field"),
        (raw({**GOOD, "dim": 101}), "out_of_range"),
        (raw({**GOOD, "seq": 2**32}), "out_of_range"),
        (raw({**GOOD, "power_w": "80"}), "wrong_type"),
        (raw({**GOOD, "ts": True}), "wrong_type"),
        (raw({**GOOD, "ts": 1.5}), "wrong_type"),
        (raw({**GOOD, "pf": None}), "wrong_type"),
        (raw({**GOOD, "vehicles": 1.0}), "wrong_type"),
    ],
)
def test_telemetry_rejections_carry_a_reason(payload, reason):
    with pytest.raises(ProtocolError) as info:
        parse_telemetry(payload)
    assert info.value.reason == reason


def test_duplicate_key_hidden_behind_escaped_quotes_is_found():
    with pytest.raises(ProtocolError) as info:
        parse_telemetry(b'{"a\\"": 1, "a\\"": 2}')
    assert info.value.reason == "duplicate_key"


def test_events():
    v = parse_event(raw({"ts": 1, "seq": 2, "type": "vehicle", "speed_kmh": 48.5, "direction": -1}))
    assert v.direction == -1
    for bad in ({"direction": 0}, {"direction": True}, {"speed_kmh": 300}):
        with pytest.raises(ProtocolError):
            parse_event(raw({"ts": 1, "seq": 2, "type": "vehicle", "speed_kmh": 48.5, "direction": 1, **bad}))
    assert parse_event(raw({"ts": 1, "seq": 3, "type": "reboot", "reason": "watchdog"})).reason == "watchdog"
    # a newer device's event type is kept, not rejected
    assert parse_event(raw({"ts": 1, "seq": 4, "type": "flood_sensor"})).type == "flood_sensor"


def test_state_status_ack_command_config():
    s = parse_state(raw({"ts": 1, "mode": "fallback", "dim": 50, "config_version": 3, "fw": "1.2.0"}))
    assert s.mode == "fallback"
    with pytest.raises(ProtocolError):
        parse_state(raw({"ts": 1, "mode": "party", "dim": 50, "config_version": 3, "fw": "1"}))
    assert parse_status(b"offline") == "offline"
    with pytest.raises(ProtocolError) as info:
        parse_status(b"maybe")
    assert info.value.reason == "bad_status"
    a = parse_ack(Ack(cmd_id="c1", ts=5, ok=False, dim=20, error="busy").to_bytes())
    assert a.error == "busy" and not a.ok
    assert b'"error":null' in Ack(cmd_id="c1", ts=5, ok=True, dim=20).to_bytes()
    c = parse_command(DimCommand(cmd_id="c2", issued_ts=9, level=30, ramp_ms=2000).to_bytes())
    assert isinstance(c, DimCommand) and c.level == 30
    with pytest.raises(ProtocolError) as info:
        parse_command(raw({"cmd_id": "x", "type": "explode", "issued_ts": 1}))
    assert info.value.reason == "unknown_type"
    cfg = parse_config(raw({"version": 7, "report_interval_s": 10, "fallback": {"after_s": 300, "schedule": [
        {"at": "dusk", "level": 100}, {"at": "22:00", "level": 70}, {"at": "dawn-10", "level": 0}]}}))
    assert isinstance(cfg, Config) and cfg.fallback.schedule[2].at == "dawn-10"
    with pytest.raises(ProtocolError):
        parse_config(raw({"version": 1, "fallback": {"schedule": [{"at": "25:00", "level": 1}]}}))


def test_topics():
    t = parse_topic("sl/v1/nanhuan-1/NH-047/telemetry")
    assert (t.road, t.pole, t.kind) == ("nanhuan-1", "NH-047", "telemetry")
    assert pole_topic("nanhuan-1", "NH-047", "cmd") == "sl/v1/nanhuan-1/NH-047/cmd"
    assert road_topic("nanhuan-1", "heartbeat") == "sl/v1/nanhuan-1/heartbeat"
    for bad in ("sl/v1/nanhuan-1/NH-047/telemetry/x", "sl/v2/a/b/telemetry", "sl/v1/a b/c/telemetry",
                "sl/v1/+/NH-1/telemetry", "sl/v1/road/NH-1/selfdestruct", "sl/v1/" + "r" * 33 + "/p/state"):
        with pytest.raises(ProtocolError) as info:
            parse_topic(bad)
        assert info.value.reason == "bad_topic"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=6),
    max_leaves=20,
)
near_telemetry = st.fixed_dictionaries({}, optional={k: json_values | st.just(v) for k, v in GOOD.items()})
KINDS = ["telemetry", "event", "state", "ack", "cmd", "config", "heartbeat", "alerts", "status"]


@settings(max_examples=400, deadline=None)
@given(kind=st.sampled_from(KINDS), data=st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_protocol_error(kind, data):
    try:
        parse_payload(kind, data)
    except ProtocolError as err:
        assert err.reason


@settings(max_examples=400, deadline=None)
@given(kind=st.sampled_from(KINDS), value=json_values | near_telemetry)
def test_arbitrary_json_parses_or_raises_protocol_error(kind, value):
    try:
        msg = parse_payload(kind, json.dumps(value).encode())
    except ProtocolError as err:
        assert err.reason
    else:
        if kind == "telemetry":
            assert isinstance(msg, Telemetry) and 0 <= msg.dim <= 100


def test_version_1_1_ports_events_and_commands():
    from streetlight.protocol import TELEMETRY_FIELDS, PortCommand, PortTripEvent, PowerCycleCommand

    base = {"ts": 1_764_000_000_000, "seq": 3, "dim": 0, "power_w": 0.4, "voltage_v": 230}
    t = parse_telemetry(json.dumps({**base, "ports": {"cam-1": {"on": True, "power_w": 24.0, "link": "up"},
                                                      "cell-1": {"on": False, "power_w": 0}}}).encode())
    assert t.ports["cam-1"].link == "up" and t.ports["cell-1"].link is None and not t.ports["cell-1"].on
    assert "ports" not in TELEMETRY_FIELDS  # stored as a measurement of its own
    for bad, reason in (({"Cam 1": {"on": True, "power_w": 1}}, "bad_value"),
                        ({"cam-1": {"on": "yes", "power_w": 1}}, "wrong_type"),
                        ({"cam-1": {"on": True, "power_w": 2001}}, "out_of_range"),
                        ({"cam-1": {"on": True}}, "missing_field")):
        with pytest.raises(ProtocolError) as info:
            parse_telemetry(json.dumps({**base, "ports": bad}).encode())
        assert info.value.reason == reason, bad
    e = parse_event(b'{"ts": 5, "seq": 1, "type": "port_trip", "port": "cam-1", "current_a": 3.2}')
    assert isinstance(e, PortTripEvent) and e.port == "cam-1"
    assert parse_event(b'{"ts": 5, "seq": 2, "type": "equipment_offline", "port": "cam-1"}').type == "equipment_offline"
    with pytest.raises(ProtocolError):
        parse_event(b'{"ts": 5, "seq": 2, "type": "equipment_online"}')
    c = parse_command(b'{"cmd_id": "c1", "type": "power_cycle", "issued_ts": 1, "port": "cam-1", "off_s": 30}')
    assert isinstance(c, PowerCycleCommand) and c.off_s == 30
    assert isinstance(parse_command(b'{"cmd_id": "c2", "type": "port", "issued_ts": 1, "port": "sig-1", "on": false}'),
                      PortCommand)
    with pytest.raises(ProtocolError) as info:
        parse_command(b'{"cmd_id": "c1", "type": "power_cycle", "issued_ts": 1, "port": "cam-1", "off_s": 601}')
    assert info.value.reason == "out_of_range"


def test_cabinet_topics_and_telemetry():
    from streetlight.protocol import cabinet_topic, parse_cabinet_telemetry

    assert cabinet_topic("nanhuan-1", "C1", "telemetry") == "sl/v1/nanhuan-1/cabinet/C1/telemetry"
    t = parse_topic("sl/v1/nanhuan-1/cabinet/C2/status")
    assert (t.road, t.cabinet, t.pole, t.kind) == ("nanhuan-1", "C2", None, "status")
    for bad in ("sl/v1/nanhuan-1/cabinet/C2/cmd", "sl/v1/nanhuan-1/cabinet/C 2/telemetry", "sl/v1/nanhuan-1/cabinet/C2"):
        with pytest.raises(ProtocolError):
            parse_topic(bad)
    assert parse_topic("sl/v1/nanhuan-1/cabinet/telemetry").pole == "cabinet"  # a pole may be called that
    raw = (b'{"ts": 1764000000000, "seq": 812, "voltage_v": 229.8, "feeders": {"C1-L1": {"breaker": "closed", '
           b'"current_a": 12.4, "energy_wh": 185230.5}, "C1-L2": {"breaker": "open", "current_a": 0.0, '
           b'"energy_wh": 170114.2}}}')
    c = parse_cabinet_telemetry(raw)
    assert c.feeders["C1-L2"].breaker == "open" and c.feeders["C1-L1"].energy_wh == 185230.5
    with pytest.raises(ProtocolError) as info:
        parse_cabinet_telemetry(raw.replace(b'"open"', b'"tripped"'))
    assert info.value.reason == "bad_value"


def test_the_mirror_stands_beside_the_device_topics_and_maps_back() -> None:
    from streetlight.protocol import mirror_subscription, mirror_topic, unmirror

    topic = pole_topic("nanhuan-1", "NH-005", "telemetry")
    mirrored = mirror_topic(topic)
    assert mirrored == "sl/mirror/v1/nanhuan-1/NH-005/telemetry" and unmirror(mirrored) == topic
    assert not mirrored.startswith("sl/v1/") and unmirror(topic) is None
    assert mirror_subscription("nanhuan-1", "ack") == "sl/mirror/v1/nanhuan-1/+/ack"
    for not_uplink in (pole_topic("nanhuan-1", "NH-005", "cmd"), "sl/v1/nanhuan-1/heartbeat", "sl/v1/x"):
        with pytest.raises(ProtocolError):
            mirror_topic(not_uplink)
