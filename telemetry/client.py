"""The narrow InfluxQL client every read and schema statement goes through (``/query``)."""

from __future__ import annotations

from typing import Any

import httpx

from .errors import QueryError


class InfluxQL:
    def __init__(self, url: str, db: str, *, username: str | None = None, password: str | None = None,
                 token: str | None = None, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.db = db
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = (username, password or "") if username else None
        self._http = httpx.Client(base_url=self.url, headers=headers, auth=auth, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def ping(self) -> bool:
        try:
            return self._http.get("/ping").status_code == 204
        except httpx.HTTPError:
            return False

    def query(self, q: str, *, write: bool = False, db: bool = True) -> list[dict[str, Any]]:
        """Run InfluxQL; returns the ``results`` list (times as epoch milliseconds)."""
        params = {"q": q, "epoch": "ms"}
        if db:
            params["db"] = self.db
        try:
            resp = self._http.post("/query", data=params) if write else self._http.get("/query", params=params)
        except httpx.HTTPError as err:
            raise QueryError(q, f"InfluxDB at {self.url} did not answer: {err}") from None
        try:
            body = resp.json()
        except ValueError:
            raise QueryError(q, f"HTTP {resp.status_code}: {resp.text[:300]}") from None
        if resp.status_code >= 400 or "error" in body:
            raise QueryError(q, str(body.get("error", resp.text[:300])))
        results: list[dict[str, Any]] = body.get("results", [])
        for r in results:
            if "error" in r:
                raise QueryError(q, str(r["error"]))
        return results
