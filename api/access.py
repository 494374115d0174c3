"""The role × route table, read from the app's own routes (so it can never drift from the code)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from .auth import PERMISSIONS, ROLES

PUBLIC = ("/healthz", "/readyz")


@dataclass(frozen=True, slots=True)
class RouteAccess:
    method: str
    path: str
    permission: str | None  # None: public

    def allows(self, role: str) -> bool:
        return self.permission is None or self.permission in PERMISSIONS[role]


def route_access(app: FastAPI) -> list[RouteAccess]:
    """Every documented route with the permission it requires (the ``x-permission`` its guard sets)."""
    out = []
    for path, item in app.openapi()["paths"].items():
        for method, op in item.items():
            out.append(RouteAccess(method.upper(), path, op.get("x-permission")))
    return out


def matrix_markdown(app: FastAPI) -> str:
    rows = ["| route | permission | " + " | ".join(ROLES) + " |",
            "|---|---|" + "---|" * len(ROLES)]
    for r in route_access(app):
        marks = " | ".join("✔" if r.allows(role) else "403" for role in ROLES)
        rows.append(f"| `{r.method} {r.path}` | {r.permission or 'public'} | {marks} |")
    return "\n".join(rows)
