"""``streetlight up``: the whole road on this machine, with one command.

Starts Mosquitto (with the generated security set) and InfluxDB on loopback with their data in
``./var``, then ``streetlight serve`` (gateway, controller, API) and ``streetlight simulate``
as child processes, waits for the API, creates an operator token and prints where to look.
With ``--processes`` the platform runs split by role (``serve --processes``: gateways,
controllers and API processes of their own) on a PostgreSQL cluster that ``up`` starts too.
Ctrl-C or SIGTERM stops everything it started, newest first, and nothing is left running.
What it started is written to ``var/up.json`` (ports, pids, token) for scripts and tests.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import settings

DEFAULT_SCENARIO = "demo-night"
DEFAULT_SPEED = "120"  # a 12-hour night in about 6 minutes
CLI = [sys.executable, "-m", "streetlight"]
CONSEQUENCE = {"serve": "the platform (gateway, controller, API) is not started",
               "simulate": "the simulated road is not started", "token": "no operator token is created"}


@dataclass
class Ports:
    mqtt: int
    mqtt_tls: int
    influx: int
    api: int
    postgres: int = 0  # with --processes only


def available_commands() -> set[str]:
    """Top-level commands and groups of this installation's ``streetlight`` command line."""
    from . import app

    names = {c.name or (c.callback.__name__.replace("_", "-") if c.callback else "") for c in app.registered_commands}
    names |= {g.name or "" for g in app.registered_groups}
    return names - {""}


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _child_env(s_env: dict[str, str]) -> dict[str, str]:
    import os

    # the local servers need no database credentials and no broker CA: drop any set for others
    foreign = {f"STREETLIGHT_{k}" for k in ("MQTT_CA_FILE", "INFLUX_USERNAME", "INFLUX_PASSWORD", "INFLUX_TOKEN",
                                             "POLE_SECRET")}
    env = {k: v for k, v in os.environ.items() if k not in foreign}
    env.update(s_env)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _device_env(platform_env: dict[str, str], secret: str) -> dict[str, str]:
    """The simulated poles' environment: the pole secret, and not the platform's account."""
    env = {k: v for k, v in platform_env.items()
           if k not in ("STREETLIGHT_MQTT_USERNAME", "STREETLIGHT_MQTT_PASSWORD", "STREETLIGHT_STATE_URL")}
    env["STREETLIGHT_POLE_SECRET"] = secret
    return env


def _say(msg: str) -> None:
    typer.echo(f"up: {msg}", err=True)


def _forget_simulated_night(var: Path) -> None:
    """A simulated road replays the same hours every time: what an earlier run left (readings,
    faults, energy, the broker's queued and retained messages, all stamped with those hours) would
    be taken for this run's own. Tokens, webhooks, the audit and the broker's accounts stay."""
    import shutil

    gone = [p for p in (var / "mosquitto" / "persist" / "mosquitto.db", var / "influxdb", var / "gateway",
                        *var.glob("controller.sqlite3*")) if p.exists()]
    for p in gone:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    if gone:
        _say("a simulated night starts afresh: the previous run's readings, faults and broker queue are cleared "
             "(--keep-history keeps them)")


def _forget_simulated_state(state_url: str) -> None:
    """The controller's rows of an earlier simulated night in a PostgreSQL state database (what
    :func:`_forget_simulated_night` removes with ``controller.sqlite3``); the API's rows stay."""
    from sqlalchemy import inspect

    from ..statedb import Database
    from ..statedb.schema import CONTROLLER_TABLES

    db = Database(state_url)
    try:
        with db.write() as conn:
            present = set(inspect(conn).get_table_names())
            for table in CONTROLLER_TABLES:
                if table.name in present:
                    conn.execute(table.delete())
    finally:
        db.close()


