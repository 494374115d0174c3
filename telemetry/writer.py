"""Batched writes to InfluxDB's v1 ``/write`` endpoint, with a durable spool and a dead letter.

Error handling follows InfluxDB's own split (see :mod:`.errors`):

* 204: written.
* connection error, timeout, 5xx (and 401/403/404, which a person must fix while data waits):
  the batch goes to the on-disk :class:`~.spool.Spool`; a drainer thread posts it again with
  backoff once the database answers. While the spool holds anything, new batches queue behind
  it, so batches reach the database in the order they were handed off.
* 400 (field type conflict, unparsable point): InfluxDB has written the good points and dropped
  the bad ones. The batch is split in halves until each bad line is alone; those lines go to the
  dead-letter file and are never retried. Rewriting the good halves is harmless (idempotent
  points).

With ``writers`` > 1 a large batch is posted as that many parts at once (at least ``min_part``
points each), for a database server with cores to spare: it parses and indexes concurrent
requests on several cores. On the 2-core machine of ``docs/benchmarks.md`` it gained nothing
measurable, so the default is one request per batch. The batch
counts as written only when every part was; if one part fails the whole batch is spooled, and
the parts already written are written again when it drains, which is harmless. Parts race for
which one sets a new field's type on a fresh shard: callers that mix types for one field (the
gateway does not: its lines are typed by the protocol models) should not split batches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import httpx
import orjson

from .errors import BadPoints, DatabaseUnavailable, WriteError
from .spool import Spool

log = logging.getLogger(__name__)
Outcome = Literal["written", "spooled"]


class DeadLetter:
    """Lines InfluxDB refused with a 400, one JSON object per line, bounded by rotation."""

    def __init__(self, path: Path, max_bytes: int = 64 << 20) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.count = 0
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def add(self, line: str, error: str) -> None:
        record = orjson.dumps({"ts": int(time.time() * 1000), "error": error[:2000], "line": line[:20000]}) + b"\n"
        with self._lock:
            if self.path.exists() and self.path.stat().st_size > self.max_bytes:
                self.path.replace(self.path.with_suffix(".jsonl.1"))
            with open(self.path, "ab") as f:
                f.write(record)
            self.count += 1

    def list(self, limit: int = 100) -> list[dict[str, object]]:
        if not self.path.exists():
            return []
        lines = self.path.read_bytes().splitlines()[-limit:]
        return [orjson.loads(x) for x in lines]


class InfluxWriter:
    def __init__(
        self,
        url: str,
        db: str,
        *,
        spool_dir: Path,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout_s: float = 10.0,
        spool_max_bytes: int = 1 << 30,
        drain: bool = True,
        on_missing_database: Callable[[], None] | None = None,
        writers: int = 1,
        min_part: int = 1000,
    ) -> None:
        self.url = url.rstrip("/")
        self.db = db
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = (username, password or "") if username else None
        self._http = httpx.Client(base_url=self.url, headers=headers, auth=auth, timeout=timeout_s)
        self._params = {"db": db, "precision": "n"}
        self.spool = Spool(Path(spool_dir) / "spool", max_bytes=spool_max_bytes)
        self.dead_letter = DeadLetter(Path(spool_dir) / "dead-letter.jsonl")
        self._on_missing_db = on_missing_database  # e.g. create the schema when the server was wiped
        self._lock = threading.Lock()  # one writer at a time keeps the hand-off ordered
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._drainer: threading.Thread | None = None
        self.writers = max(1, writers)
        self.min_part = max(1, min_part)
        self._pool = ThreadPoolExecutor(self.writers - 1, thread_name_prefix="influx-write") if writers > 1 else None
        if drain:
            self.start()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._drainer is None or not self._drainer.is_alive():
            self._stop.clear()
            self._drainer = threading.Thread(target=self._drain_loop, name="influx-spool-drain", daemon=True)
            self._drainer.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._drainer is not None:
            self._drainer.join(timeout=15)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.spool.close()
        self._http.close()

    # -- writing ---------------------------------------------------------------------------------
    def write(self, lines: Sequence[str]) -> Outcome:
        """Write a batch, or spool it durably if the database is away. Raises ``SpoolFull``."""
        if not lines:
            return "written"
        if self.spool.depth == 0:
            with self._lock:
                if self.spool.depth == 0:
                    try:
                        self._deliver_parts(lines)
                        return "written"
                    except DatabaseUnavailable as err:
                        log.warning("InfluxDB unavailable, spooling: %s", err)
        # behind a backlog (or after a failure): queue in order, the drainer posts it
        self.spool.append("\n".join(lines).encode())
        self._wake.set()
        return "spooled"

    def _post(self, body: bytes) -> None:
        try:
            resp = self._http.post("/write", params=self._params, content=body)
        except httpx.HTTPError as err:
            raise DatabaseUnavailable(f"{type(err).__name__}: {err}") from None
        if resp.status_code == 204:
            return
        detail = resp.text[:500]
        if resp.status_code == 400:
            raise BadPoints(detail, 400)
        if resp.status_code == 404 and "database not found" in detail and self._on_missing_db is not None:
            try:
                self._on_missing_db()
            except Exception as err:  # still away or refusing: keep the data, retry later
                log.warning("could not create the database: %s", err)
        if resp.status_code >= 500 or resp.status_code in (401, 403, 404, 408, 429):
            raise DatabaseUnavailable(detail, resp.status_code)
        raise WriteError(detail, resp.status_code)

    def _deliver_parts(self, lines: Sequence[str]) -> None:
        """:meth:`_deliver` the batch in up to ``writers`` parts at once; raises DatabaseUnavailable
        if any part could not be written (after every part has been tried)."""
        parts = min(self.writers, len(lines) // self.min_part) if self._pool is not None else 1
        if parts <= 1:
            self._deliver("\n".join(lines).encode())
            return
        size = -(-len(lines) // parts)
        bodies = ["\n".join(lines[i:i + size]).encode() for i in range(0, len(lines), size)]
        assert self._pool is not None
        others = [self._pool.submit(self._deliver, b) for b in bodies[1:]]
        errors: list[DatabaseUnavailable] = []
        try:
            self._deliver(bodies[0])
        except DatabaseUnavailable as err:
            errors.append(err)
        for f in others:
            try:
                f.result()
            except DatabaseUnavailable as err:
                errors.append(err)
        if errors:
            raise errors[0]

    def _deliver(self, body: bytes) -> None:
        """Post ``body``; isolate 400-refused lines into the dead letter. Raises DatabaseUnavailable."""
        try:
            self._post(body)
        except BadPoints as err:
            lines = body.split(b"\n")
            if len(lines) == 1:
                log.error("InfluxDB refused a point, dead-lettered: %s", err.detail)
                self.dead_letter.add(body.decode(errors="replace"), err.detail)
                return
            mid = len(lines) // 2
            self._deliver(b"\n".join(lines[:mid]))
            self._deliver(b"\n".join(lines[mid:]))
        except WriteError as err:  # neither retryable nor a bad point: keep the data, retry later
            raise DatabaseUnavailable(err.detail, err.status) from None

    # -- draining --------------------------------------------------------------------------------
    def _drain_loop(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            record = self.spool.peek()
            if record is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            try:
                with self._lock:
                    self._deliver(record.payload)
                    self.spool.commit(record)
                backoff = 0.2
            except DatabaseUnavailable:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:  # never let the drainer die: log, back off, try again
                log.exception("spool drain failed")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def wait_drained(self, timeout_s: float) -> bool:
        """Block until the spool is empty (for tests, shutdown and the CLI)."""
        deadline = time.monotonic() + timeout_s
        while self.spool.depth and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.05)
        return self.spool.depth == 0
