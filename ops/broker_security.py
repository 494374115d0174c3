"""The broker's security set, generated from the road registry.

One call writes everything Mosquitto 2 needs to enforce the protocol page's security section:

    mosquitto.conf   anonymous access off, a plain listener and a TLS listener
    passwd           one account per pole (username = pole id), one per concentrator, one per
                     distribution cabinet (it writes only its own cabinet topics), the
                     platform's account and a health-check account, in Mosquitto's own
                     ``$7$`` PBKDF2-SHA512 format (what ``mosquitto_passwd`` writes)
    acl              a pole writes only its own uplink topics and reads only its own ``cmd`` and
                     ``config`` and its road's heartbeat; the platform reads and writes ``sl/v1/#`` and
                     the mirror ``sl/mirror/v1/#`` (its gateway writes there what LwM2M poles
                     said, its API processes read it), which no device account reaches
    ca.crt, ca.key   a project-generated CA for local use (kept across runs)
    server.crt/.key  the TLS listener's certificate, signed by that CA
    health.password  the health-check account's password (for container health checks)

Pole and concentrator passwords are derived from the site secret (:func:`account_password`), so
the simulators and a commissioning tool find the same credentials without a password table.
The service accounts (``platform``, ``health``) get random passwords that owe nothing to that
secret (:data:`SERVICE_USERS`, kept by :func:`streetlight.credentials.load_or_create_service_passwords`):
a device's secret must not open the account that reads and writes every road.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from streetlight.credentials import load_or_create_service_passwords, pole_password, service_accounts_path
from streetlight.errors import StreetlightError
from streetlight.protocol.topics import (
    DOWNLINK_KINDS,
    ID_RE,
    MIRROR_PREFIX,
    UPLINK_KINDS,
    cabinet_topic,
    pole_topic,
    road_topic,
)
from streetlight.registry import Road

from .servers import Listener, mosquitto_conf_text

PLATFORM_USER = "platform"
HEALTH_USER = "health"
# Mosquitto 2's defaults for its PBKDF2-SHA512 hashes (src/password_mosq.h: SALT_LEN 12, 101 rounds)
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12
COMPACT_ABOVE = 2_000  # poles; above this the ACL uses %u patterns (see acl_text)
SERVICE_USERS = (PLATFORM_USER, HEALTH_USER)


class BrokerSecurityError(StreetlightError):
    """The registry cannot be turned into a broker security set (e.g. a pole id used twice)."""


def account_password(secret: str, username: str) -> str:
    """The broker password of a device account (pole, concentrator), derived from the secret."""
    if username in SERVICE_USERS:
        raise BrokerSecurityError(f"the {username!r} account's password is random, not derived from the pole "
                                  f"secret; read it with service_passwords(data_dir)")
    return pole_password(secret, username)


def service_passwords(data_dir: Path) -> dict[str, str]:
    """The random passwords of the service accounts, kept in ``<data_dir>/broker-accounts.json`` (0600)."""
    return load_or_create_service_passwords(service_accounts_path(data_dir), SERVICE_USERS)


def concentrator_user(road_id: str, cabinet: str | None = None) -> str:
    """Username (and client id) of a concentrator: one for a whole road, or one per cabinet."""
    return f"{road_id}-concentrator" if cabinet is None else f"{road_id}-{cabinet}-concentrator"


def cabinet_user(road_id: str, cabinet: str) -> str:
    """Username (and client id) of a distribution cabinet's controller (protocol 1.1)."""
    return f"{road_id}-{cabinet}-cabinet"


def mosquitto_hash(password: str, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """A password hash in Mosquitto 2's ``$7$`` format: ``$7$<iterations>$<salt b64>$<hash b64>``."""
    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_mosquitto_hash(password: str, encoded: str) -> bool:
    """True when ``password`` matches a ``$7$`` hash (used by tests and ``broker check``)."""
    try:
        _, kind, rounds, salt_b64, hash_b64 = encoded.split("$")
        salt, expected, iterations = base64.b64decode(salt_b64), base64.b64decode(hash_b64), int(rounds)
    except ValueError:  # also binascii.Error: not a hash of this format
        return False
    if kind != "7" or iterations < 1:
        return False
    return secrets.compare_digest(hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations), expected)