def _write_state(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.chmod(0o600)
    tmp.replace(path)


def register(app: typer.Typer) -> None:
    @app.command("up")
    def up(
        scenario: str = typer.Option(DEFAULT_SCENARIO, help="simulator scenario (name or file)"),
        speed: str = typer.Option(DEFAULT_SPEED, help="simulation speed: 1 = real time, 60 = an hour a minute, max"),
        road: Annotated[list[str] | None, typer.Option("--road", help="roads the broker accepts [default: STREETLIGHT_ROADS]")] = None,
        mqtt_port: int = typer.Option(1883, help="broker port (a free one if busy; 0 = any)"),
        mqtt_tls_port: int = typer.Option(8883, help="broker TLS port (a free one if busy)"),
        influx_port: int = typer.Option(8086, help="InfluxDB port (a free one if busy)"),
        api_port: int = typer.Option(None, help="API and dashboard port (a free one if busy) [default: STREETLIGHT_API_PORT, 8000]"),
        serve: bool = typer.Option(True, help="start the platform (streetlight serve)"),
        sim: bool = typer.Option(True, help="start the simulated road (streetlight simulate)"),
        api_wait: float = typer.Option(90.0, help="seconds to wait for the API to answer"),
        processes: bool = typer.Option(False, "--processes",
                                       help="run the platform split by role (serve --processes: gateways, "
                                            "controllers, API processes of their own) on a PostgreSQL cluster "
                                            "started with the other servers"),
        gateways: int = typer.Option(2, min=1, help="with --processes: gateway processes"),
        controllers: int = typer.Option(2, min=1, help="with --processes: controller processes"),
        apis: int = typer.Option(2, min=1, help="with --processes: API processes"),
        postgres_port: int = typer.Option(5432, help="with --processes: PostgreSQL port (a free one if busy)"),
        keep_history: bool = typer.Option(False, help="with a simulated road: keep the previous run's readings, "
                                                      "faults and broker queue (by default a simulated night starts "
                                                      "afresh, since it replays the same hours)"),
    ) -> None:
        """Run the road on this machine: broker, database, platform and simulator. Ctrl-C stops all."""
        from ops.broker_security import PLATFORM_USER, BrokerLayout, generate, service_passwords
        from ops.processes import ProcessGroup

        from ..registry import load_road
        from .broker import site_secret

        s = settings()
        var = s.state_dir().resolve()
        _refuse_second_run(var / "up.json")
        if sim and not keep_history:
            _forget_simulated_night(var)
        stop = threading.Event()

        def on_signal(signum: int, _frame: Any) -> None:
            if not stop.is_set():
                _say(f"got {signal.Signals(signum).name}, stopping everything …")
            stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

        commands = available_commands()
        missing = [c for c, on in (("serve", serve), ("simulate", sim), ("token", serve)) if on and c not in commands]
        for c in missing:
            _say(f"the '{c}' command is not part of this installation: {CONSEQUENCE[c]}")

        ports = _choose_ports(mqtt_port, mqtt_tls_port, influx_port, s.api_port if api_port is None else api_port,
                              postgres_port if processes else None)
        secret = site_secret(var, s.pole_secret.get_secret_value() if s.pole_secret else None)
        roads = [load_road(r) for r in (road or s.roads)]
        (var / "mosquitto" / "persist").mkdir(parents=True, exist_ok=True)
        service = service_passwords(var)
        security = generate(roads, secret, var / "broker",
                            BrokerLayout(port=ports.mqtt, tls_port=ports.mqtt_tls,
                                         persistence_dir=str(var / "mosquitto" / "persist"), autosave_interval_s=5),
                            service=service)

        group = ProcessGroup(var / "logs")
        state_file = var / "up.json"
        rc = 0
        try:
            _start_servers(group, ports, security.conf, var)
            state_url = _start_postgres(group, ports.postgres, var, forget=sim and not keep_history) \
                if processes and serve else None
            env = _child_env({
                "STREETLIGHT_MQTT_URL": f"mqtt://127.0.0.1:{ports.mqtt}",
                "STREETLIGHT_MQTT_USERNAME": PLATFORM_USER,
                "STREETLIGHT_MQTT_PASSWORD": service[PLATFORM_USER],
                "STREETLIGHT_INFLUX_URL": f"http://127.0.0.1:{ports.influx}",
                "STREETLIGHT_INFLUX_DB": s.influx_db,
                "STREETLIGHT_DATA_DIR": str(var),
                "STREETLIGHT_API_HOST": "127.0.0.1",
                "STREETLIGHT_API_PORT": str(ports.api),
                "STREETLIGHT_ROADS": json.dumps([r.id for r in roads]),
                "STREETLIGHT_LOG_LEVEL": s.log_level,
                **({"STREETLIGHT_STATE_URL": state_url} if state_url else {}),
            })
            city = (gateways, controllers, apis) if processes else None
            api_url = f"http://127.0.0.1:{ports.api}"
            state: dict[str, Any] = {
                "mqtt_url": env["STREETLIGHT_MQTT_URL"], "mqtts_url": f"mqtts://127.0.0.1:{ports.mqtt_tls}",
                "ca_file": str(security.ca_cert), "influx_url": env["STREETLIGHT_INFLUX_URL"],
                "api_url": api_url, "dashboard": f"{api_url}/", "token": None, "started": [], "missing": missing,
                "state_url": state_url, "processes": _process_names(city) if serve and "serve" in commands else [],
            }
            api_up = False
            if serve and "serve" in commands:
                api_up, rc = _start_platform(group, env, api_url, ports.api, api_wait, stop, city)
            if api_up and "token" in commands and not stop.is_set():
                state["token"] = _create_token(env)
            if sim and "simulate" in commands and not stop.is_set():
                child = group.start("simulate", [*CLI, "simulate", "--scenario", scenario, "--speed", speed,
                                                   "--link", "4g"], env=_device_env(env, secret))
                _say(f"starting the simulated road: scenario {scenario} at speed {speed} (pid {child.pid})")
                if api_up:
                    _await_road(api_url, stop)
            if not stop.is_set():
                state["started"] = [{"name": n, "pid": p} for n, p in group.pids().items()]
                _write_state(state_file, state)
                _banner(state, api_up, var)
                rc = _supervise(group, stop)
        finally:
            group.stop_all(report=_say)
            state_file.unlink(missing_ok=True)
            _say("stopped; nothing left running")
        if rc:
            raise typer.Exit(rc)


def _refuse_second_run(state_file: Path) -> None:
    """Two runs on one data folder would share (and corrupt) the databases: refuse the second."""
    import os

    if not state_file.exists():
        return
    try:
        pids = [int(p["pid"]) for p in json.loads(state_file.read_text()).get("started", [])]
    except (ValueError, KeyError, TypeError):
        pids = []
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        except PermissionError:
            pass  # it exists, under another user
        alive.append(pid)
    if alive:
        _say(f"another 'streetlight up' is running on {state_file.parent} (pids {', '.join(map(str, alive))}); "
             "stop it first, or give this one another --data-dir")
        raise typer.Exit(1)
    state_file.unlink()  # left by a run that was killed


def _choose_ports(mqtt: int, mqtt_tls: int, influx: int, api: int, postgres: int | None = None) -> Ports:
    """The asked-for ports, or free ones where they are busy (and say which); PostgreSQL's only
    when one is wanted (``postgres`` not None)."""
    from ops.processes import pick_port

    wanted = (mqtt, mqtt_tls, influx, api) + (() if postgres is None else (postgres,))
    taken: list[int] = []
    for port in wanted:
        taken.append(pick_port(port, taken))
    for want, got, what in zip(wanted, taken, ("broker", "broker TLS", "InfluxDB", "API", "PostgreSQL"), strict=False):
        if want and want != got:
            _say(f"port {want} for {what} is busy; using {got}")
    return Ports(*taken)


def _start_servers(group: Any, ports: Ports, mosquitto_conf: Path, var: Path) -> None:
    from ops.servers import InfluxServer, ManagedServer, MosquittoServer

    servers: list[tuple[ManagedServer, str]] = [
        (MosquittoServer(name="mosquitto", port=ports.mqtt, data_dir=var / "mosquitto", config_path=mosquitto_conf),
         f"Mosquitto on 127.0.0.1:{ports.mqtt} (TLS {ports.mqtt_tls})"),
        (InfluxServer(name="influxd", port=ports.influx, data_dir=var / "influxdb"), f"InfluxDB on 127.0.0.1:{ports.influx}"),
    ]
    for server, what in servers:
        _say(f"starting {what}, data in {server.data_dir}")
        try:
            server.start()  # type: ignore[attr-defined]
        except Exception:
            server.stop()  # a server that never answered may still be running
            raise
        group.adopt_server(server)


PLATFORM_DB = "streetlight"  # the platform's database on up's PostgreSQL cluster


def _start_postgres(group: Any, port: int, var: Path, *, forget: bool) -> str:
    """PostgreSQL for the platform split by role: a cluster in ``var/postgres`` (made the first time,
    kept), the platform's database created when missing; returns that database's URL."""
    from ops.servers import PostgresServer

    folder = var / "postgres"
    keep = PostgresServer.owner_can_reach(folder)
    if not keep:
        # PostgreSQL refuses root, and the 'postgres' user it then runs as cannot get to this data folder
        _say(f"PostgreSQL does not run as root and the 'postgres' user cannot reach {var}: this run's state "
             "database is a throwaway cluster under the system temp folder, removed when up stops "
             "(run up as an ordinary user, or with a data folder 'postgres' can reach, to keep it)")
    server = PostgresServer(name="postgres", port=port, data_dir=folder, cluster_dir=folder if keep else None, keep=keep)
    _say(f"starting PostgreSQL on 127.0.0.1:{port}, data in {server.cluster_dir or 'a throwaway cluster'}")
    try:
        server.start()
        url = server.ensure_database(PLATFORM_DB)
    except Exception:
        server.stop()
        raise
    group.adopt_server(server)
    if forget:
        _forget_simulated_state(url)
    return url


def _process_names(city: tuple[int, int, int] | None) -> list[str]:
    """The processes ``serve`` runs: each role's own with ``--processes``, else a core and an API process."""
    from runtime.roles import city_plan, plan

    return [p.name for p in (plan([]) if city is None else city_plan(*city, client_id="streetlight-gateway"))]


def _start_platform(group: Any, env: dict[str, str], api_url: str, port: int, wait_s: float,
                    stop: threading.Event, city: tuple[int, int, int] | None = None) -> tuple[bool, int]:
    """Start ``serve`` (split by role with ``city``: gateways, controllers, API processes) and wait
    for its API; returns (API answering, exit code so far)."""
    from ops.processes import wait_for

    argv = [*CLI, "serve", "--port", str(port)]
    if city is not None:
        argv += ["--processes", "--gateways", str(city[0]), "--controllers", str(city[1]), "--apis", str(city[2])]
    platform = group.start("serve", argv, env=env)
    _say(f"starting the platform{' split by role' if city else ''} (pid {platform.pid}); waiting up to "
         f"{wait_s:.0f} s for {api_url}/healthz")
    api_up = wait_for(lambda: _http_ok(f"{api_url}/healthz"), wait_s,
                      abort=lambda: stop.is_set() or platform.exited() is not None)
    if platform.exited() is not None:
        _say(f"the platform exited with code {platform.exited()}; its log ({platform.log_path}) ends:\n"
             + platform.log_tail())
        group.forget("serve")
        stop.set()
        return False, 1
    if not api_up and not stop.is_set():
        _say(f"the API did not answer on {api_url}/healthz within {wait_s:.0f} s; "
             f"the platform keeps running, see {platform.log_path}")
    return api_up, 0


def _create_token(env: dict[str, str]) -> str | None:
    import subprocess

    try:
        done = subprocess.run([*CLI, "token", "create", "--role", "operator", "--name", "demo"], env=env,
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        _say("'streetlight token create' did not finish within 60 s; no token")
        return None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        _say(f"'streetlight token create' failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
        return None
    return lines[-1].strip()


def _await_road(api_url: str, stop: threading.Event, wait_s: float = 60.0) -> None:
    """Wait until the platform is ready, road time included (two thirds of the poles have reported
    once): before that an operator's dim is answered 503."""
    from ops.processes import wait_for

    if not wait_for(lambda: _http_ok(f"{api_url}/readyz"), wait_s, abort=stop.is_set):
        _say(f"the road has not reported enough within {wait_s:.0f} s to know its time ({api_url}/readyz); "
             "dims are refused until it has")


def _banner(state: dict[str, Any], api_up: bool, var: Path) -> None:
    typer.echo("")
    typer.echo("streetlight is up")
    if api_up:
        typer.echo(f"  dashboard  {state['dashboard']}")
    typer.echo(f"  token      {state['token'] or '(none)'}")
    typer.echo(f"  broker     {state['mqtt_url']}  (TLS {state['mqtts_url']}, CA {state['ca_file']})")
    typer.echo(f"  influxdb   {state['influx_url']}")
    if state["state_url"]:
        typer.echo(f"  state      {state['state_url']}")
    if state["processes"]:
        typer.echo(f"  processes  {len(state['processes'])}: {', '.join(state['processes'])} (run by serve)")
    typer.echo(f"  logs       {var / 'logs'}")
    typer.echo("Press Ctrl-C to stop everything.")
    typer.echo("ready", err=True)


def _supervise(group: Any, stop: threading.Event) -> int:
    """Wait for a signal; a platform that dies ends the run, a finished simulation does not."""
    while not stop.wait(0.5):
        for name, code in group.exited().items():
            if name == "simulate":
                _say(f"the simulation ended (exit {code}); the platform keeps running")
                group.forget(name)
            else:
                child = group.children[name]
                _say(f"{name} exited with code {code}; its log ({child.log_path}) ends:\n{child.log_tail()}")
                group.forget(name)
                return 1
    return 0
