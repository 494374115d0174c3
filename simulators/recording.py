"""Recordings of a run: one JSON object per line, ``{"ts": int, "topic": str, "payload": str}``.

``payload`` is the exact UTF-8 text that was published, so a replay republishes the same bytes.
The broker-side ``offline`` of a pole's will is recorded too (as the broker published it), so a
replay shows the platform the same picture.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from .errors import RecordingError


@dataclass(frozen=True, slots=True)
class Recorded:
    ts: int
    topic: str
    payload: bytes


class Recorder:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: IO[bytes] = self.path.open("wb")
        self.count = 0

    def write(self, ts: int, topic: str, payload: bytes) -> None:
        self._f.write(orjson.dumps({"ts": ts, "topic": topic, "payload": payload.decode("utf-8")}) + b"\n")
        self.count += 1

    def close(self) -> None:
        self._f.close()


def json_lines(path: Path | str, what: str) -> Iterator[tuple[int, Any]]:
    """(line number, decoded object) of a JSON-lines file, blank lines skipped; a file that cannot
    be opened or a line that is not JSON raises ``RecordingError`` naming it (``what``: the kind of
    line expected, for the message)."""
    p = Path(path)
    try:
        f = p.open("rb")
    except OSError as err:
        raise RecordingError(str(p), None, f"cannot open: {err.strerror}") from err
    with f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield n, orjson.loads(line)
            except orjson.JSONDecodeError as err:
                raise RecordingError(str(p), n, f"not {what} ({err})") from None


def read_recording(path: Path | str) -> Iterator[Recorded]:
    """Messages of a recording in file order; a bad line raises ``RecordingError`` naming it."""
    for n, obj in json_lines(path, "a recording line"):
        try:
            ts, topic, payload = obj["ts"], obj["topic"], obj["payload"]
        except (KeyError, TypeError) as err:
            raise RecordingError(str(path), n, f"not a recording line ({err})") from None
        if not isinstance(ts, int) or not isinstance(topic, str) or not isinstance(payload, str):
            raise RecordingError(str(path), n, "expected ts: int, topic: str, payload: str")
        yield Recorded(ts, topic, payload.encode("utf-8"))
