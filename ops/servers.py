"""Start and stop real local Mosquitto, InfluxDB and PostgreSQL servers on loopback.

Used by the test fixtures, ``streetlight up`` and the benchmarks. Each server gets a free port
on 127.0.0.1 (or the one asked for), its data in a folder of its own, and is stopped with its
whole process group so that nothing is left running.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from streetlight.errors import ServerStartError
from streetlight.net import LOOPBACK, free_port  # noqa: F401  (part of this module's interface)


def _current_user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return "root" if os.geteuid() == 0 else "nobody"


def find_binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name, Path("/usr/local/sbin") / name) if p.exists()),
        None,
    )
    if found is None:
        package = {"mosquitto": "mosquitto", "influxd": "influxdb", "initdb": "postgresql",
                   "postgres": "postgresql"}.get(name, name)
        raise ServerStartError(name, f"'{name}' is not installed; install the Debian package '{package}' "
                                     f"(apt-get install {package}) or run 'make test', which installs it")
    return found


def _wait_port(port: int, proc: subprocess.Popen[bytes], name: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerStartError(name, f"exited with {proc.returncode}; log:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise ServerStartError(name, f"did not listen on {LOOPBACK}:{port} within {timeout:.0f} s")


@dataclass
class ManagedServer:
    name: str
    port: int
    data_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"{self.name}.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _spawn(self, argv: list[str]) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, cwd=self.data_dir)
        log.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM by default; pass SIGKILL to simulate a crash)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None

    def __enter__(self) -> ManagedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# TLS 1.2 suites with forward secrecy and authenticated encryption only (no CBC, no SHA-1 MAC);
# TLS 1.3 suites are all AEAD, listed to pin them explicitly
TLS12_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
                 "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305")
TLS13_CIPHERS = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"


@dataclass(frozen=True)
class Listener:
    """One Mosquitto listener; with ``tls_dir`` it serves TLS 1.2+ (AEAD suites only) with ca.crt/server.crt/server.key there."""

    port: int
    bind: str | None = LOOPBACK  # None = every interface (inside a container)
    tls_dir: str | None = None


def mosquitto_conf_text(listeners: list[Listener], *, persistence_dir: str, run_as: str | None,
                        autosave_interval_s: int, max_queued_messages: int,
                        auth_dir: str | None = None, header: str | None = None, extra: str = "") -> str:
    """The text of a mosquitto.conf: the one writer for test, local and production brokers.

    ``auth_dir`` holds ``passwd`` and ``acl`` (anonymous clients are refused); without it anyone
    may connect (a throwaway broker for tests and benchmarks).
    """
    lines = [f"# {header}"] if header else []
    lines += [
        "per_listener_settings false",
        # started as root, Mosquitto drops to the 'mosquitto' user, which cannot write a
        # persistence folder (or read 0600 files) made by someone else: run as that someone
        *([f"user {run_as}"] if run_as else []),
    ]
    if auth_dir is not None:
        lines += ["allow_anonymous false", f"password_file {auth_dir}/passwd", f"acl_file {auth_dir}/acl"]
    else:
        lines.append("allow_anonymous true")
    lines += [
        "persistence true",
        f"persistence_location {persistence_dir.rstrip('/')}/",
        f"autosave_interval {autosave_interval_s}",
        # a slow subscriber must not silently lose messages: queue deliberately
        f"max_queued_messages {max_queued_messages}",
        "max_queued_bytes 0",
        "max_inflight_messages 0",
        "max_packet_size 1048576",
        # small control messages (a command, its ack) go out at once, not after the peer's delayed ACK
        "set_tcp_nodelay true",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "connection_messages false",
    ]
    for listener in listeners:
        bind = f" {listener.bind}" if listener.bind else ""
        lines += ["", f"listener {listener.port}{bind}"]
        if listener.tls_dir is not None:
            d = listener.tls_dir
            lines += [f"cafile {d}/ca.crt", f"certfile {d}/server.crt", f"keyfile {d}/server.key", "tls_version tlsv1.2",
                      f"ciphers {TLS12_CIPHERS}", f"ciphers_tls1.3 {TLS13_CIPHERS}"]
    if extra:
        lines += ["", extra]
    return "\n".join(lines) + "\n"


@dataclass
class MosquittoServer(ManagedServer):
    """A Mosquitto 2 broker on loopback; ``extra_config`` lines are appended to the generated config."""

    extra_config: str = ""
    config_path: Path | None = None  # a complete config to use instead of the generated one
    max_queued_messages: int = 1_000_000

    @property
    def url(self) -> str:
        return f"mqtt://{LOOPBACK}:{self.port}"

    def write_config(self) -> Path:
        if self.config_path is not None:
            return self.config_path
        path = self.data_dir / "mosquitto.conf"
        persist = self.data_dir / "persist"
        persist.mkdir(exist_ok=True)
        path.write_text(mosquitto_conf_text(
            [Listener(self.port)], persistence_dir=str(persist), run_as=_current_user(), autosave_interval_s=1,
            max_queued_messages=self.max_queued_messages, extra=self.extra_config))
        return path

    def start(self, timeout: float = 10.0) -> MosquittoServer:
        if self.running:
            return self
        self._spawn([find_binary("mosquitto"), "-c", str(self.write_config())])
        assert self.proc is not None
        _wait_port(self.port, self.proc, "mosquitto", self.log_path, timeout)
        return self


@dataclass
class InfluxServer(ManagedServer):
    """An InfluxDB 1.x ``influxd`` on loopback, with usage reporting off."""

    rpc_port: int = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def write_config(self) -> Path:
        if not self.rpc_port:
            self.rpc_port = free_port()
        d = self.data_dir
        path = d / "influxdb.conf"
        path.write_text(f"""\
