"""Per-pole broker credentials derived from one site secret.

Username = pole id (per the protocol page); password = HMAC-SHA256(secret, pole id), so the
broker's password file, the simulators and a commissioning tool can all derive the same
credentials from the secret without a table of 10,000 passwords to distribute.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path


def pole_password(secret: str, pole_id: str) -> str:
    return hmac.new(secret.encode(), pole_id.encode(), hashlib.sha256).hexdigest()[:32]


def load_or_create_secret(path: Path) -> str:
    """The site secret in ``path`` (created with 0600 permissions when missing)."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value
