"""The API process's side of the control channel (:mod:`runtime.control_channel`): a
:class:`ControlClient` per controller process, and the :class:`ControlRouter` that finds them all
and sends each road's calls to the one holding the road."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from api.platform import Unavailable

from .control_channel import channel_files
from .port_codec import raise_error

log = logging.getLogger(__name__)


class ControlClient:
    """Calls one controller process; finds it through its channel file, read again whenever it does
    not answer (a restarted controller listens elsewhere)."""

    def __init__(self, file: Path, timeout_s: float = 30.0) -> None:
        self.file = file
        self.timeout_s = timeout_s
        self._local = threading.local()  # one HTTP client per thread: the long poll runs beside calls
        self._lock = threading.Lock()
        self._where: tuple[str, str] | None = None

    def _address(self, fresh: bool = False) -> tuple[str, str]:
        with self._lock:
            if self._where is None or fresh:
                try:
                    data = json.loads(self.file.read_text())
                    self._where = (data["url"], data["secret"])
                except (OSError, ValueError, KeyError):
                    raise Unavailable(f"the controller process is not running (no {self.file.name} in "
                                      f"{self.file.parent}); try again in a moment") from None
            return self._where

    def _client(self) -> httpx.Client:
        c: httpx.Client | None = getattr(self._local, "client", None)
        if c is None:
            # a request's headers and body are two writes: no Nagle delay between them
            nodelay = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
            c = self._local.client = httpx.Client(timeout=self.timeout_s, transport=nodelay)
        return c

    def _request(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        for attempt in (0, 1):
            url, secret = self._address(fresh=attempt == 1)
            try:
                r = self._client().request(method, url + path, headers={"Authorization": f"Bearer {secret}"}, **kw)
            except httpx.TransportError as err:
                if attempt == 0:
                    continue
                raise Unavailable(f"the controller process does not answer ({err}); try again in a moment") from None
            if r.status_code == 401 and attempt == 0:
                continue  # a restarted controller has a new secret
            body: dict[str, Any] = r.json()
            if r.status_code != 200:
                raise_error(r.status_code, body)
            return body
        raise Unavailable("the controller process refused the channel secret")

    def call(self, method: str, **args: Any) -> Any:
        return self._request("POST", "/v1/call", json={"method": method, "args": args})["result"]

    def change(self, method: str, **args: Any) -> tuple[Any, dict[str, Any] | None]:
        """A call that changes the controller's state: its result, and the snapshot taken after it."""
        body = self._request("POST", "/v1/call", json={"method": method, "args": args})
        return body["result"], body.get("snapshot")

    def snapshot(self) -> dict[str, Any]:
        return self._request("GET", "/v1/snapshot")

    def events(self, after: int, wait_s: float) -> dict[str, Any]:
        return self._request("GET", "/v1/events", params={"after": after, "wait": wait_s})

    def close(self) -> None:
        c = getattr(self._local, "client", None)
        if c is not None:
            c.close()


RESCAN_S = 2.0  # the channel folder is looked at again after this long (a controller started or gone)


