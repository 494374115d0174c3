"""Who is registered: one :class:`Registration` per endpoint, refused unless the road registry
names the endpoint. Pure bookkeeping (no sockets): the server feeds it, tests drive it with
their own monotonic time."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from streetlight.registry import Road

from .errors import RegistrationRefused
from .objects import Path

MAX_LIFETIME_S = 2**31 - 1
QUERY_MAX = 16


@dataclass(slots=True)
class Registration:
    reg_id: str
    endpoint: str
    road: str
    pole: str
    remote: Any  # the transport's address of the device (requests go back to it)
    lifetime_s: int
    queue_mode: bool
    objects: frozenset[tuple[int, ...]]
    expires_at: float
    last_heard: float
    observations: list[Any] = field(default_factory=list)
    queued: dict[Path, Any] = field(default_factory=dict)  # queue mode: writes waiting for the device

    def has(self, obj: int, inst: int = 0) -> bool:
        return (obj, inst) in self.objects or (obj,) in self.objects


def parse_query(options: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``ep=…&lt=…&b=…`` as Uri-Query options; a repeated key or more than a few keys is refused."""
    if len(options) > QUERY_MAX:
        raise RegistrationRefused(f"{len(options)} query options; at most {QUERY_MAX}")
    out: dict[str, str] = {}
    for opt in options:
        key, _, value = opt.partition("=")
        if key in out:
            raise RegistrationRefused(f"query parameter {key!r} given twice")
        out[key] = value
    return out


def lifetime_of(query: dict[str, str], default: int) -> int:
    raw = query.get("lt")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIFETIME_S:
        raise RegistrationRefused(f"lifetime lt={raw[:20]!r} must be 1 … {MAX_LIFETIME_S} seconds")
    return int(raw)


def queue_mode_of(query: dict[str, str], current: bool = False) -> bool:
    """Binding ``UQ`` (LwM2M 1.0) or the ``Q`` parameter (1.1) puts a device in queue mode."""
    if "b" in query:
        b = query["b"]
        if b not in ("U", "UQ", "Q", "T", "S", "N", "UQS", "US"):
            raise RegistrationRefused(f"binding b={b[:10]!r} is not one of U, UQ, …")
        if "U" not in b:
            raise RegistrationRefused(f"binding {b!r}: this server speaks CoAP over UDP only (U)")
        return "Q" in b or "Q" in query
    return current or "Q" in query


class Registrations:
    def __init__(self, roads: list[Road], default_lifetime_s: int = 86_400) -> None:
        self.poles = {p.lwm2m_endpoint: (r.id, p.id) for r in roads for p in r.poles if p.lwm2m_endpoint}
        self.default_lifetime_s = default_lifetime_s
        self._by_endpoint: dict[str, Registration] = {}
        self._by_id: dict[str, Registration] = {}

    def __len__(self) -> int:
        return len(self._by_endpoint)

    def all(self) -> list[Registration]:
        return list(self._by_endpoint.values())

    def get(self, reg_id: str) -> Registration | None:
        return self._by_id.get(reg_id)

    def of_pole(self, road: str, pole: str) -> Registration | None:
        for reg in self._by_endpoint.values():
            if (reg.road, reg.pole) == (road, pole):
                return reg
        return None

    def register(self, query: dict[str, str], objects: list[tuple[int, ...]], remote: Any,
                 now: float) -> tuple[Registration, Registration | None]:
        """The new registration and the one it replaces (same endpoint registering again)."""
        ep = query.get("ep")
        if not ep:
            raise RegistrationRefused("a register needs the endpoint name (ep=…)")
        where = self.poles.get(ep)
        if where is None:
            raise RegistrationRefused(f"endpoint {ep[:80]!r} is not the controller of any pole in the registry",
                                      code="FORBIDDEN", reason="unknown_endpoint")
        lifetime = lifetime_of(query, self.default_lifetime_s)
        queue_mode = queue_mode_of(query)
        old = self._by_endpoint.pop(ep, None)
        if old is not None:
            self._by_id.pop(old.reg_id, None)
        reg = Registration(secrets.token_hex(4), ep, where[0], where[1], remote, lifetime, queue_mode,
                           frozenset(objects), now + lifetime, now)
        self._by_endpoint[ep] = reg
        self._by_id[reg.reg_id] = reg
        return reg, old

    def update(self, reg_id: str, query: dict[str, str], objects: list[tuple[int, ...]] | None, remote: Any,
               now: float) -> Registration:
        reg = self._by_id.get(reg_id)
        if reg is None:
            raise RegistrationRefused(f"no registration {reg_id[:20]!r} (expired or never made): register again",
                                      code="NOT_FOUND", reason="unknown_registration")
        reg.lifetime_s = lifetime_of(query, reg.lifetime_s)
        reg.queue_mode = queue_mode_of(query, reg.queue_mode)
        if objects:
            reg.objects = frozenset(objects)
        reg.remote = remote
        reg.expires_at = now + reg.lifetime_s
        reg.last_heard = now
        return reg

    def remove(self, reg_id: str) -> Registration | None:
        reg = self._by_id.pop(reg_id, None)
        if reg is not None:
            self._by_endpoint.pop(reg.endpoint, None)
        return reg

    def expired(self, now: float) -> list[Registration]:
        """Registrations whose lifetime ran out, removed."""
        gone = [r for r in self._by_endpoint.values() if r.expires_at <= now]
        for reg in gone:
            self.remove(reg.reg_id)
        return gone
