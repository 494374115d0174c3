"""``streetlight up`` and its process management; the production compose file's shape."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from ops.processes import ProcessGroup, pick_port, port_is_free, wait_for
from ops.servers import PostgresServer, free_port

ROOT = Path(__file__).resolve().parent.parent


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_pick_port_prefers_the_given_port_and_avoids_a_busy_one() -> None:
    port = free_port()
    assert pick_port(port) == port
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        assert not port_is_free(port)
        other = pick_port(port)
        assert other != port and port_is_free(other)
    assert pick_port(0) > 0


def test_process_group_stops_in_reverse_order_and_kills_stubborn_children(tmp_path: Path) -> None:
    order = tmp_path / "order"
    # a child that records its SIGTERM, and a stubborn one that ignores SIGTERM and has a grandchild
    polite = (f"import signal,sys,time\n"
              f"def bye(*a):\n open({str(order)!r},'a').write('polite\\n'); sys.exit(0)\n"
              f"signal.signal(signal.SIGTERM, bye)\nopen({str(tmp_path / 'polite.ready')!r},'w').close()\n"
              f"time.sleep(600)\n")
    stubborn = (f"import signal,subprocess,sys,time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
                f"open({str(tmp_path / 'grandchild')!r},'w').write(str(p.pid))\n"
                f"time.sleep(600)\n")
    group = ProcessGroup(tmp_path / "logs", stop_timeout_s=1.0)
    a = group.start("polite", [sys.executable, "-c", polite])
    b = group.start("stubborn", [sys.executable, "-c", stubborn])
    assert wait_for(lambda: (tmp_path / "grandchild").exists() and (tmp_path / "polite.ready").exists(), 30)
    grandchild = int((tmp_path / "grandchild").read_text())
    said: list[str] = []
    group.stop_all(report=said.append)
    assert said == [f"stopping stubborn (pid {b.pid})", f"stopping polite (pid {a.pid})"]
    assert b.proc.returncode == -signal.SIGKILL, "a child that ignores SIGTERM is killed"
    assert a.proc.returncode == 0 and order.read_text() == "polite\n"
    assert wait_for(lambda: _gone(grandchild), 10), "the grandchild must not outlive the group"


def test_a_child_that_ends_by_itself_is_reported(tmp_path: Path) -> None:
    group = ProcessGroup(tmp_path / "logs")
    child = group.start("short", [sys.executable, "-c", "print('bye'); raise SystemExit(3)"])
    assert wait_for(lambda: bool(group.exited()), 30)
    assert group.exited() == {"short": 3}
    assert "bye" in child.log_tail()
    group.forget("short")
    assert group.pids() == {}


def _connect_code(port: int, user: str | None, password: str | None) -> int:
    got: list[int] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if user:
        c.username_pw_set(user, password)
    c.on_connect = lambda cl, u, f, rc, p: (got.append(rc.value), cl.disconnect())
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        assert wait_for(lambda: bool(got), 10)
    finally:
        c.loop_stop()
    return got[0]


def _first_telemetry(port: int, password: str) -> str:
    got: list[str] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.username_pw_set("platform", password)
    c.on_connect = lambda cl, u, f, rc, p: cl.subscribe("sl/v1/+/+/telemetry", qos=1)
    c.on_message = lambda cl, u, m: got.append(m.topic)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        assert wait_for(lambda: bool(got), 60), "no telemetry from the simulated road within 60 s"
    finally:
        c.loop_stop()
        c.disconnect()
    return got[0]


@pytest.mark.servers
@pytest.mark.slow
def test_up_starts_everything_and_leaves_nothing_running(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETLIGHT_")}
    # the platform itself is covered by the whole-road test; here: servers, the simulator child,
    # the security set in use, and the shutdown
    argv = [sys.executable, "-m", "streetlight", "--data-dir", str(var), "up", "--no-serve",
            "--mqtt-port", "0", "--mqtt-tls-port", "0", "--influx-port", "0", "--api-port", "0",
            "--speed", "10"]
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115 - closed below
    up = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    state_file = var / "up.json"
    descendants: list[psutil.Process] = []
    try:
        ready = wait_for(lambda: state_file.exists() or up.poll() is not None, 150, interval_s=0.5)
        output = (tmp_path / "up.log").read_text()
        assert ready and up.poll() is None, f"up did not get ready:\n{output[-3000:]}"
        state = json.loads(state_file.read_text())
        mqtt_port = int(state["mqtt_url"].rsplit(":", 1)[1])
        accounts = var / "broker-accounts.json"
        assert accounts.stat().st_mode & 0o777 == 0o600
        platform_pw = json.loads(accounts.read_text())["platform"]

        # the broker runs with the generated security set, the database answers
        assert _connect_code(mqtt_port, "platform", platform_pw) == 0
        assert _connect_code(mqtt_port, None, None) >= 0x80, "anonymous must be refused"
        with urllib.request.urlopen(f"{state['influx_url']}/ping", timeout=5) as resp:
            assert resp.status == 204
        assert "streetlight is up" in output
        for name in state["missing"]:
            assert f"the '{name}' command is not part of this installation" in output
        started = {s["name"] for s in state["started"]}
        assert {"mosquitto", "influxd"} <= started
        if "simulate" not in state["missing"]:
            assert "simulate" in started
            # the simulated poles get in with their own credentials: their telemetry arrives
            assert _first_telemetry(mqtt_port, platform_pw).startswith("sl/v1/nanhuan-1/NH-")
        second = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
        assert second.returncode == 1 and "another 'streetlight up' is running" in second.stderr
        descendants = psutil.Process(up.pid).children(recursive=True)
        assert len(descendants) >= len(started)

        up.send_signal(signal.SIGTERM)
        rc = up.wait(timeout=120)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        log.close()
    output = (tmp_path / "up.log").read_text()
    assert rc == 0, output[-3000:]
    assert "nothing left running" in output
    assert not state_file.exists()
    left = [p for p in descendants if not _gone(p.pid)]
    assert not left, f"still running after up stopped: {[(p.pid, p.name()) for p in left]}"


def test_compose_file_has_the_services_healthchecks_and_volumes() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"mosquitto", "influxdb", "platform", "simulator"} <= set(services)
    for name in ("mosquitto", "influxdb", "platform"):
        check = services[name]["healthcheck"]["test"]
        assert check[0] in ("CMD", "CMD-SHELL") and len(check) >= 2, name
    assert services["simulator"]["profiles"] == ["sim"]
    assert services["influxdb"]["image"].startswith("influxdb:1.")
    declared = set(compose["volumes"])
    for name in ("mosquitto", "influxdb", "platform"):
        named = {v.split(":", 1)[0] for v in services[name]["volumes"] if not v.startswith(".")}
        assert named and named <= declared, name
    assert "./deploy/mosquitto:/mosquitto/config" in services["mosquitto"]["volumes"]
    env = services["platform"]["environment"]
    for key in ("STREETLIGHT_MQTT_URL", "STREETLIGHT_MQTT_USERNAME", "STREETLIGHT_MQTT_PASSWORD",
                "STREETLIGHT_INFLUX_URL", "STREETLIGHT_DATA_DIR"):
        assert key in env, key
    # the platform never gets the pole secret, the poles never get the platform's account
    assert "STREETLIGHT_POLE_SECRET" not in env
    sim_env = services["simulator"]["environment"]
    assert "STREETLIGHT_POLE_SECRET" in sim_env
    assert not {"STREETLIGHT_MQTT_USERNAME", "STREETLIGHT_MQTT_PASSWORD"} & set(sim_env)
    assert env["STREETLIGHT_MQTT_URL"] == "mqtt://mosquitto:1883"
    for dep in ("mosquitto", "influxdb"):
        assert services["platform"]["depends_on"][dep]["condition"] == "service_healthy"
    # every STREETLIGHT_* setting the platform gets is a real setting
    from streetlight.settings import Settings

    fields = {f"STREETLIGHT_{n.upper()}" for n in Settings.model_fields}
    assert set(env) <= fields, set(env) - fields
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "CMD [\"streetlight\", \"serve\"" in dockerfile


CITY = ("postgres", "gateway-1", "gateway-2", "controller-1", "controller-2", "api-1", "api-2")


def _serve_options() -> dict[str, bool]:
    """``streetlight serve``'s options as the real command line declares them: name -> takes a value."""
    import typer.main

    from streetlight.cli import app

    serve = typer.main.get_command(app).commands["serve"]  # type: ignore[attr-defined]
    return {opt: not p.is_flag for p in serve.params for opt in (*p.opts, *p.secondary_opts)}