@dataclass(frozen=True)
class BrokerLayout:
    """Where the broker listens and where it finds its files at run time.

    ``config_dir`` is the folder as the broker sees it: the output folder itself for a local
    broker, or the mount point (``/mosquitto/config``) inside a container.
    """

    port: int = 1883
    tls_port: int | None = 8883
    bind: str | None = "127.0.0.1"  # None = every interface (inside a container)
    config_dir: str | None = None
    persistence_dir: str | None = None
    tls_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "mosquitto")
    autosave_interval_s: int = 60
    max_queued_messages: int = 1_000_000
    # Mosquitto started as root drops to the user named here (default "mosquitto"), which could
    # not read 0600 files written by root; a local broker therefore runs as whoever starts it.
    run_as: str | None = field(default_factory=lambda: _current_user())


def _current_user() -> str | None:
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return None


@dataclass
class BrokerSecuritySet:
    out_dir: Path
    conf: Path
    passwd: Path
    acl: Path
    ca_cert: Path | None
    server_cert: Path | None
    server_key: Path | None
    health_password_file: Path
    users: list[str] = field(default_factory=list)
    service_passwords: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def pole_count(self) -> int:
        return sum(1 for u in self.users if u not in (PLATFORM_USER, HEALTH_USER)
                   and not u.endswith(("-concentrator", "-cabinet")))


def _openssl(*args: str, cwd: Path) -> None:
    try:
        subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise BrokerSecurityError("'openssl' is not installed; install the Debian package 'openssl' "
                                  "or generate without TLS (--no-tls)") from None
    except subprocess.CalledProcessError as err:
        raise BrokerSecurityError(f"openssl {args[0]} failed: {err.stderr.strip()[-500:]}") from None


def ensure_ca(out_dir: Path, days: int = 3650) -> tuple[Path, Path]:
    """A local CA (EC P-256) in ``out_dir``; an existing one is kept so clients keep trusting it."""
    cert, key = out_dir / "ca.crt", out_dir / "ca.key"
    if cert.exists() and key.exists():
        return cert, key
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key.name, cwd=out_dir)
    _openssl("req", "-x509", "-new", "-key", key.name, "-sha256", "-days", str(days),
             "-subj", "/CN=streetlight local CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-out", cert.name, cwd=out_dir)
    return cert, key


def _san(hosts: Sequence[str]) -> str:
    return ",".join(f"IP:{h}" if h.replace(".", "").isdigit() or ":" in h else f"DNS:{h}" for h in hosts)


def ensure_server_cert(out_dir: Path, ca_cert: Path, ca_key: Path, hosts: Sequence[str],
                       days: int = 825) -> tuple[Path, Path]:
    """The TLS listener's certificate for ``hosts``, re-issued when missing or for other hosts."""
    cert, key = out_dir / "server.crt", out_dir / "server.key"
    hosts_file = out_dir / "server.hosts"
    wanted = _san(hosts)
    if cert.exists() and key.exists() and hosts_file.exists() and hosts_file.read_text().strip() == wanted:
        return cert, key
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        ext = Path(tmp) / "ext.cnf"
        ext.write_text(f"subjectAltName={wanted}\nbasicConstraints=CA:FALSE\n"
                       "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key.name, cwd=out_dir)
        _openssl("req", "-new", "-key", key.name, "-subj", f"/CN={hosts[0]}", "-out", f"{tmp}/server.csr", cwd=out_dir)
        _openssl("x509", "-req", "-in", f"{tmp}/server.csr", "-CA", ca_cert.name, "-CAkey", ca_key.name,
                 "-CAcreateserial", "-days", str(days), "-sha256", "-extfile", str(ext), "-out", cert.name, cwd=out_dir)
    hosts_file.write_text(wanted + "\n")
    return cert, key


def _check_unique(roads: Sequence[Road]) -> None:
    seen: dict[str, str] = {}
    problems = []
    for road in roads:
        for pid in road.pole_ids:
            if not ID_RE.match(pid):
                problems.append(f"pole id {pid!r} of road {road.id} does not match [A-Za-z0-9-]{{1,32}}")
            if pid in seen:
                problems.append(f"pole id {pid} is on road {seen[pid]} and on road {road.id}")
            seen[pid] = road.id
    if problems:
        raise BrokerSecurityError(
            "broker usernames are pole ids, so they must be unique across the roads of one broker: "
            + "; ".join(problems[:10]) + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else "")
        )


