"""Replay a recording into a broker at any speed (``None`` = as fast as the broker takes it).

Messages go out in file order; the gap between two messages is their ``ts`` difference divided
by ``speed``. State and status are republished retained, as the poles published them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from streetlight.errors import ProtocolError
from streetlight.protocol import parse_topic

from .rawmqtt import RawMqtt
from .recording import read_recording

RETAINED_KINDS = ("state", "status", "config", "heartbeat")


@dataclass
class ReplayStats:
    messages: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    wall_s: float = 0.0


def replay(path: Path | str, mqtt_url: str, speed: float | None = None, *,
           credentials: tuple[str, str] | None = None, stop: threading.Event | None = None) -> ReplayStats:
    stats = ReplayStats()
    parts = urlsplit(mqtt_url)
    conn = RawMqtt(parts.hostname or "127.0.0.1", parts.port or 1883, f"sl-replay-{time.monotonic_ns()}",
                   username=credentials[0] if credentials else None, password=credentials[1] if credentials else None,
                   tls=parts.scheme in ("mqtts", "ssl"))
    conn.connect()
    wall0 = time.monotonic()
    batch: list[tuple[str, bytes, bool]] = []
    try:
        for m in read_recording(path):
            if stop is not None and stop.is_set():
                break
            if stats.first_ts is None:
                stats.first_ts = m.ts
            if speed is not None:
                delay = wall0 + (m.ts - stats.first_ts) / 1000.0 / speed - time.monotonic()
                if delay > 0:
                    conn.publish_many(batch)  # what is due goes out before waiting
                    batch = []
                    time.sleep(delay)
            try:
                retain = parse_topic(m.topic).kind in RETAINED_KINDS
            except ProtocolError:
                retain = False
            batch.append((m.topic, m.payload, retain))
            stats.messages += 1
            stats.last_ts = m.ts
            if len(batch) >= 5000:
                conn.publish_many(batch)
                batch = []
        conn.publish_many(batch)
        conn.flush()
    finally:
        conn.close()
    stats.wall_s = time.monotonic() - wall0
    return stats
