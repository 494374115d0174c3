"""schemathesis against the served OpenAPI, on both platforms: every check (no server errors, only
documented status codes, responses and requests the schema describes, OPTIONS and headers that
agree with the routes) and every phase (examples, coverage, fuzzing, stateful), bounded to fit CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from api.app import ApiOptions, create_app
from api.serve import served
from streetlight.settings import Settings

MAX_EXAMPLES = 12


def test_schemathesis_finds_no_failure(platform: Any, inject_fault: Any, tmp_path: Path) -> None:
    # its calls without a token are checks of the 401s, not guesses: no address throttling here;
    # generated webhook URLs point anywhere: kept, never called (deliver_webhooks=False), and their
    # hosts are not looked up in DNS (no traffic off this machine): every name stands for 127.0.0.1,
    # which this site allows
    settings = Settings(data_dir=tmp_path, auth_failures_per_minute=10**6, webhook_allow=["127.0.0.1"])
    app = create_app(platform, settings, tmp_path / "api.sqlite3",
                     ApiOptions(commands_per_minute=1e6, command_burst=10**6, deliver_webhooks=False,
                                resolve=lambda host, port: ["127.0.0.1"]))
    inject_fault("nanhuan-1", "NH-010")
    admin = app.state.ctx.tokens.create("admin", "schemathesis")[0]
    st = Path(sys.executable).parent / "st"
    with served(app) as url:
        proc = subprocess.run(
            [str(st), "run", f"{url}/openapi.json", "--checks", "all", "-H", f"Authorization: Bearer {admin}",
             "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", str(MAX_EXAMPLES), "--seed", "1",
             "--workers", "1", "--exclude-path", "/api/v1/stream", "--request-timeout", "20",
             "--generation-database", "none"],
            cwd=tmp_path, capture_output=True, text=True, timeout=600,
        )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-12000:]
    assert "No issues found" in out, out[-3000:]