def test_compose_city_profile_runs_each_role_on_postgresql_with_commands_the_cli_accepts() -> None:
    from runtime.roles import ROLES
    from streetlight.settings import Settings

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert "profiles" not in services["platform"], "the single platform stays the default"
    assert all(services[n]["profiles"] == ["city"] for n in CITY)
    pg = services["postgres"]
    assert pg["image"].startswith("postgres:") and pg["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")
    fields = {f"STREETLIGHT_{n.upper()}" for n in Settings.model_fields}
    options = _serve_options()
    client_ids, roles = set(), []
    for name in CITY[1:]:
        svc = services[name]
        argv = svc["command"]
        assert argv[:2] == ["streetlight", "serve"], name
        args = argv[2:]
        i = 0
        while i < len(args):  # every option is one of serve's, with its value where it takes one
            assert args[i] in options, f"{name}: serve has no option {args[i]}"
            if options[args[i]]:
                value = args[i + 1]
                if args[i] == "--only":
                    assert value in ROLES, f"{name}: no role {value}"
                    roles.append((name, value))
                if args[i] == "--client-id":
                    client_ids.add(value)
                i += 1
            i += 1
        env = svc["environment"]
        assert set(env) <= fields, (name, set(env) - fields)
        state_url = env["STREETLIGHT_STATE_URL"]
        assert state_url.startswith("postgresql://") and "@postgres:5432/" in state_url
        assert "STREETLIGHT_POLE_SECRET" not in env
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        # one data folder for all: the control channel's file, the gateways' spools by client id
        assert "city-data:/var/lib/streetlight" in svc["volumes"]
        assert env["STREETLIGHT_DATA_DIR"] == "/var/lib/streetlight"
    assert roles == [(n, n.rsplit("-", 1)[0]) for n in CITY[1:]], "each service runs the role it is named for"
    assert len(client_ids) == len(CITY) - 1, "a fixed client id per service"
    for name in ("controller-1", "controller-2"):
        env = services[name]["environment"]
        assert env["STREETLIGHT_CONTROL_HOST"] == "0.0.0.0" and env["STREETLIGHT_CONTROL_ADVERTISE"] == name
        Settings(control_host=env["STREETLIGHT_CONTROL_HOST"], control_port=int(env["STREETLIGHT_CONTROL_PORT"]))
    declared = set(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["volumes"])
    assert {"postgres-data", "city-data"} <= declared


