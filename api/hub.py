"""Fan the platform's live events out to every stream client and to the crews' notifier.

One thread reads the platform's subscription; each client gets a bounded asyncio queue on the
server's event loop. A client that does not keep up loses its oldest events (counted), never
slows the others.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from .platform import FaultView, LiveEvent, PlatformPort

log = logging.getLogger(__name__)


class _Client:
    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[LiveEvent] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, event: LiveEvent) -> None:  # runs on the loop
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)


class StreamHub:
    def __init__(self, platform: PlatformPort, on_drop: Callable[[], None] = lambda: None,
                 client_queue: int = 1000) -> None:
        self.platform = platform
        self.client_queue = client_queue
        self.on_drop = on_drop
        self.listeners: list[Callable[[LiveEvent], None]] = []  # called on the hub thread
        self._clients: set[_Client] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live_faults: dict[str, FaultView] = {}  # unresolved faults, for the pole states

    def fault_index(self) -> dict[str, list[str]]:
        from .views import fault_index

        with self._lock:
            return fault_index(list(self._live_faults.values()))

    def _track(self, event: LiveEvent) -> None:
        if event.kind != "alert":
            return
        with self._lock:
            if event.data.get("state") == "resolved":
                self._live_faults.pop(str(event.data.get("fault_id")), None)
            else:
                self._live_faults[str(event.data.get("fault_id"))] = FaultView.from_dict(event.data)

    def start(self) -> None:
        self._stop.clear()
        sub = self.platform.subscribe()
        with self._lock:  # subscribe first, then read: no alert falls between the two
            self._live_faults = {f.fault_id: f for f in self.platform.faults() if f.state != "resolved"}
        self._thread = threading.Thread(target=self._run, args=(sub,), name="api-stream-hub", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=3)

    def _run(self, sub: object) -> None:
        get = sub.get  # type: ignore[attr-defined]
        try:
            while not self._stop.is_set():
                event = get(0.2)
                if event is None:
                    continue
                self._dispatch(event)
        finally:
            sub.close()  # type: ignore[attr-defined]

    def _dispatch(self, event: LiveEvent) -> None:
        self._track(event)
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # one broken listener must not stop the stream
                log.exception("live-event listener failed")
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            try:
                c.loop.call_soon_threadsafe(self._deliver, c, event)
            except RuntimeError:  # the client's loop is closed: it is gone
                self.leave(c)

    def _deliver(self, c: _Client, event: LiveEvent) -> None:
        before = c.dropped
        c.offer(event)
        if c.dropped != before:
            self.on_drop()

    def join(self) -> _Client:
        c = _Client(asyncio.get_running_loop(), self.client_queue)
        with self._lock:
            self._clients.add(c)
        return c

    def leave(self, c: _Client) -> None:
        with self._lock:
            self._clients.discard(c)

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)
