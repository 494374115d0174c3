"""Processes by role: what ``streetlight serve --only ROLE …`` runs, and the supervisor that runs
several of them with one command.

Roles are ``gateway`` (ingest: the MQTT edge into InfluxDB), ``controller`` (decisions, commands,
faults) and ``api`` (HTTP and the dashboard, in a process of its own:
:class:`runtime.api_platform.SplitPlatform`). ``gateway`` and ``controller`` together make one
*core* process (the controller hears the road through its gateway); a ``controller`` alone is a
process that hears its roads on a read of its own, stores nothing, and decides for the roads whose
lease it holds (:mod:`runtime.leases`). With no ``--only``, ``serve`` runs every role: a core
process and an API process, started, watched and restarted by the ``serve`` process itself.

A *city* plan (:func:`city_plan`) runs each role in processes of its own, several of each: gateways
on one shared subscription, controllers with road leases, API processes on one port
(``SO_REUSEPORT``: the kernel spreads connections over the live ones).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from streetlight.errors import StreetlightError

log = logging.getLogger(__name__)
ROLES = ("gateway", "controller", "api")
PARENT_ENV = "STREETLIGHT_SERVE_PARENT"  # a supervised process ends when this process is gone
RESTART_DELAY_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # after the 1st, 2nd … consecutive early exit


class RoleError(StreetlightError):
    """Roles that cannot run as asked."""


@dataclass(frozen=True)
class Proc:
    """One process of the platform: its name and the roles it runs; in a city plan also its own
    MQTT client id (a fixed one: a restarted gateway takes its session back)."""

    name: str  # core | gateway | controller | api, numbered in a city plan (gateway-2)
    roles: tuple[str, ...]
    client_id: str | None = None


def plan(only: Sequence[str]) -> list[Proc]:
    """The processes that run ``only`` (every role when empty), in start order."""
    roles = set(only) or set(ROLES)
    unknown = roles - set(ROLES)
    if unknown:
        raise RoleError(f"unknown role {sorted(unknown)[0]!r}; roles are {', '.join(ROLES)}")
    procs = []
    if {"gateway", "controller"} <= roles:
        procs.append(Proc("core", ("gateway", "controller")))
    elif "gateway" in roles:
        procs.append(Proc("gateway", ("gateway",)))
    elif "controller" in roles:
        procs.append(Proc("controller", ("controller",)))
    if "api" in roles:
        procs.append(Proc("api", ("api",)))
    return procs


def city_plan(gateways: int, controllers: int, apis: int, client_id: str) -> list[Proc]:
    """Each role in processes of its own: ``gateways`` on one shared subscription, ``controllers``
    sharing the roads by lease, ``apis`` on one port; in start order."""
    if min(gateways, controllers, apis) < 1:
        raise RoleError("a city plan runs at least one process of each role "
                        f"(asked: {gateways} gateway(s), {controllers} controller(s), {apis} API process(es))")
    base = client_id.removesuffix("-gateway")
    procs = [Proc(f"gateway-{i}", ("gateway",), f"{base}-gateway-{i}") for i in range(1, gateways + 1)]
    procs += [Proc(f"controller-{i}", ("controller",), f"{base}-controller-{i}") for i in range(1, controllers + 1)]
    procs += [Proc(f"api-{i}", ("api",), f"{base}-api-{i}") for i in range(1, apis + 1)]
    return procs


def exit_with_parent(stop: Callable[[], None]) -> None:
    """In a supervised process: call ``stop`` when the supervisor is gone (even killed), so no
    process of the platform outlives the ``serve`` that started it."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(0.5)
        log.warning("the serve process %s is gone; stopping", parent)
        stop()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def supervise(procs: list[Proc], child_argv: Callable[[Proc], list[str]], log_dir: Path,
              say: Callable[[str], None] = print) -> int:
    """Start each process, restart one that exits (after a growing delay), stop all on SIGINT or
    SIGTERM, the API first. Returns 0."""
    from ops.processes import ProcessGroup

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    env = {**os.environ, PARENT_ENV: str(os.getpid())}
    group = ProcessGroup(log_dir)
    early_exits = {p.name: 0 for p in procs}
    started_at: dict[str, float] = {}

    def start(p: Proc) -> None:
        child = group.start(p.name, child_argv(p), env=env)
        started_at[p.name] = time.monotonic()
        say(f"started the {p.name} process ({', '.join(p.roles)}), pid {child.pid}, log {child.log_path}")

    try:
        for p in procs:
            start(p)
        restart_at: dict[str, float] = {}
        while not stop.wait(0.5):
            for name, rc in group.exited().items():
                group.forget(name)
                lived = time.monotonic() - started_at.get(name, 0.0)
                early_exits[name] = early_exits[name] + 1 if lived < 60 else 1
                delay = RESTART_DELAY_S[min(early_exits[name], len(RESTART_DELAY_S)) - 1]
                say(f"the {name} process exited ({rc}); restarting it in {delay:g} s")
                restart_at[name] = time.monotonic() + delay
            for name, at in list(restart_at.items()):
                if time.monotonic() >= at:
                    del restart_at[name]
                    start(next(p for p in procs if p.name == name))
    finally:
        group.stop_all(report=say)
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return 0


def serve_argv(p: Proc, *, port: int, roads: list[str], client_id: str, shared_group: str | None,
               report_interval_s: int, reuse_port: bool = False) -> list[str]:
    """The command line of one supervised process."""
    argv = [sys.executable, "-m", "streetlight", "serve", "--client-id", p.client_id or client_id,
            "--report-interval-s", str(report_interval_s)]
    if "api" in p.roles:  # a gateway run this way serves no /metrics of its own
        argv += ["--port", str(port)]
        if reuse_port:
            argv.append("--reuse-port")
    for role in p.roles:
        argv += ["--only", role]
    for r in roads:
        argv += ["--road", r]
    if shared_group:
        argv += ["--shared-group", shared_group]
    return argv
