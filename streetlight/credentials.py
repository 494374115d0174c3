"""Broker credentials: pole passwords derived from the site secret, service passwords random.

A pole's username is its id (per the protocol page) and its password is
HMAC-SHA256(secret, pole id), so the broker's password file, the simulators and a
commissioning tool can all derive the same credentials without a table of 10,000 passwords
to distribute. The accounts of the platform and of the broker's health check are different:
they may read or write far more than one pole, so their passwords are random, generated once
into a file of mode 0600 under the data folder, and owe nothing to the pole secret: whoever
holds the pole secret (a commissioning tool, a simulator) still cannot log in as the platform.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

SERVICE_ACCOUNTS_FILE = "broker-accounts.json"


class CredentialsFileError(ValueError):
    """A credentials file exists but cannot be used (unreadable JSON, wrong shape)."""


def pole_password(secret: str, pole_id: str) -> str:
    return hmac.new(secret.encode(), pole_id.encode(), hashlib.sha256).hexdigest()[:32]


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only, never visible with wider rights."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.chmod(0o600)
    tmp.replace(path)


def load_or_create_secret(path: Path) -> str:
    """The site secret in ``path`` (created with 0600 permissions when missing)."""
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_hex(32)
    write_private(path, value + "\n")
    return value


def service_accounts_path(data_dir: Path) -> Path:
    return data_dir / SERVICE_ACCOUNTS_FILE


def load_or_create_service_passwords(path: Path, users: Iterable[str]) -> dict[str, str]:
    """Random passwords of the broker's service accounts, kept in ``path`` (mode 0600).

    Existing passwords are kept, so a regenerated broker set does not lock the running platform
    out; a user not in the file yet gets a new random password.
    """
    stored: dict[str, str] = {}
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except ValueError as err:
            raise CredentialsFileError(f"{path} is not JSON ({err}); delete it to generate new service "
                                       "passwords, then regenerate the broker set") from None
        if not isinstance(stored, dict) or not all(isinstance(v, str) for v in stored.values()):
            raise CredentialsFileError(f"{path} should map account names to passwords; delete it to start over")
    wanted = list(users)
    missing = [u for u in wanted if u not in stored]
    if missing or (path.exists() and path.stat().st_mode & 0o077):
        stored.update({u: secrets.token_urlsafe(24) for u in missing})
        write_private(path, json.dumps(stored, indent=1, sort_keys=True) + "\n")
    return {u: stored[u] for u in wanted}


def platform_account(data_dir: Path) -> tuple[str, str] | None:
    """The platform's broker login kept in the data folder by ``broker config`` / ``up``, if any."""
    path = service_accounts_path(data_dir)
    if not path.exists():
        return None
    stored = json.loads(path.read_text())
    password = stored.get("platform") if isinstance(stored, dict) else None
    return ("platform", password) if isinstance(password, str) else None
