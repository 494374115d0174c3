"""The API process's side of the control channel (:mod:`runtime.control_channel`)."""

from __future__ import annotations

import json
import logging
import socket
import threading
from pathlib import Path
from typing import Any

import httpx

from api.platform import Unavailable

from .control_channel import channel_file
from .port_codec import raise_error

log = logging.getLogger(__name__)


class ControlClient:
    """Calls the controller process; finds it through ``control-channel.json`` in the data folder,
    again whenever it does not answer (a restarted controller listens elsewhere)."""

    def __init__(self, data_dir: Path, timeout_s: float = 30.0) -> None:
        self.file = channel_file(data_dir)
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