def acl_text(roads: Sequence[Road], concentrators: bool = True, compact: bool | None = None) -> str:
    """The ACL file.

    Up to :data:`COMPACT_ABOVE` poles every pole gets explicit lines naming its road and id.
    Above that, its own topics come from ``pattern`` lines with ``%u`` (its username, which is
    its id), one set per road, and only its road's heartbeat is listed per pole: Mosquitto looks
    the user up by a linear scan for every ACL line it loads, so explicit lines for 10,000 poles
    take seconds to load, while the patterns cost nothing. Concentrators come first for the same
    reason. Patterns apply to every user, so when one broker serves several roads each pole also
    gets one ``deny`` line per other road (Mosquitto checks denials first): a pole speaks only
    under its own road. A road concentrator gets explicit lines for its road's poles, never a
    ``+``, so it cannot publish for a pole id the registry does not have.
    """
    total = sum(len(r.poles) for r in roads)
    compact = total > COMPACT_ABOVE if compact is None else compact
    lines = [
        "# Generated by `streetlight broker config` from the road registry; regenerate, do not edit.",
        "# A pole writes its own uplink topics and reads its own cmd/config and its road's heartbeat.",
        "",
        f"user {PLATFORM_USER}",
        "topic readwrite sl/v1/#",
        # the gateway mirrors there what LwM2M poles said; API processes read it; no device may do either
        f"topic readwrite {MIRROR_PREFIX}/#",
        # shared subscriptions are checked against the full filter by some broker versions
        "topic read $share/+/sl/v1/#",
        "topic read $SYS/#",
        "",
        f"user {HEALTH_USER}",
        "topic read $SYS/broker/uptime",
        "",
    ]
    for road in roads if concentrators else ():
        hb = road_topic(road.id, "heartbeat")
        # a road concentrator carries every pole of its road, and nothing of other roads
        lines.append(f"user {concentrator_user(road.id)}")
        for pid in road.pole_ids:
            lines += [f"topic write {pole_topic(road.id, pid, k)}" for k in UPLINK_KINDS]
            lines += [f"topic read {pole_topic(road.id, pid, k)}" for k in DOWNLINK_KINDS]
        lines += [f"topic read {hb}", ""]
        # a cabinet concentrator carries only the poles that cabinet feeds
        for cab in road.cabinets:
            lines.append(f"user {concentrator_user(road.id, cab.id)}")
            for pole in road.poles:
                if pole.cabinet == cab.id:
                    lines += [f"topic write {pole_topic(road.id, pole.id, k)}" for k in UPLINK_KINDS]
                    lines += [f"topic read {pole_topic(road.id, pole.id, k)}" for k in DOWNLINK_KINDS]
            lines += [f"topic read {hb}", ""]
    for road in roads:
        # a cabinet's controller writes its own cabinet topics and nothing else (and, as a pole
        # pattern would give it a pole topic named after it under compact rules, is denied those)
        for cab in road.cabinets:
            lines.append(f"user {cabinet_user(road.id, cab.id)}")
            if compact:
                lines.append(f"topic deny sl/v1/+/{cabinet_user(road.id, cab.id)}/#")
            lines += [f"topic write {cabinet_topic(road.id, cab.id, k)}" for k in ("telemetry", "status")]
            lines += [f"topic read {road_topic(road.id, 'heartbeat')}", ""]
    if compact:
        # usernames are pole ids, unique across roads, so %u names one pole wherever it appears
        for road in roads:
            lines += [f"pattern write sl/v1/{road.id}/%u/{k}" for k in UPLINK_KINDS]
            lines += [f"pattern read sl/v1/{road.id}/%u/{k}" for k in DOWNLINK_KINDS]
        lines.append("")
    for road in roads:
        hb = road_topic(road.id, "heartbeat")
        others = [r.id for r in roads if r.id != road.id] if compact else []
        for pid in road.pole_ids:
            lines.append(f"user {pid}")
            lines += [f"topic deny sl/v1/{other}/{pid}/#" for other in others]
            if not compact:
                lines += [f"topic write {pole_topic(road.id, pid, k)}" for k in UPLINK_KINDS]
                lines += [f"topic read {pole_topic(road.id, pid, k)}" for k in DOWNLINK_KINDS]
            lines += [f"topic read {hb}", ""]
    return "\n".join(lines) + "\n"


def _clashes(users: list[str]) -> list[str]:
    seen: set[str] = set()
    twice: set[str] = set()
    for u in users:
        (twice if u in seen else seen).add(u)
    return sorted(twice)


