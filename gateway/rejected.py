"""Rejected messages: counted by reason and pole, the raw bytes kept (bounded) for operators.

The newest ``keep`` rejections are in memory (``list``); every rejection is also appended to a
JSON-lines file under the data folder (rotated at ``max_file_bytes``), so ``streetlight
rejected`` can list them from another process.
"""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

RAW_KEEP = 4096  # bytes of each payload kept; ``size`` says how long it was


@dataclass(frozen=True, slots=True)
class RejectedMessage:
    ts_ms: int  # when the gateway rejected it (wall clock)
    topic: str
    reason: str
    detail: str
    road: str | None
    pole: str | None
    raw: bytes
    size: int

    def to_dict(self) -> dict[str, object]:
        return {"ts_ms": self.ts_ms, "topic": self.topic, "reason": self.reason, "detail": self.detail,
                "road": self.road, "pole": self.pole, "size": self.size,
                "raw_b64": base64.b64encode(self.raw).decode()}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> RejectedMessage:
        return cls(int(d["ts_ms"]), str(d["topic"]), str(d["reason"]), str(d["detail"]),  # type: ignore[call-overload]
                   d.get("road"), d.get("pole"), base64.b64decode(str(d["raw_b64"])), int(d["size"]))  # type: ignore[arg-type, call-overload]


class RejectedStore:
    def __init__(self, path: Path | None = None, keep: int = 1000, max_file_bytes: int = 16 << 20) -> None:
        self.path = path
        self.max_file_bytes = max_file_bytes
        self._recent: deque[RejectedMessage] = deque(maxlen=keep)
        self.by_reason: Counter[str] = Counter()
        self.by_pole: Counter[tuple[str, str]] = Counter()  # (pole or "?", reason)
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "ab")  # noqa: SIM115 - lives with the store

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())

    def add(self, topic: str, payload: bytes, reason: str, detail: str, road: str | None, pole: str | None) -> None:
        item = RejectedMessage(time.time_ns() // 1_000_000, topic[:512], reason, detail[:500], road, pole,
                               bytes(payload[:RAW_KEEP]), len(payload))
        with self._lock:
            self._recent.append(item)
            self.by_reason[reason] += 1
            self.by_pole[(pole or "?", reason)] += 1
            if self._file is not None:
                self._file.write(orjson.dumps(item.to_dict()) + b"\n")
                self._file.flush()
                if self._file.tell() > self.max_file_bytes and self.path is not None:
                    self._file.close()
                    self.path.replace(self.path.with_suffix(".jsonl.1"))
                    self._file = open(self.path, "ab")  # noqa: SIM115

    def list(self, limit: int = 100) -> list[RejectedMessage]:
        """The newest ``limit`` rejections, oldest first."""
        with self._lock:
            items = list(self._recent)
        return items[-limit:] if limit else items

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def read_rejected(path: Path, limit: int = 100) -> list[RejectedMessage]:
    """Rejections recorded in ``path`` by a gateway (possibly another process), oldest first."""
    out: list[RejectedMessage] = []
    for p in (path.with_suffix(".jsonl.1"), path):
        if p.exists():
            for line in p.read_bytes().splitlines():
                try:
                    out.append(RejectedMessage.from_dict(orjson.loads(line)))
                except (orjson.JSONDecodeError, KeyError, ValueError):
                    continue  # a line cut by a crash
    return out[-limit:] if limit else out
