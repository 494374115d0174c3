"""``streetlight serve``: the platform's processes by role (:mod:`runtime.roles`).

:func:`run_core` runs the gateway and the controller, with the control channel API processes call;
:func:`run_api` runs the API and the dashboard over :class:`runtime.api_platform.SplitPlatform`;
:func:`run_gateway_only` one more gateway on a shared subscription; :func:`run_core` without
ingest a controller process of its own (road leases); :func:`run_roles` picks, and supervises several processes when
the roles asked for need more than one, or a city plan (each role in processes of its own).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import uvicorn

from gateway.service import settle_garbage_collector
from streetlight.registry import Road
from streetlight.settings import Settings

if TYPE_CHECKING:
    from gateway.service import GatewayService
    from lwm2m.adapter import Lwm2mAdapter

log = logging.getLogger(__name__)


def start_lwm2m(settings: Settings, gateway: GatewayService, roads: list[Road]) -> Lwm2mAdapter | None:
    """The LwM2M server beside the MQTT edge when ``STREETLIGHT_LWM2M_ENABLED`` (started; stop it
    before the gateway)."""
    if not settings.lwm2m_enabled:
        return None
    from lwm2m.adapter import Lwm2mAdapter

    adapter = Lwm2mAdapter(gateway, settings, roads)
    adapter.start()
    return adapter


class _Server(uvicorn.Server):
    """uvicorn re-raises the signal that stopped it, which would end the process before the
    platform behind the API has stopped; here SIGINT/SIGTERM only end the server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def stop(_sig: int, _frame: object) -> None:
            self.should_exit = True

        old = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)


def run_gateway_only(settings: Settings, roads: list[Road], *, client_id: str, shared_group: str | None,
                     metrics_port: int | None) -> None:
    """A gateway process without controller or API (one of several on a shared subscription)."""
    from gateway.service import GatewayService

    # the heartbeat says "the platform decides for this road": the controller's to send, not ingest's
    gw = GatewayService(settings, roads, client_id=client_id, shared_group=shared_group, heartbeat=lambda _road: False)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    gw.start()
    lwm2m = start_lwm2m(settings, gw, roads)
    settle_garbage_collector()
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=settings.api_host, registry=gw.metrics.registry)
    log.info("gateway %s serving %s", client_id, ", ".join(r.id for r in roads))
    try:
        while not stop.wait(1.0):
            pass
    finally:
        if lwm2m is not None:
            lwm2m.stop()
        gw.stop()


def _wait_for_signal() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def lease_s(report_interval_s: float) -> float:
    """A road's lease time: a dead holder's roads are taken over within one report interval, since the
    lease runs out within 0.6 of it and the next claim comes at most a third of a lease later."""
    return 0.6 * report_interval_s