def account_names(roads: Sequence[Road], concentrators: bool = True) -> list[str]:
    users = [PLATFORM_USER, HEALTH_USER]
    for road in roads:
        users += road.pole_ids
        if concentrators:
            users.append(concentrator_user(road.id))
            users += [concentrator_user(road.id, c.id) for c in road.cabinets]
        users += [cabinet_user(road.id, c.id) for c in road.cabinets]
    return users


def passwd_text(users: Iterable[str], secret: str, service: Mapping[str, str]) -> str:
    rows = []
    for user in users:
        pw = service[user] if user in SERVICE_USERS else account_password(secret, user)
        rows.append(f"{user}:{mosquitto_hash(pw)}")
    return "\n".join(rows) + "\n"


def conf_text(layout: BrokerLayout, config_dir: str, persistence_dir: str, tls: bool) -> str:
    listeners = [Listener(layout.port, layout.bind)]
    if tls and layout.tls_port:
        listeners.append(Listener(layout.tls_port, layout.bind, tls_dir=config_dir))
    return mosquitto_conf_text(listeners, persistence_dir=persistence_dir, run_as=layout.run_as,
                               autosave_interval_s=layout.autosave_interval_s,
                               max_queued_messages=layout.max_queued_messages, auth_dir=config_dir,
                               header="Generated by `streetlight broker config`; regenerate, do not edit.")


def _write(path: Path, text: str, mode: int) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)


def generate(
    roads: Sequence[Road],
    secret: str,
    out_dir: Path,
    layout: BrokerLayout | None = None,
    *,
    concentrators: bool = True,
    compact_acl: bool | None = None,
    file_mode: int = 0o600,
    service: Mapping[str, str] | None = None,
) -> BrokerSecuritySet:
    """Write the whole security set for ``roads`` into ``out_dir`` and return where it is.

    The CA is created once and kept, so clients that trust it keep working after a
    regeneration; the server certificate is re-issued when missing or for other hosts.
    ``file_mode`` is 0600 for a local broker; a container whose broker runs as another user
    needs the files readable by that user (see docs/operations.md). ``service`` holds the
    service accounts' passwords (:func:`service_passwords` of the data folder); without it they
    are kept in ``out_dir/broker-accounts.json``.
    """
    if not roads:
        raise BrokerSecurityError("no road given: the security set is generated from at least one road registry")
    if not secret:
        raise BrokerSecurityError("the site secret is empty; set STREETLIGHT_POLE_SECRET or keep var/secret")
    layout = layout or BrokerLayout()
    _check_unique(roads)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    config_dir = layout.config_dir or str(out_dir)
    persistence_dir = layout.persistence_dir or str(out_dir / "persist")
    if layout.persistence_dir is None:
        (out_dir / "persist").mkdir(exist_ok=True)

    service = dict(service) if service is not None else service_passwords(out_dir)
    missing = [u for u in SERVICE_USERS if not service.get(u)]
    if missing:
        raise BrokerSecurityError(f"no password for the service account(s) {', '.join(missing)}")
    health_file = out_dir / "health.password"
    _write(health_file, service[HEALTH_USER] + "\n", file_mode)

    users = account_names(roads, concentrators)
    clashes = _clashes(users)
    if clashes:
        raise BrokerSecurityError(f"account names used twice (a pole id equal to 'platform', 'health' or a "
                                  f"concentrator's name?): {', '.join(clashes[:10])}")
    _write(out_dir / "passwd", passwd_text(users, secret, service), file_mode)
    _write(out_dir / "acl", acl_text(roads, concentrators, compact_acl), file_mode)

    ca_cert = server_cert = server_key = None
    if layout.tls_port:
        ca_cert, ca_key = ensure_ca(out_dir)
        server_cert, server_key = ensure_server_cert(out_dir, ca_cert, ca_key, layout.tls_hosts)
        for p in (ca_key, server_key):
            p.chmod(file_mode)
    _write(out_dir / "mosquitto.conf", conf_text(layout, config_dir, persistence_dir, bool(layout.tls_port)), 0o644)
    return BrokerSecuritySet(
        out_dir=out_dir, conf=out_dir / "mosquitto.conf", passwd=out_dir / "passwd", acl=out_dir / "acl",
        ca_cert=ca_cert, server_cert=server_cert, server_key=server_key, health_password_file=health_file,
        users=users, service_passwords=service,
    )
