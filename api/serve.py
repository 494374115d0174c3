"""Serve an app with uvicorn on loopback in a background thread (tests, benchmarks, the CLI tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from streetlight.net import LOOPBACK, free_port


@contextmanager
def served(app: FastAPI, port: int | None = None, timeout_s: float = 20.0) -> Iterator[str]:
    """The app's base URL while it is served; the server is stopped on exit."""
    port = port or free_port()
    config = uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning", access_log=False,
                            lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the API did not start on {LOOPBACK}:{port} within {timeout_s:.0f} s")
        time.sleep(0.02)
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
