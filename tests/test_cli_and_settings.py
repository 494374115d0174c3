import subprocess
import sys

import pytest
from typer.testing import CliRunner

from streetlight.cli import app
from streetlight.settings import Settings

runner = CliRunner()


def test_road_show_prints_93_poles():
    result = runner.invoke(app, ["road", "show", "nanhuan-1"])
    assert result.exit_code == 0, result.output
    assert "93" in result.output.split("poles", 1)[1].splitlines()[0] or "poles     93" in result.output
    assert "NH-001" in result.output and "NH-093" in result.output


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "streetlight", "road", "show", "nanhuan-1"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "poles     93" in out.stdout


def _commands(group, prefix=()):
    import typer.main

    click_group = typer.main.get_command(group)
    stack = [(prefix, click_group)]
    while stack:
        path, cmd = stack.pop()
        yield path
        for name, sub in getattr(cmd, "commands", {}).items():
            stack.append((path + (name,), sub))


def test_every_subcommand_has_help():
    paths = list(_commands(app))
    assert ("road", "show") in paths
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output


def test_unknown_road_is_a_clear_error():
    out = subprocess.run([sys.executable, "-m", "streetlight", "road", "show", "nowhere"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "unknown road 'nowhere'" in out.stderr and "Traceback" not in out.stderr


def test_settings_from_environment_and_overrides(monkeypatch):
    monkeypatch.setenv("STREETLIGHT_MQTT_URL", "mqtt://127.0.0.1:2883")
    monkeypatch.setenv("STREETLIGHT_INFLUX_DB", "roads")
    monkeypatch.setenv("STREETLIGHT_API_PORT", "9001")
    s = Settings()
    assert (s.mqtt_host, s.mqtt_port, s.influx_db, s.api_port) == ("127.0.0.1", 2883, "roads", 9001)
    assert s.with_overrides(influx_db="other", mqtt_url=None).influx_db == "other"
    monkeypatch.setenv("STREETLIGHT_MQTT_URL", "http://nope")
    with pytest.raises(ValueError, match="mqtt://"):
        Settings()


def test_defaults(monkeypatch):
    for k in ("MQTT_URL", "INFLUX_URL", "INFLUX_DB", "API_PORT"):
        monkeypatch.delenv(f"STREETLIGHT_{k}", raising=False)
    s = Settings()
    assert s.mqtt_url == "mqtt://127.0.0.1:1883" and s.influx_url == "http://127.0.0.1:8086"
    assert s.influx_db == "streetlight" and s.api_port == 8000