def run_core(settings: Settings, roads: list[Road], *, client_id: str, shared_group: str | None = None,
             report_interval_s: int = 10, ingest: bool = True) -> None:
    """The gateway and the controller until SIGINT/SIGTERM, serving the control channel.

    On a shared subscription (``shared_group``) other core processes may serve the same roads:
    the controller then decides only for the roads whose lease it holds (``runtime.leases``, a
    lease of 0.6 report interval: :func:`lease_s`); every such process advertises its control channel, and API
    processes send a road's calls to the one whose snapshot says it holds the road. Without ``ingest`` it is a
    controller process: always on leases, storing nothing (the gateway processes store)."""
    from .control_channel import ControlChannel
    from .live_platform import LivePlatform
    from .roles import exit_with_parent

    stop = _wait_for_signal()
    exit_with_parent(stop.set)
    platform = LivePlatform(settings, roads, client_id=client_id, shared_group=shared_group,
                            report_interval_s=report_interval_s,
                            lease_s=lease_s(report_interval_s) if shared_group or not ingest else None, ingest=ingest)
    platform.start()
    settle_garbage_collector()
    # LwM2M devices talk to one server address: it runs beside a gateway (one that stores)
    lwm2m = start_lwm2m(settings, platform.gateway, roads) if ingest else None
    leases = platform.leases
    channel = ControlChannel(platform, settings.state_dir(), host=settings.control_host, port=settings.control_port,
                             advertise=settings.control_address, name=client_id)
    channel.start()  # every controller process, holding a road or standing by: its snapshot says which
    what = "gateway and controller" if ingest else "controller"
    print(f"streetlight {what} serving {', '.join(r.id for r in roads)} "
          f"({sum(len(r.poles) for r in roads)} poles): broker {settings.mqtt_url}  "
          f"database {settings.influx_url}/{settings.influx_db}  control channel {channel.url}"
          + (f"  LwM2M coap://{settings.lwm2m_host}:{settings.lwm2m_port}" if lwm2m is not None else "")
          + (f"  holding {', '.join(r.id for r in roads if leases.holds(r.id)) or 'no road yet (standing by)'}"
             if leases is not None else ""), flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        channel.stop()
        if lwm2m is not None:
            lwm2m.stop()  # no more LwM2M input before the gateway finishes its last batch
        platform.stop()  # the gateway finishes its batch and closes the spool; the store is flushed


def listening_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    """The API's socket; with ``reuse_port`` several API processes listen on the same port and the
    kernel spreads connections over the live ones (one address for a stateless API tier)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections take it from here: without it an answer's second write waited for the
    # client's delayed ACK (40 ms a request, measured: 90 pole lists/s where 711 were served)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def run_api(settings: Settings, roads: list[Road], *, port: int, report_interval_s: int = 10,
            reuse_port: bool = False, client_id: str | None = None) -> None:
    """The API and the dashboard on ``port`` until SIGINT/SIGTERM, in a process of their own: the
    road from the broker, state from the database, the controller over the control channel."""
    from api.app import create_app
    from api.store import default_store_location

    from .api_platform import SplitPlatform
    from .roles import exit_with_parent

    platform = SplitPlatform(settings, roads, report_interval_s=report_interval_s,
                             client_id=f"{client_id}-{os.getpid()}" if client_id else None)
    platform.start()
    app = create_app(platform, settings, default_store_location(settings))
    server = _Server(uvicorn.Config(app, host=settings.api_host, port=port, log_level="warning", access_log=False,
                                    timeout_graceful_shutdown=3))
    sock = listening_socket(settings.api_host, port, reuse_port)

    def stop() -> None:
        server.should_exit = True

    exit_with_parent(stop)
    print(f"streetlight API serving {', '.join(r.id for r in roads)}: dashboard and API on "
          f"http://{settings.api_host}:{port}/", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        platform.stop()


def run_roles(settings: Settings, roads: list[Road], only: list[str], *, port: int | None, client_id: str,
              shared_group: str | None = None, report_interval_s: int = 10, road_refs: list[str] | None = None,
              reuse_port: bool = False, city: tuple[int, int, int] | None = None) -> int:
    """Run the roles in ``only`` (every role when empty): in this process when they make one
    process, else each process supervised by this one. ``road_refs`` are the roads as the command
    line named them (a registry file's path, say), so that each process loads the same registry.
    ``city`` = (gateways, controllers, API processes): each role in processes of its own, supervised.
    ``port`` is the API's (``settings.api_port`` when not given), or a lone gateway's /metrics (none
    when not given)."""
    from .roles import Proc, city_plan, plan, serve_argv, supervise

    if city is not None:
        procs = city_plan(*city, client_id=client_id)
        shared_group = shared_group or "gateways"
    else:
        procs = plan(only)
    if len(procs) == 1 and city is None:
        p = procs[0]
        if p.name == "core":
            run_core(settings, roads, client_id=client_id, shared_group=shared_group,
                     report_interval_s=report_interval_s)
        elif p.name == "controller":
            run_core(settings, roads, client_id=client_id, shared_group=shared_group,
                     report_interval_s=report_interval_s, ingest=False)
        elif p.name == "gateway":
            run_gateway_only(settings, roads, client_id=client_id, shared_group=shared_group, metrics_port=port)
        else:
            run_api(settings, roads, port=port or settings.api_port, report_interval_s=report_interval_s,
                    reuse_port=reuse_port, client_id=client_id)
        return 0
    port = port or settings.api_port
    print(f"streetlight serving {', '.join(r.id for r in roads)} ({sum(len(r.poles) for r in roads)} poles) as "
          f"{len(procs)} processes: dashboard and API on http://{settings.api_host}:{port}/  broker "
          f"{settings.mqtt_url}  database {settings.influx_url}/{settings.influx_db}", flush=True)

    def argv(p: Proc) -> list[str]:
        return serve_argv(p, port=port, roads=road_refs or [r.id for r in roads], client_id=client_id,
                          shared_group=shared_group, report_interval_s=report_interval_s,
                          reuse_port=city is not None)

    return supervise(procs, argv, settings.state_dir() / "logs", say=lambda m: print(m, flush=True))
