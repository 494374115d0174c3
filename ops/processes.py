"""Child processes started by ``streetlight up``, stopped in reverse order with nothing left behind.

Each child runs in a session of its own, so that a Ctrl-C in the terminal reaches only the
parent, which then stops the children in order (simulator, platform, servers), and so that a
child's own children are signalled with it (``killpg``). A child that ignores SIGTERM is killed.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .servers import LOOPBACK, ManagedServer, free_port

log = logging.getLogger(__name__)


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(preferred: int, taken: Sequence[int] = ()) -> int:
    """``preferred`` when it is free on loopback (0 means any), otherwise a free port."""
    if preferred and preferred not in taken and port_is_free(preferred):
        return preferred
    while True:
        port = free_port()
        if port not in taken:
            return port


def _stop_group(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """SIGTERM the child's process group, wait, then SIGKILL; returns the exit code."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("pid %d did not stop within %.0f s of SIGTERM; killing it", proc.pid, timeout)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
    # grandchildren that outlived their parent are still in the group: make sure they go too
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return proc.returncode


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exited(self) -> int | None:
        return self.proc.poll()

    def log_tail(self, chars: int = 2000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        if len(text) <= chars:
            return text
        tail = text[-chars:]
        return tail[tail.find("\n") + 1:]  # from a line start


@dataclass
class _Entry:
    name: str
    pid: int
    stop: Callable[[], None]


@dataclass
class ProcessGroup:
    """What one ``up`` started, in start order; :meth:`stop_all` undoes it in reverse order."""

    log_dir: Path
    stop_timeout_s: float = 15.0
    children: dict[str, Child] = field(default_factory=dict)
    _entries: list[_Entry] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None,
              cwd: Path | None = None) -> Child:
        if name in self.children:
            raise ValueError(f"a child named {name!r} is already running")
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True)
        child = Child(name, list(argv), proc, log_path)
        self.children[name] = child
        self._entries.append(_Entry(name, proc.pid, lambda: self._stop_child(child)))
        log.info("started %s (pid %d), log %s", name, proc.pid, log_path)
        return child

    def adopt_server(self, server: ManagedServer) -> None:
        """Stop a running Mosquitto/InfluxDB with the others, in reverse start order."""
        assert server.proc is not None, "start the server before adopting it"
        self._entries.append(_Entry(server.name, server.proc.pid, lambda: server.stop(timeout=self.stop_timeout_s)))

    def _stop_child(self, child: Child) -> None:
        rc = _stop_group(child.proc, self.stop_timeout_s)
        self.children.pop(child.name, None)
        log.info("stopped %s (exit %s)", child.name, rc)

    def pids(self) -> dict[str, int]:
        return {e.name: e.pid for e in self._entries}

    def exited(self) -> dict[str, int]:
        """Children that have exited on their own since they started, with their exit codes."""
        return {name: rc for name, c in self.children.items() if (rc := c.exited()) is not None}

    def forget(self, name: str) -> None:
        """Drop a child that ended by itself (already reaped) from the stop list."""
        self.children.pop(name, None)
        self._entries = [e for e in self._entries if e.name != name]

    def stop_all(self, report: Callable[[str], None] | None = None) -> None:
        while self._entries:
            entry = self._entries.pop()
            if report:
                report(f"stopping {entry.name} (pid {entry.pid})")
            try:
                entry.stop()
            except Exception as err:  # noqa: BLE001 - keep stopping the others whatever one does
                log.error("could not stop %s cleanly: %s", entry.name, err)

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def wait_for(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.25,
              abort: Callable[[], bool] | None = None) -> bool:
    """Poll ``check`` until it is true or the deadline passes (or ``abort`` says to give up)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        if abort and abort():
            return False
        time.sleep(interval_s)
    return check()
