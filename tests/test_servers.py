"""The real servers the fixtures start: a protocol message through Mosquitto, a point through InfluxDB."""

import queue
import urllib.parse
import urllib.request
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from streetlight.protocol import Telemetry, parse_telemetry, parse_topic, pole_topic

pytestmark = pytest.mark.servers


def _client(server, client_id):
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", server.port)
    c.loop_start()
    return c


def test_protocol_message_through_real_mosquitto(mosquitto):
    got: queue.Queue = queue.Queue()
    sub = _client(mosquitto, "t-sub")
    sub.on_message = lambda c, u, m: got.put((m.topic, m.payload))
    sub.subscribe("sl/v1/test-road/+/telemetry", qos=1)[0]
    import time

    time.sleep(0.3)
    pub = _client(mosquitto, "t-pub")
    msg = Telemetry(ts=1764000000000, seq=1, dim=40, power_w=65.0, voltage_v=220.5)
    pub.publish(pole_topic("test-road", "NH-001", "telemetry"), msg.to_bytes(), qos=1).wait_for_publish(5)
    topic, payload = got.get(timeout=5)
    assert parse_topic(topic).pole == "NH-001"
    assert parse_telemetry(payload) == msg
    for c in (sub, pub):
        c.loop_stop()
        c.disconnect()


def _influx(server, path, **params):
    data = urllib.parse.urlencode(params).encode()
    with urllib.request.urlopen(f"{server.url}/{path}", data=data, timeout=10) as r:
        return r.status, r.read()


def test_line_protocol_round_trip_through_real_influxdb(influxdb):
    _influx(influxdb, "query", q="CREATE DATABASE t_servers")
    body = b"telemetry,road=test,pole=NH-001 power_w=65.5,dim=40 1764000000000000000\n" \
           b"telemetry,road=test,pole=NH-002 power_w=70.0,dim=45 1764000000000000000\n"
    req = urllib.request.Request(f"{influxdb.url}/write?db=t_servers&precision=ns", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 204
    status, out = _influx(influxdb, "query", db="t_servers", q="SELECT sum(power_w), count(dim) FROM telemetry")
    series = orjson.loads(out)["results"][0]["series"][0]
    assert series["values"][0][1:] == [135.5, 2]


def test_test_and_production_brokers_get_their_config_from_one_writer(tmp_path: Path) -> None:
    from ops.broker_security import BrokerLayout, conf_text
    from ops.servers import MosquittoServer

    local = MosquittoServer(name="mosquitto", port=18830, data_dir=tmp_path, extra_config="sys_interval 5")
    text = local.write_config().read_text()
    prod = conf_text(BrokerLayout(port=1883, tls_port=8883, autosave_interval_s=1), "/cfg",
                     str(tmp_path / "persist"), True)
    shared = {"max_queued_messages 1000000", "max_queued_bytes 0", "max_inflight_messages 0", "autosave_interval 1",
              f"persistence_location {tmp_path / 'persist'}/", "per_listener_settings false"}
    assert shared <= set(text.splitlines()) and shared <= set(prod.splitlines())
    assert "allow_anonymous true" in text and "allow_anonymous false" in prod and "acl_file /cfg/acl" in prod
    assert text.rstrip().endswith("sys_interval 5") and "listener 18830 127.0.0.1" in text
    assert "listener 8883 127.0.0.1\ncafile /cfg/ca.crt" in prod


def test_a_kept_postgresql_cluster_outlives_its_server_and_starts_again(tmp_path: Path) -> None:
    import shutil
    import tempfile

    import psycopg

    from ops.servers import PostgresServer, free_port

    # as root the cluster's owner is 'postgres', which cannot reach a test's temporary folder: one it can
    home = Path(tempfile.mkdtemp(prefix="streetlight-kept-pg-"))
    home.chmod(0o755)
    try:
        folder = home / "postgres"
        assert PostgresServer.owner_can_reach(folder)
        first = PostgresServer(name="postgres", port=free_port(), data_dir=tmp_path, cluster_dir=folder, keep=True)
        url = first.start().ensure_database("kept")
        assert first.ensure_database("kept") == url  # there already: not made twice
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (v int)")
            conn.execute("INSERT INTO t VALUES (7)")
        first.stop()
        assert (folder / "data" / "PG_VERSION").exists()
        second = PostgresServer(name="postgres", port=free_port(), data_dir=tmp_path, cluster_dir=folder, keep=True)
        with second.start(), psycopg.connect(second.url_of("kept")) as conn:
            assert conn.execute("SELECT v FROM t").fetchall() == [(7,)]
    finally:
        shutil.rmtree(home, ignore_errors=True)
