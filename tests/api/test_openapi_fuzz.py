"""schemathesis against the served OpenAPI: no server errors, only documented status codes, and
every response matching its schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from api.app import ApiOptions, create_app
from api.serve import served
from streetlight.settings import Settings

CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance"


def test_schemathesis_finds_no_failure(platform: Any, inject_fault: Any, tmp_path: Path) -> None:
    # generated webhook URLs point anywhere: keep them, send nothing
    # its calls without a token are checks of the 401s, not guesses: no address throttling here;
    # generated webhook hosts are not looked up in DNS (no traffic off this machine): every name
    # stands for 127.0.0.1, which this site allows
    settings = Settings(data_dir=tmp_path, auth_failures_per_minute=10**6, webhook_allow=["127.0.0.1"])
    app = create_app(platform, settings, tmp_path / "api.sqlite3",
                     ApiOptions(commands_per_minute=1e6, command_burst=10**6, deliver_webhooks=False,
                                resolve=lambda host, port: ["127.0.0.1"]))
    inject_fault("nanhuan-1", "NH-010")
    admin = app.state.ctx.tokens.create("admin", "schemathesis")[0]
    st = Path(sys.executable).parent / "st"
    with served(app) as url:
        proc = subprocess.run(
            [str(st), "run", f"{url}/openapi.json", "--checks", CHECKS, "-H", f"Authorization: Bearer {admin}",
             "--max-examples", "12", "--seed", "1", "--workers", "1", "--exclude-path", "/api/v1/stream",
             "--request-timeout", "20"],
            cwd=tmp_path, capture_output=True, text=True, timeout=240,
        )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "No issues found" in out, out[-3000:]
