"""Findings 4 and 7, the broker part, against the real Mosquitto with the generated set.

- Whoever holds the pole secret (a simulator, a commissioning tool) cannot log in as the
  platform: service passwords are random, kept in a 0600 file, and never printed by default.
- With the compact ACL (patterns, used above 2,000 poles) a pole cannot publish under another
  road, and a road concentrator cannot publish for a pole id that is not in the registry.
- The TLS listener refuses CBC/SHA-1 suites and speaks only AEAD ones.
"""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.broker_security import (
    BrokerLayout,
    BrokerSecuritySet,
    concentrator_user,
    generate,
    service_passwords,
)
from ops.servers import MosquittoServer, free_port
from streetlight.credentials import pole_password
from streetlight.registry import load_road, make_road
from tests.test_broker_security import Conn, connect, mark

pytestmark = pytest.mark.servers
SECRET = "attack-site-secret"
ROAD, OTHER = "nanhuan-1", "test-c"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MosquittoServer, BrokerSecuritySet]]:
    out = tmp_path_factory.mktemp("broker-attacks")
    port, tls_port = free_port(), free_port()
    roads = [load_road(ROAD), make_road(4, road_id=OTHER, prefix="TC")]
    security = generate(roads, SECRET, out / "set", BrokerLayout(port=port, tls_port=tls_port, autosave_interval_s=1),
                        compact_acl=True, service=service_passwords(out / "var"))
    server = MosquittoServer(name="mosquitto", port=port, data_dir=out / "server", config_path=security.conf).start()
    yield server, security
    server.stop()


@pytest.fixture
def clients() -> Iterator[list[Conn]]:
    made: list[Conn] = []
    yield made
    for c in made:
        c.close()


def _platform(broker: tuple[MosquittoServer, BrokerSecuritySet], clients: list[Conn]) -> Conn:
    conn = connect(broker, clients, "platform", broker[1].service_passwords["platform"])
    assert conn.accepted
    return conn


def test_the_pole_secret_does_not_open_the_platform_account(broker, clients, tmp_path: Path) -> None:  # noqa: ANN001
    # what the secret's holder can compute: every derivation of the secret for the account names
    for user in ("platform", "health"):
        conn = connect(broker, clients, user, pole_password(SECRET, user))
        assert not conn.accepted, user
    assert _platform(broker, clients).accepted
    # the passwords live in a 0600 file of the data folder, and are the same the next time
    var = tmp_path / "var"
    first = service_passwords(var)
    assert stat.S_IMODE((var / "broker-accounts.json").stat().st_mode) == 0o600
    assert service_passwords(var) == first and first["platform"] != pole_password(SECRET, "platform")


def test_compact_acl_keeps_a_pole_on_its_own_road(broker, clients) -> None:  # noqa: ANN001
    assert "pattern write sl/v1/+/" not in broker[1].acl.read_text()
    plat = _platform(broker, clients)
    plat.subscribe("sl/v1/#")
    m = mark()
    pole = connect(broker, clients, "NH-001", pole_password(SECRET, "NH-001"))
    assert pole.accepted
    pole.publish(f"sl/v1/{OTHER}/NH-001/telemetry", f"forged-{m}")  # its own id, another road
    pole.publish("sl/v1/no-such-road/NH-001/telemetry", f"forged-{m}")
    pole.publish(f"sl/v1/{ROAD}/NH-001/telemetry", f"own-{m}")
    got = [(t, p) for t, p in plat.until(f"own-{m}") if m in p]
    assert got == [(f"sl/v1/{ROAD}/NH-001/telemetry", f"own-{m}")]


def test_a_road_concentrator_speaks_only_for_registered_poles(broker, clients) -> None:  # noqa: ANN001
    plat = _platform(broker, clients)
    plat.subscribe("sl/v1/#")
    m = mark()
    user = concentrator_user(ROAD)
    conc = connect(broker, clients, user, pole_password(SECRET, user))
    assert conc.accepted
    conc.publish(f"sl/v1/{ROAD}/NH-999/telemetry", f"forged-{m}")  # not in the registry
    conc.publish(f"sl/v1/{ROAD}/TC-001/telemetry", f"forged-{m}")  # a pole of another road
    conc.publish(f"sl/v1/{ROAD}/NH-093/telemetry", f"road-{m}")
    got = [(t, p) for t, p in plat.until(f"road-{m}") if m in p]
    assert got == [(f"sl/v1/{ROAD}/NH-093/telemetry", f"road-{m}")]


def _handshake(port: int, ca: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(ca), *args],
                          input="", capture_output=True, text=True, timeout=30)


def test_tls_speaks_only_aead_suites(broker) -> None:  # noqa: ANN001
    _, security = broker
    blocks = security.conf.read_text().split("listener ")
    port = int(next(b for b in blocks if "certfile" in b).split()[0])
    assert security.ca_cert is not None
    for weak in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256"):
        done = _handshake(port, security.ca_cert, "-tls1_2", "-cipher", weak)
        assert done.returncode != 0 and "Cipher is (NONE)" in done.stdout + done.stderr or \
            "handshake failure" in done.stdout + done.stderr, (weak, done.stdout[-500:], done.stderr[-500:])
    strong = _handshake(port, security.ca_cert, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert strong.returncode == 0 and "ECDHE-ECDSA-AES128-GCM-SHA256" in strong.stdout, strong.stderr[-500:]
    v13 = _handshake(port, security.ca_cert, "-tls1_3")
    assert v13.returncode == 0 and "TLSv1.3" in v13.stdout