reporting-disabled = true
bind-address = "{LOOPBACK}:{self.rpc_port}"

[meta]
  dir = "{d}/meta"

[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
  cache-max-memory-size = "256m"
  max-series-per-database = 0
  max-values-per-tag = 0

[coordinator]
  query-timeout = "60s"

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "{LOOPBACK}:{self.port}"
  log-enabled = false
  max-body-size = 0

[continuous_queries]
  enabled = true
  log-enabled = false
  run-interval = "1s"
""")
        return path

    def start(self, timeout: float = 30.0) -> InfluxServer:
        if self.running:
            return self
        self._spawn([find_binary("influxd"), "run", "-config", str(self.write_config())])
        assert self.proc is not None
        _wait_port(self.port, self.proc, "influxd", self.log_path, timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as resp:
                    if resp.status == 204:
                        return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise ServerStartError("influxd", f"/ping did not answer within {timeout:.0f} s")


def find_postgres_binary(name: str) -> str:
    """``initdb`` or ``postgres``: Debian keeps them under /usr/lib/postgresql/<version>/bin, off the PATH."""
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3])
                      if p.parts[-3].isdigit() else 0)
    return str(versions[-1]) if versions else find_binary(name)


@dataclass
class PostgresServer(ManagedServer):
    """A throwaway PostgreSQL cluster on loopback: ``initdb`` into a folder of its own, ``postgres``
    in the foreground (stopped with its process group like the others), trust authentication on
    127.0.0.1 only, no Unix socket, durability off (a test's data is not worth an fsync).

    PostgreSQL refuses to run as root; started by root, the cluster belongs to the ``postgres``
    user that Debian's package creates, in a folder of its own under the system temp directory
    (a test's temporary folder is not reachable by that user), removed again by :meth:`stop`.

    With ``keep`` (``streetlight up``'s cluster) it lives in ``cluster_dir``, is made there the
    first time and kept by :meth:`stop`, and runs durably (fsync on).
    """

    user: str = "postgres"  # the cluster's superuser
    cluster_dir: Path | None = None
    keep: bool = False

    @property
    def url(self) -> str:
        return self.url_of("postgres")

    def url_of(self, database: str) -> str:
        return f"postgresql://{self.user}@{LOOPBACK}:{self.port}/{database}"

    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    def start(self, timeout: float = 60.0) -> PostgresServer:
        if self.running:
            return self
        if self.cluster_dir is None:
            self.cluster_dir = Path(tempfile.mkdtemp(prefix="streetlight-pg-"))
        self.cluster_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.cluster_dir, "postgres", "postgres")
        pgdata = self.cluster_dir / "data"
        if not (pgdata / "PG_VERSION").exists():
            init = subprocess.run(self._as_owner([find_postgres_binary("initdb"), "-D", str(pgdata), "-U", self.user,
                                                  "--auth=trust", "--encoding=UTF8", "--no-locale",
                                                  *([] if self.keep else ["--no-sync"])]),
                                  capture_output=True, text=True, cwd=self.cluster_dir, check=False)
            if init.returncode != 0:
                raise ServerStartError("postgres", f"initdb failed: {init.stderr[-2000:]}")
        fast = [] if self.keep else ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        self._spawn(self._as_owner([
            find_postgres_binary("postgres"), "-D", str(pgdata), "-p", str(self.port),
            "-c", f"listen_addresses={LOOPBACK}", "-c", "unix_socket_directories=", *fast,
            "-c", "max_connections=200"]))
        assert self.proc is not None
        _wait_port(self.port, self.proc, "postgres", self.log_path, timeout)
        deadline = time.monotonic() + timeout
        while True:  # the port opens before the cluster accepts connections
            try:
                self.execute("SELECT 1")
                return self
            except Exception as err:  # noqa: BLE001 - psycopg's "starting up" answers, until the deadline
                if time.monotonic() > deadline:
                    raise ServerStartError("postgres", f"did not accept connections within {timeout:.0f} s: {err}") from err
                time.sleep(0.1)

    def execute(self, sql: str, database: str = "postgres") -> None:
        """One statement outside a transaction (CREATE DATABASE cannot run in one)."""
        import psycopg

        with psycopg.connect(self.url_of(database), autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.encode())

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url_of(name)

    def ensure_database(self, name: str) -> str:
        """The database ``name``, created when missing; returns its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}"'.encode())
        return self.url_of(name)

    @staticmethod
    def owner_can_reach(folder: Path) -> bool:
        """Whether the cluster's owner may use ``folder``: always when it is the current user; as root,
        whether the ``postgres`` user can get through every folder above it."""
        if os.geteuid() != 0:
            return True
        folder.mkdir(parents=True, exist_ok=True)
        return subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(folder.resolve())],
                              capture_output=True, check=False).returncode == 0

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> None:
        """SIGINT: PostgreSQL's fast shutdown (SIGTERM would wait for every client to leave)."""
        super().stop(sig, timeout)
        if self.cluster_dir is not None and not self.keep:
            shutil.rmtree(self.cluster_dir, ignore_errors=True)
            self.cluster_dir = None


def start_mosquitto(data_dir: Path, port: int | None = None, **kw: object) -> MosquittoServer:
    return MosquittoServer(name="mosquitto", port=port or free_port(), data_dir=data_dir, **kw).start()  # type: ignore[arg-type]


def start_influxd(data_dir: Path, port: int | None = None) -> InfluxServer:
    return InfluxServer(name="influxd", port=port or free_port(), data_dir=data_dir).start()


def start_postgres(data_dir: Path, port: int | None = None) -> PostgresServer:
    return PostgresServer(name="postgres", port=port or free_port(), data_dir=data_dir).start()