def test_up_names_the_processes_serve_runs_and_picks_a_free_postgresql_port() -> None:
    from streetlight.cli.up import _choose_ports, _process_names

    assert _process_names(None) == ["core", "api"]
    assert _process_names((2, 1, 3)) == ["gateway-1", "gateway-2", "controller-1", "api-1", "api-2", "api-3"]
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        ports = _choose_ports(0, 0, 0, 0, taken)
        assert ports.postgres not in (0, taken) and len({*vars(ports).values()}) == 5
    assert _choose_ports(0, 0, 0, 0).postgres == 0, "no PostgreSQL without --processes"


@pytest.mark.servers
def test_a_fresh_simulated_night_clears_the_controllers_rows_in_postgresql_and_keeps_the_tokens(
        postgres: PostgresServer) -> None:
    from api.auth import TokenStore
    from api.store import Store
    from runtime.state import ControllerStore
    from streetlight.cli.up import _forget_simulated_state

    url = postgres.create_database("up_forget")
    controller = ControllerStore(url)
    controller.save_energy("nanhuan-1", 1_000, {"kwh": 12.5})
    store = Store(url)
    TokenStore(store).create("operator", "kept")
    _forget_simulated_state(url)
    assert controller.energy("nanhuan-1") is None
    assert [t["name"] for t in TokenStore(store).list()] == ["kept"]
    controller.close()
    store.close()
    _forget_simulated_state(postgres.create_database("up_forget_empty"))  # a new database has no tables yet


def test_wait_for_gives_up_when_told() -> None:
    calls: list[int] = []
    assert wait_for(lambda: bool(calls.append(1)), 60, interval_s=0.01, abort=lambda: len(calls) >= 3) is False
    assert len(calls) == 3
