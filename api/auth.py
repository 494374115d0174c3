"""Bearer tokens and roles.

A token is ``sl_`` followed by 256 random bits; only its SHA-256 is stored (a random token of
that length needs no slow hash: there is nothing to guess from a dictionary). Tokens are created
with ``streetlight token create`` or by an admin over the API, and revoked, never edited. A token
may be given a lifetime (``expires_ms``); after it, it is refused like a revoked one, and any live
stream it holds is closed.

Roles and what they may do (``PERMISSIONS``): ``viewer`` reads; ``operator`` reads, dims,
sets overrides, the emergency all-on, schedules, identifies poles and switches their equipment's
ports; ``maintenance`` reads, acknowledges and resolves faults, identifies poles and power-cycles
their equipment (a hung camera); ``admin`` may do everything, and manages tokens and webhooks.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, insert, or_, select, update

from streetlight.statedb.schema import tokens

from .store import Store

ROLES = ("viewer", "operator", "maintenance", "admin")
PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "operator": frozenset({"read", "control", "identify", "schedules", "power_cycle"}),
    "maintenance": frozenset({"read", "faults", "identify", "power_cycle"}),
    "admin": frozenset({"read", "control", "identify", "schedules", "faults", "power_cycle", "admin"}),
}
PERMISSION_WORDS = {
    "read": "read the road", "control": "dim poles or switch the emergency all-on",
    "identify": "identify poles", "schedules": "change schedules",
    "faults": "acknowledge or resolve faults", "admin": "manage tokens and webhooks",
    "power_cycle": "power-cycle a pole's equipment",
}

class UnknownRole(ValueError):
    def __init__(self, role: str) -> None:
        super().__init__(f"unknown role {role!r}; roles are {', '.join(ROLES)}")


class UnknownToken(LookupError):
    def __init__(self, token_id: str) -> None:
        self.token_id = token_id
        super().__init__(f"no token with id {token_id!r}; list them with 'streetlight token list'")


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: str
    name: str
    role: str
    expires_ms: int | None = None

    def may(self, permission: str) -> bool:
        return permission in PERMISSIONS[self.role]

    @property
    def actor(self) -> str:
        return f"{self.name} ({self.role})"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now_ms() -> int:
    return int(time.time() * 1000)


class TokenStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, role: str, name: str, expires_in_s: float | None = None) -> tuple[str, dict[str, Any]]:
        """A new token: returns the token (shown once) and its stored record."""
        if role not in ROLES:
            raise UnknownRole(role)
        if not name.strip():
            raise ValueError("a token needs a name saying who or what uses it, e.g. --name 'night shift'")
        if expires_in_s is not None and expires_in_s <= 0:
            raise ValueError("a token's lifetime must be positive (or not given: no expiry)")
        token = "sl_" + secrets.token_urlsafe(32)
        now = _now_ms()
        record = {"id": "tok_" + secrets.token_hex(6), "name": name.strip(), "role": role,
                  "created_ms": now, "revoked_ms": None,
                  "expires_ms": None if expires_in_s is None else now + int(expires_in_s * 1000)}
        with self.store.tx() as db:
            db.execute(insert(tokens).values(id=record["id"], name=record["name"], role=role, hash=_hash(token),
                                             created_ms=now, expires_ms=record["expires_ms"]))
        return token, record

    @staticmethod
    def _usable() -> ColumnElement[bool]:
        """Neither revoked nor expired, now."""
        return and_(tokens.c.revoked_ms.is_(None), or_(tokens.c.expires_ms.is_(None), tokens.c.expires_ms > _now_ms()))

    def authenticate(self, token: str) -> Principal | None:
        rows = self.store.query(select(tokens.c.id, tokens.c.name, tokens.c.role, tokens.c.expires_ms)
                                .where(tokens.c.hash == _hash(token), self._usable()))
        if not rows:
            return None
        r = rows[0]
        return Principal(token_id=r["id"], name=r["name"], role=r["role"], expires_ms=r["expires_ms"])

    def active(self, token_id: str) -> bool:
        """The token is neither revoked nor expired (asked again while a live stream is open)."""
        return bool(self.store.query(select(tokens.c.id).where(tokens.c.id == token_id, self._usable())))

    def list(self, include_revoked: bool = True) -> list[dict[str, Any]]:
        q = select(tokens.c.id, tokens.c.name, tokens.c.role, tokens.c.created_ms, tokens.c.revoked_ms,
                   tokens.c.expires_ms)
        if not include_revoked:
            q = q.where(tokens.c.revoked_ms.is_(None))
        return [dict(r) for r in self.store.query(q.order_by(tokens.c.created_ms, tokens.c.id))]

    def revoke(self, token_id: str) -> dict[str, Any]:
        with self.store.tx() as db:
            cur = db.execute(update(tokens).where(tokens.c.id == token_id, tokens.c.revoked_ms.is_(None))
                             .values(revoked_ms=int(time.time() * 1000)))
            if cur.rowcount == 0 and db.execute(select(tokens.c.id).where(tokens.c.id == token_id)).first() is None:
                raise UnknownToken(token_id)
        return next(t for t in self.list() if t["id"] == token_id)