class ControlRouter:
    """Every controller process of the data folder, as one: each road's calls go to the process
    whose last snapshot says it holds the road; snapshots are merged road by road.

    A call answered 503 (the process no longer holds the road, or is gone) is sent once more after
    a fresh look at every controller, so a takeover costs the caller a retry, not an error."""

    def __init__(self, data_dir: Path, road_of_fault: Callable[[str], str], timeout_s: float = 30.0) -> None:
        self.data_dir = Path(data_dir)
        self.road_of_fault = road_of_fault
        self.timeout_s = timeout_s
        self._clients: dict[Path, ControlClient] = {}
        self._snaps: dict[Path, dict[str, Any]] = {}
        self._holder: dict[str, Path] = {}
        self._scanned = 0.0
        self._lock = threading.Lock()

    def clients(self, fresh: bool = False) -> dict[Path, ControlClient]:
        """The controller processes advertised now."""
        with self._lock:
            if fresh or time.monotonic() - self._scanned >= RESCAN_S:
                files = set(channel_files(self.data_dir))
                for f in files - set(self._clients):
                    self._clients[f] = ControlClient(f, self.timeout_s)
                for f in set(self._clients) - files:
                    self._clients.pop(f).close()
                    self._snaps.pop(f, None)
                self._scanned = time.monotonic()
            return dict(self._clients)

    # -- snapshots -------------------------------------------------------------------------------
    def snapshot(self, fresh: bool = False) -> dict[str, Any]:
        """Every controller's snapshot, merged; Unavailable when none answers."""
        clients = self.clients(fresh)
        for f, c in clients.items():
            try:
                snap = c.snapshot()
            except Unavailable:
                with self._lock:
                    self._snaps.pop(f, None)
                continue
            with self._lock:
                self._snaps[f] = snap
        merged = self._merge()
        if not merged["answering"]:
            where = self.data_dir / "control-channels"
            raise Unavailable(f"no controller process answers (channels in {where}); try again in a moment")
        return merged

    def _take(self, f: Path, snap: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._snaps[f] = snap
        return self._merge()

    def _merge(self) -> dict[str, Any]:
        with self._lock:
            snaps = dict(self._snaps)
            holder: dict[str, Path] = {}
            for f, s in snaps.items():
                for road in s.get("holding") or []:
                    holder[road] = f
            self._holder = holder
        out: dict[str, Any] = {"levels": {}, "restarts": {}, "desired": {}, "emergency": {}, "stats": {},
                               "holding": sorted(holder), "answering": len(snaps)}
        for f, s in snaps.items():
            for road in s.get("levels") or {}:
                if holder.get(road, f) != f or (road not in holder and road in out["levels"]):
                    continue  # the holder's view of its road; a road no one holds: any process's
                for key in ("levels", "restarts", "desired", "emergency"):
                    if road in (s.get(key) or {}):
                        out[key][road] = s[key][road]
            for k, v in (s.get("stats") or {}).items():
                out["stats"][k] = out["stats"].get(k, 0.0) + float(v)
        held = [snaps[f] for f in set(holder.values())]
        # road time known for an operator's dim: every process holding a road knows its roads' time
        out["ready"] = {"road_time": bool(held) and all((s.get("ready") or {}).get("road_time") for s in held)}
        return out

    # -- calls -----------------------------------------------------------------------------------
    def _for_road(self, road: str, fresh: bool) -> tuple[Path, ControlClient]:
        if fresh or road not in self._holder:
            try:
                self.snapshot(fresh=True)
            except Unavailable:
                pass
        f = self._holder.get(road)
        client = self._clients.get(f) if f is not None else None
        if f is None or client is None:
            raise Unavailable(f"no controller process holds the road {road} yet; try again in a moment")
        return f, client

    def _road_of(self, method: str, args: dict[str, Any]) -> str:
        if "road" in args:
            return str(args["road"])
        return self.road_of_fault(str(args["fault_id"]))

    def call(self, method: str, **args: Any) -> Any:
        """One port method in the controller holding the call's road (``road``, or the fault's)."""
        road = self._road_of(method, args)
        for attempt in (0, 1):
            _, client = self._for_road(road, fresh=attempt == 1)
            try:
                return client.call(method, **args)
            except Unavailable:
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def change(self, method: str, **args: Any) -> tuple[Any, dict[str, Any] | None]:
        """:meth:`call` for a change: its result, and the merged snapshot taken after it."""
        road = self._road_of(method, args)
        for attempt in (0, 1):
            f, client = self._for_road(road, fresh=attempt == 1)
            try:
                result, snap = client.change(method, **args)
            except Unavailable:
                if attempt == 1:
                    raise
                continue
            return result, (self._take(f, snap) if snap is not None else None)
        raise AssertionError("unreachable")

    def find(self, method: str, **args: Any) -> Any:
        """Ask every controller; the first answer that is not ``None`` (a command by id: only the
        process that issued it knows it)."""
        for client in self.clients().values():
            try:
                found = client.call(method, **args)
            except Unavailable:
                continue
            if found is not None:
                return found
        return None

    def close(self) -> None:
        with self._lock:
            for c in self._clients.values():
                c.close()
            self._clients.clear()
