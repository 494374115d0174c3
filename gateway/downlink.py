"""Platform-to-pole publishing besides commands: desired config, heartbeat, alerts."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from streetlight.protocol import Alert, Config, Heartbeat, pole_topic, road_topic
from streetlight.registry import Road

from .commands import Publish


class ConfigPublisher:
    """Desired config, retained on every pole's ``config`` topic, with versions that only grow.

    The last version per road is kept in ``versions.json`` so a restarted gateway never goes back.
    """

    def __init__(self, roads: list[Road], publish: Publish, state_file: Path | None) -> None:
        self.roads = {r.id: r for r in roads}
        self._publish = publish
        self._file = state_file
        self._lock = threading.Lock()
        self.versions: dict[str, int] = {}
        self.current: dict[str, Config] = {}
        if state_file is not None and state_file.exists():
            self.versions = {k: int(v) for k, v in json.loads(state_file.read_text()).items()}

    def publish(self, road: str, config: Config) -> Config:
        with self._lock:
            version = max(config.version, self.versions.get(road, 0) + 1)
            cfg = config.model_copy(update={"version": version})
            self.versions[road] = version
            self.current[road] = cfg
            if self._file is not None:
                self._file.parent.mkdir(parents=True, exist_ok=True)
                tmp = self._file.with_suffix(".tmp")
                tmp.write_text(json.dumps(self.versions))
                tmp.replace(self._file)
        payload = cfg.to_bytes()
        for pole in self.roads[road].poles:
            self._publish(pole_topic(road, pole.id, "config"), payload, 1, True)
        return cfg


def heartbeat_payload(ts_ms: int) -> bytes:
    return Heartbeat(ts=ts_ms).to_bytes()


def publish_heartbeat(publish: Publish, road: str, ts_ms: int) -> None:
    publish(road_topic(road, "heartbeat"), heartbeat_payload(ts_ms), 1, True)


def publish_alert(publish: Publish, road: str, alert: Alert) -> None:
    publish(road_topic(road, "alerts"), alert.to_bytes(), 1, False)
