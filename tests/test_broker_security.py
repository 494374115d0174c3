"""The generated broker security set, enforced by the real Mosquitto.

Every check is made on what a subscriber RECEIVES: a broker acknowledges a QoS 1 publish it
drops for lack of rights, so a PUBACK proves nothing. Each test ends with a sentinel message
the subscriber must receive; everything forbidden was sent before it on the same connection,
so once the sentinel is in, a forbidden message that had been let through would be in too.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from ops.broker_security import (
    BrokerLayout,
    BrokerSecurityError,
    BrokerSecuritySet,
    account_password,
    cabinet_user,
    concentrator_user,
    generate,
    mosquitto_hash,
    verify_mosquitto_hash,
)
from ops.processes import wait_for
from ops.servers import MosquittoServer, free_port
from streetlight.credentials import pole_password as account_password_unchecked
from streetlight.protocol import mirror_subscription, mirror_topic
from streetlight.registry import Road, load_road, make_road

pytestmark = pytest.mark.servers

SECRET = "test-site-secret"
ROAD = "nanhuan-1"
OTHER = "test-b"


class Conn:
    """A paho MQTT 5 client that records its CONNACK, SUBACKs and every message it receives."""

    def __init__(self, port: int, username: str | None = None, password: str | None = None,
                 ca: Path | None = None) -> None:
        self.msgs: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connected = threading.Event()
        self.subacks: dict[int, list[int]] = {}
        self._suback = threading.Condition()
        self.reason: mqtt.ReasonCode | None = None
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:10]}", protocol=mqtt.MQTTv5)
        if username is not None:
            self.c.username_pw_set(username, password)
        if ca is not None:
            self.c.tls_set(ca_certs=str(ca))
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_message = lambda c, u, m: self.msgs.put((m.topic, m.payload))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self.connected.wait(10), "no CONNACK within 10 s"

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        if self.reason is None:
            self.reason = reason_code
        self.connected.set()
        if reason_code.is_failure:
            client.disconnect()  # no reconnect attempts with a refused identity

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:  # noqa: ANN001
        with self._suback:
            self.subacks[mid] = [rc.value for rc in reason_codes]
            self._suback.notify_all()

    @property
    def accepted(self) -> bool:
        return self.reason is not None and not self.reason.is_failure

    def subscribe(self, *topics: str) -> list[int]:
        _, mid = self.c.subscribe([(t, 1) for t in topics])
        with self._suback:
            assert self._suback.wait_for(lambda: mid in self.subacks, 10), "no SUBACK within 10 s"
            return self.subacks[mid]

    def publish(self, topic: str, payload: str, retain: bool = False) -> None:
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def until(self, sentinel: str, timeout: float = 10.0) -> list[tuple[str, str]]:
        """Every message received up to and including the one whose payload is ``sentinel``."""
        got: list[tuple[str, str]] = []
        while True:
            topic, payload = self.msgs.get(timeout=timeout)
            got.append((topic, payload.decode()))
            if payload.decode() == sentinel:
                return got

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def mark() -> str:
    return uuid.uuid4().hex


@pytest.fixture(scope="module")
def roads() -> list[Road]:
    return [load_road(ROAD), make_road(6, road_id=OTHER, prefix="TB")]


@pytest.fixture(scope="module", params=[False, True], ids=["explicit-acl", "compact-acl"])
def broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           roads: list[Road]) -> Iterator[tuple[MosquittoServer, BrokerSecuritySet]]:
    """The broker with the generated set; both ACL forms (explicit lines, %u patterns) are checked."""
    out = tmp_path_factory.mktemp("broker-security")
    port, tls_port = free_port(), free_port()
    security = generate(roads, SECRET, out / "set", BrokerLayout(port=port, tls_port=tls_port, autosave_interval_s=1),
                        compact_acl=request.param)
    assert ("pattern write sl/v1/nanhuan-1/%u/telemetry" in security.acl.read_text()) == request.param
    server = MosquittoServer(name="mosquitto", port=port, data_dir=out / "server", config_path=security.conf).start()
    yield server, security
    server.stop()


@pytest.fixture
def clients() -> Iterator[list[Conn]]:
    made: list[Conn] = []
    yield made
    for c in made:
        c.close()


def connect(broker_set: tuple[MosquittoServer, BrokerSecuritySet], clients: list[Conn], user: str | None,
            password: str | None = None, tls: bool = False) -> Conn:
    server, security = broker_set
    if user is not None and password is None:
        password = account_password(SECRET, user)
    port = _tls_port(security) if tls else server.port
    conn = Conn(port, user, password, ca=security.ca_cert if tls else None)
    clients.append(conn)
    return conn


def _tls_port(security: BrokerSecuritySet) -> int:
    blocks = security.conf.read_text().split("listener ")
    return int(next(b for b in blocks if "certfile" in b).split()[0])


def platform(broker_set, clients: list[Conn]) -> Conn:  # noqa: ANN001
    conn = connect(broker_set, clients, "platform", broker_set[1].service_passwords["platform"])
    assert conn.accepted
    return conn


def t(pole: str, kind: str, road: str = ROAD) -> str:
    return f"sl/v1/{road}/{pole}/{kind}"


def test_hash_is_mosquitto_passwd_format() -> None:
    h = mosquitto_hash("pw", salt=b"0123456789ab")
    assert h.startswith("$7$101$") and len(h.split("$")) == 5
    assert verify_mosquitto_hash("pw", h) and not verify_mosquitto_hash("pw2", h)
    for bad in ("", "plain", "$6$abc$def", "$7$x$AAAA$AAAA", "$7$101$***$AAAA"):
        assert not verify_mosquitto_hash("pw", bad)


def test_hash_of_mosquitto_passwd_verifies(tmp_path: Path) -> None:
    pwfile = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pwfile), "NH-001", "secret-1"], check=True, capture_output=True)
    _, encoded = pwfile.read_text().strip().split(":", 1)
    assert encoded.startswith("$7$")
    assert verify_mosquitto_hash("secret-1", encoded)
    assert not verify_mosquitto_hash("secret-2", encoded)


def test_pole_cannot_publish_for_another_pole(broker, clients) -> None:  # noqa: ANN001
    plat = platform(broker, clients)
    plat.subscribe("sl/v1/#")
    pole = connect(broker, clients, "NH-001")
    assert pole.accepted
    m = mark()
    forged = [t("NH-002", "telemetry"), t("NH-002", "state"), t("NH-002", "status"), t("TB-001", "telemetry", OTHER),
              t("NH-001", "cmd"), t("NH-001", "config"), f"sl/v1/{ROAD}/heartbeat", f"sl/v1/{ROAD}/alerts"]
    for topic in forged:
        pole.publish(topic, f"forged-{m}")
    pole.publish(t("NH-001", "event"), f"own-event-{m}")
    pole.publish(t("NH-001", "telemetry"), f"own-telemetry-{m}")
    got = plat.until(f"own-telemetry-{m}")
    mine = [(topic, p) for topic, p in got if m in p]
    assert mine == [(t("NH-001", "event"), f"own-event-{m}"), (t("NH-001", "telemetry"), f"own-telemetry-{m}")]


def test_pole_cannot_subscribe_to_another_poles_commands(broker, clients) -> None:  # noqa: ANN001
    pole = connect(broker, clients, "NH-002")
    assert pole.accepted
    # Mosquitto 2.0 grants such a SUBACK and filters each delivery by the ACL's read rights, so
    # only what arrives tells whether the pole can read another pole's commands.
    pole.subscribe(t("NH-001", "cmd"), f"sl/v1/{ROAD}/+/cmd", f"sl/v1/{ROAD}/+/config", "sl/v1/#",
                   t("NH-002", "cmd"), f"sl/v1/{ROAD}/heartbeat", f"sl/v1/{OTHER}/heartbeat")
    plat = platform(broker, clients)
    m = mark()
    plat.publish(t("NH-001", "cmd"), f"other-cmd-{m}")
    plat.publish(t("NH-001", "config"), f"other-config-{m}")
    plat.publish(t("NH-003", "cmd"), f"other-cmd3-{m}")
    plat.publish(f"sl/v1/{OTHER}/heartbeat", f"other-road-heartbeat-{m}")
    plat.publish(t("NH-001", "telemetry"), f"telemetry-{m}")
    plat.publish(f"sl/v1/{ROAD}/heartbeat", f"heartbeat-{m}")
    plat.publish(t("NH-002", "cmd"), f"own-cmd-{m}")
    got = pole.until(f"own-cmd-{m}")
    assert {p for _, p in got if m in p} == {f"heartbeat-{m}", f"own-cmd-{m}"}


def test_wrong_password_is_refused(broker, clients) -> None:  # noqa: ANN001
    plat = platform(broker, clients)
    plat.subscribe(t("NH-004", "telemetry"))
    m = mark()
    for user, pw in (("NH-004", "wrong"), ("NH-004", account_password(SECRET, "NH-005")), ("platform", "wrong"),
                     ("NH-999", account_password(SECRET, "NH-999"))):
        intruder = connect(broker, clients, user, pw)
        assert not intruder.accepted, f"{user} with a wrong password was let in"
        intruder.c.publish(t("NH-004", "telemetry"), f"intruder-{m}", qos=1)
    good = connect(broker, clients, "NH-004")
    good.publish(t("NH-004", "telemetry"), f"good-{m}")
    assert [p for _, p in plat.until(f"good-{m}") if m in p] == [f"good-{m}"]


def test_anonymous_is_refused(broker, clients) -> None:  # noqa: ANN001
    plat = platform(broker, clients)
    plat.subscribe(t("NH-006", "telemetry"))
    anon = connect(broker, clients, None)
    assert not anon.accepted
    m = mark()
    anon.c.publish(t("NH-006", "telemetry"), f"anon-{m}", qos=1)
    good = connect(broker, clients, "NH-006")
    good.publish(t("NH-006", "telemetry"), f"good-{m}")
    assert [p for _, p in plat.until(f"good-{m}") if m in p] == [f"good-{m}"]


def test_platform_shared_subscription_commands_and_retained_config(broker, clients) -> None:  # noqa: ANN001
    gws = [platform(broker, clients) for _ in range(2)]
    for gw in gws:
        assert gw.subscribe(f"$share/gw/sl/v1/{ROAD}/+/telemetry")[0] < 0x80
    m = mark()
    plat = platform(broker, clients)
    plat.publish(t("NH-007", "config"), f"config-{m}", retain=True)
    pole = connect(broker, clients, "NH-007")
    pole.subscribe(t("NH-007", "config"))
    assert pole.until(f"config-{m}") == [(t("NH-007", "config"), f"config-{m}")]
    for i in range(20):
        pole.publish(t("NH-007", "telemetry"), f"{i}-{m}")
    received: list[str] = []
    for gw in gws:
        while True:
            try:
                received.append(gw.msgs.get(timeout=0.5)[1].decode())
            except queue.Empty:
                break
    assert sorted(received) == sorted(f"{i}-{m}" for i in range(20)), "each message once, across the group"


def test_tls_listener_with_generated_ca(broker, clients) -> None:  # noqa: ANN001
    plat = platform(broker, clients)
    plat.subscribe(t("NH-008", "telemetry"))
    pole = connect(broker, clients, "NH-008", tls=True)
    assert pole.accepted
    m = mark()
    pole.publish(t("NH-008", "telemetry"), f"tls-{m}")
    assert [p for _, p in plat.until(f"tls-{m}") if m in p] == [f"tls-{m}"]


def test_concentrators_are_limited_to_their_poles(broker, clients, roads) -> None:  # noqa: ANN001
    road = roads[0]
    plat = platform(broker, clients)
    plat.subscribe("sl/v1/+/+/telemetry")
    m = mark()
    whole = connect(broker, clients, concentrator_user(ROAD))
    assert whole.accepted
    whole.publish(t("TB-002", "telemetry", OTHER), f"forged-{m}")
    whole.publish(t("NH-050", "telemetry"), f"road-{m}")
    c1_pole = next(p.id for p in road.poles if p.cabinet == "C1")
    c2_pole = next(p.id for p in road.poles if p.cabinet == "C2")
    cab = connect(broker, clients, concentrator_user(ROAD, "C1"))
    cab.publish(t(c2_pole, "telemetry"), f"forged-{m}")
    cab.publish(t(c1_pole, "telemetry"), f"cabinet-{m}")
    got = [(topic, p) for topic, p in plat.until(f"cabinet-{m}") if m in p]
    assert got == [(t("NH-050", "telemetry"), f"road-{m}"), (t(c1_pole, "telemetry"), f"cabinet-{m}")]


def test_a_cabinet_publishes_only_on_its_own_cabinet_topics(broker, clients) -> None:  # noqa: ANN001
    plat = platform(broker, clients)
    plat.subscribe("sl/v1/#")
    m = mark()
    cab = connect(broker, clients, cabinet_user(ROAD, "C1"))
    assert cab.accepted
    own = f"sl/v1/{ROAD}/cabinet/C1/telemetry"
    for forged in (f"sl/v1/{ROAD}/cabinet/C2/telemetry", f"sl/v1/{OTHER}/cabinet/C1/telemetry", t("NH-001", "telemetry"),
                   t("NH-001", "status"), t(cabinet_user(ROAD, "C1"), "telemetry"), f"sl/v1/{ROAD}/alerts"):
        cab.publish(forged, f"forged-{m}")
    cab.publish(f"sl/v1/{ROAD}/cabinet/C1/status", f"status-{m}")
    cab.publish(own, f"own-{m}")
    got = [(topic, p) for topic, p in plat.until(f"own-{m}") if m in p]
    assert got == [(f"sl/v1/{ROAD}/cabinet/C1/status", f"status-{m}"), (own, f"own-{m}")]
    # and a pole cannot speak as a cabinet
    pole = connect(broker, clients, "NH-001")
    pole.publish(f"sl/v1/{ROAD}/cabinet/C1/telemetry", f"forged-{m}")
    cab.publish(own, f"again-{m}")
    assert [p for _, p in plat.until(f"again-{m}") if m in p] == [f"again-{m}"]


def test_only_the_platform_reads_and_writes_the_mirror(broker, clients, roads) -> None:  # noqa: ANN001
    """The mirror of LwM2M poles' messages: the gateway (platform account) writes it, API processes
    (platform account) read it; no pole, concentrator or cabinet account may do either."""
    api = platform(broker, clients)
    api.subscribe(mirror_subscription(ROAD, "telemetry"), mirror_subscription(ROAD, "status"))
    devices = [connect(broker, clients, u) for u in ("NH-001", concentrator_user(ROAD), cabinet_user(ROAD, "C1"))]
    for dev in devices:
        assert dev.accepted
        dev.subscribe("sl/mirror/#")
    m = mark()
    own = mirror_topic(t("NH-001", "telemetry"))
    for dev in devices:
        dev.publish(own, f"forged-{m}")
        dev.publish(mirror_topic(t("NH-001", "status")), f"forged-status-{m}")
    gw = platform(broker, clients)
    gw.publish(own, f"mirrored-{m}")
    assert [(topic, p) for topic, p in api.until(f"mirrored-{m}") if m in p] == [(own, f"mirrored-{m}")]
    # what the platform mirrored reaches a device only if the ACL lets it read it; a sentinel on a
    # topic each may read, sent after it on the same connection, bounds the wait
    readable = [t("NH-001", "cmd"), t("NH-001", "cmd"), f"sl/v1/{ROAD}/heartbeat"]
    for dev, topic in zip(devices, readable, strict=True):
        dev.subscribe(topic)
    gw.publish(own, f"mirrored-again-{m}")
    for topic in dict.fromkeys(readable):
        gw.publish(topic, f"sentinel-{m}")
    for dev in devices:
        assert [p for _, p in dev.until(f"sentinel-{m}") if m in p] == [f"sentinel-{m}"]


def test_pole_ids_must_be_unique_across_roads(tmp_path: Path) -> None:
    a = make_road(3, road_id="road-a", prefix="XX")
    b = make_road(3, road_id="road-b", prefix="XX")
    with pytest.raises(BrokerSecurityError, match="XX-001 is on road road-a and on road road-b"):
        generate([a, b], SECRET, tmp_path, BrokerLayout(tls_port=None))


def test_cli_writes_the_whole_set(tmp_path: Path) -> None:
    from streetlight.cli import app

    out = tmp_path / "set"
    env = {"STREETLIGHT_POLE_SECRET": SECRET, "STREETLIGHT_DATA_DIR": str(tmp_path / "var")}
    result = CliRunner().invoke(app, ["broker", "config", "--road", ROAD, "--out", str(out), "--docker"], env=env)
    assert result.exit_code == 0, result.output
    conf = (out / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "password_file /mosquitto/config/passwd" in conf
    users = [line.split(":", 1)[0] for line in (out / "passwd").read_text().splitlines()]
    assert {f"NH-{i:03d}" for i in range(1, 94)} <= set(users) and "platform" in users
    assert all(verify_mosquitto_hash(account_password(SECRET, "NH-042"), line.split(":", 1)[1])
               for line in (out / "passwd").read_text().splitlines() if line.startswith("NH-042:"))
    assert (out / "ca.crt").exists() and (out / "server.key").exists()
    accounts = json.loads((tmp_path / "var" / "broker-accounts.json").read_text())
    assert (tmp_path / "var" / "broker-accounts.json").stat().st_mode & 0o777 == 0o600
    # random, never derived from the pole secret, and printed only when asked
    assert accounts["platform"] != account_password_unchecked(SECRET, "platform")
    assert accounts["platform"] not in result.output and "--show-password" in result.output
    shown = CliRunner().invoke(app, ["broker", "config", "--road", ROAD, "--out", str(out), "--docker",
                                     "--show-password"], env=env)
    assert shown.exit_code == 0 and accounts["platform"] in shown.output


def test_new_road_is_accepted_after_regeneration_and_sighup(tmp_path: Path, clients) -> None:  # noqa: ANN001
    port = free_port()
    layout = BrokerLayout(port=port, tls_port=None)
    first = make_road(3, road_id="road-a", prefix="RA")
    security = generate([first], SECRET, tmp_path / "set", layout)
    server = MosquittoServer(name="mosquitto", port=port, data_dir=tmp_path / "server", config_path=security.conf).start()
    try:
        broker_set = (server, security)
        assert not connect(broker_set, clients, "RB-001").accepted
        generate([first, make_road(3, road_id="road-b", prefix="RB")], SECRET, tmp_path / "set", layout)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGHUP)  # Mosquitto rereads the password file and the ACL

        def accepted() -> bool:
            return connect(broker_set, clients, "RB-001").accepted

        assert wait_for(accepted, 10, interval_s=0.2)
        plat = connect(broker_set, clients, "platform", security.service_passwords["platform"])
        plat.subscribe("sl/v1/road-b/+/telemetry")
        m = mark()
        pole = connect(broker_set, clients, "RB-001")
        pole.publish("sl/v1/road-b/RB-002/telemetry", f"forged-{m}")
        pole.publish("sl/v1/road-b/RB-001/telemetry", f"ok-{m}")
        assert [p for _, p in plat.until(f"ok-{m}") if m in p] == [f"ok-{m}"]
    finally:
        server.stop()


def test_a_pole_named_like_an_account_is_refused(tmp_path: Path) -> None:
    import dataclasses

    road = make_road(2, road_id="road-c", prefix="RC")
    for name in ("platform", "road-c-concentrator"):
        other = make_road(1, road_id="road-d", prefix="RD")
        odd = dataclasses.replace(other, poles=(dataclasses.replace(other.poles[0], id=name),), _by_id={})
        with pytest.raises(BrokerSecurityError, match=name):
            generate([road, odd], SECRET, tmp_path, BrokerLayout(tls_port=None))


def test_the_simulated_road_and_its_cabinets_connect_with_their_own_accounts(broker, clients,  # noqa: ANN001
                                                                             tmp_path: Path) -> None:
    """The simulator under the generated set: every pole and each cabinet with its own account,
    the cabinets' reports accepted on their own topics (as ``streetlight simulate`` gives them)."""
    from simulators.runner import run_simulation
    from simulators.scenario import load_scenario

    plat = platform(broker, clients)
    plat.subscribe(f"sl/v1/{ROAD}/cabinet/#")
    f = tmp_path / "short.yaml"
    f.write_text(f'name: short\nroad: {ROAD}\nstart: "2026-11-23 19:00"\nduration: 30\nseed: 3\n')
    stats = run_simulation(load_scenario(str(f)), mqtt_url=broker[0].url, speed=None, heartbeat_required=False,
                           credentials=lambda user: (user, account_password(SECRET, user)))
    assert stats.messages["cabinet"] == 2 * 3 + 2  # three reports and an ``online`` from each
    got: list[tuple[str, str]] = []
    while len(got) < 8:
        topic, payload = plat.msgs.get(timeout=10)
        got.append((topic, payload.decode()[:20]))
    cabinets = {topic.split("/")[4] for topic, _ in got}
    assert cabinets == {"C1", "C2"} and sum(t.endswith("/telemetry") for t, _ in got) == 6
