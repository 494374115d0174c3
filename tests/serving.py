"""``streetlight serve`` as a child of a test, started the way ``streetlight up`` starts it.

The platform runs as its real processes (a core process with gateway and controller, an API
process, supervised by ``serve``) against a broker and a database the test started; the test
reaches it only through its HTTP API and its state database. :meth:`Served.check` (and every
:meth:`Served.get`) fails with the processes' logs once ``serve`` has died.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from api.auth import TokenStore
from api.store import Store
from streetlight.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
LOG_TAIL = 4000


@dataclass
class Served:
    """A running ``streetlight serve``: its API at ``url``, its data folder ``var``."""

    proc: subprocess.Popen[bytes]
    url: str
    var: Path
    log_path: Path
    settings: Settings
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def logs(self) -> str:
        """The tail of ``serve``'s own output and of each supervised process's log."""
        parts = [(f"serve (pid {self.proc.pid})", self.log_path)]
        parts += [(p.stem, p) for p in sorted((self.var / "logs").glob("*.log"))]
        out = []
        for name, path in parts:
            text = path.read_text(errors="replace") if path.exists() else ""
            out.append(f"--- {name}: {path}\n{text[-LOG_TAIL:]}")
        return "\n".join(out)

    def pids(self, name: str) -> list[int]:
        """The pids ``serve`` started its ``name`` process (``core``, ``api``) under, first to last."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [int(p) for p in re.findall(rf"started the {name} process \([^)]*\), pid (\d+)", text)]

    def check(self) -> None:
        """Fail, with the logs, if ``serve`` has exited."""
        if self.proc.poll() is not None:
            raise AssertionError(f"streetlight serve exited with code {self.proc.returncode}\n{self.logs()}")

    def tokens(self, roles: Mapping[str, str]) -> dict[str, str]:
        """A token per role (named by ``roles[role]``), created in the state database the API reads."""
        store = Store(self.settings.state_location("api.sqlite3"))
        try:
            tokens = TokenStore(store)
            return {role: tokens.create(role, name)[0] for role, name in roles.items()}
        finally:
            store.close()

    def get(self, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        """GET on the API; a request that gets no answer fails with the processes' logs."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            return self.client.get(path, params=params, headers=headers)
        except httpx.HTTPError as err:
            self.check()
            raise AssertionError(f"no answer to GET {path}: {err!r}\n{self.logs()}") from err

    def answers(self, path: str) -> bool:
        """``path`` answers 200 without a token (``/healthz``, ``/readyz``); fails if ``serve`` died."""
        self.check()
        try:
            return self.client.get(path).status_code == 200
        except httpx.HTTPError:
            return False

    def ready(self) -> bool:
        """``/readyz`` answers 200: broker, database, and the road's time known to the controller."""
        return self.answers("/readyz")

    def stop(self, timeout_s: float = 60.0) -> int:
        """Ctrl-C, as an operator stops it; killed (with its process group) if it does not end."""
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            raise AssertionError(f"streetlight serve did not stop within {timeout_s:.0f} s of SIGINT\n"
                                 f"{self.logs()}") from None


def serve(tmp: Path, *, mqtt_url: str, influx_url: str, port: int, roads: list[str], influx_db: str = "streetlight",
          extra_env: Mapping[str, str] | None = None, args: list[str] | None = None) -> Served:
    """Start ``streetlight serve --port port --road …`` on a data folder under ``tmp``, with the
    environment ``up`` gives it (and no other ``STREETLIGHT_*`` setting of the caller's)."""
    var = tmp / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETLIGHT_")}
    env.update({"STREETLIGHT_MQTT_URL": mqtt_url, "STREETLIGHT_INFLUX_URL": influx_url,
                "STREETLIGHT_INFLUX_DB": influx_db, "STREETLIGHT_DATA_DIR": str(var),
                "STREETLIGHT_API_HOST": "127.0.0.1", "STREETLIGHT_API_PORT": str(port),
                "STREETLIGHT_LOG_LEVEL": "WARNING", **(extra_env or {})})
    # the processes run this tree's code, wherever the test runs from
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    settings = Settings(mqtt_url=mqtt_url, influx_url=influx_url, influx_db=influx_db, data_dir=var, state_url=None)
    argv = [sys.executable, "-m", "streetlight", "serve", "--port", str(port)]
    for road in roads:
        argv += ["--road", road]
    log_path = tmp / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv + list(args or []), env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return Served(proc, f"http://127.0.0.1:{port}", var, log_path, settings)


def stop_all(procs: list[subprocess.Popen[bytes]], timeout_s: float = 30.0) -> None:
    """Stop ``serve`` processes a test started: SIGINT to all (they stop together), then wait for
    each; one that has not stopped in ``timeout_s`` is killed."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
