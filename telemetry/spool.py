"""A durable, bounded, ordered on-disk queue of write batches (the spool).

When InfluxDB is away, each batch of line protocol is appended here and fsync'd before the
caller acknowledges the messages it came from; a drainer posts the oldest batch when the
database is back and only then moves the cursor past it. A crash between the post and the
cursor move replays that batch once more, which is harmless: points are idempotent (same
series, same time).

Layout of the folder: ``NNNNNNNNNNNN.seg`` segment files of records
``[u32 length][u32 crc32][payload]`` and a ``cursor`` file ``segment offset`` (replaced
atomically). A record torn by a crash (short or bad CRC) can only be the last one written,
was never acknowledged, and is cut off when the spool is opened.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

from .errors import SpoolFull

log = logging.getLogger(__name__)
HEADER = struct.Struct("<II")


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    segment: int
    offset: int
    end: int
    payload: bytes


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(self, path: Path, max_bytes: int = 1 << 30, segment_bytes: int = 8 << 20) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._read_seg, self._read_off = self._load_cursor()
        self._records = 0
        self._bytes = 0
        self._scan()
        segs = self._segments()
        self._write_seg = segs[-1] if segs else max(self._read_seg, 1)
        self._wfile = open(self._seg_path(self._write_seg), "ab")  # noqa: SIM115 - lives with the spool

    # -- layout ---------------------------------------------------------------------------------
    def _seg_path(self, n: int) -> Path:
        return self.path / f"{n:012d}.seg"

    def _segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.path.glob("*.seg") if p.stem.isdigit())

    def _load_cursor(self) -> tuple[int, int]:
        try:
            seg, off = (self.path / "cursor").read_text().split()
            return int(seg), int(off)
        except (FileNotFoundError, ValueError):
            segs = self._segments()
            return (segs[0] if segs else 1), 0

    def _save_cursor(self) -> None:
        tmp = self.path / "cursor.tmp"
        tmp.write_text(f"{self._read_seg} {self._read_off}")
        os.replace(tmp, self.path / "cursor")

    def _scan(self) -> None:
        """Count pending records; cut a torn tail record left by a crash."""
        for n in self._segments():
            if n < self._read_seg:
                self._seg_path(n).unlink(missing_ok=True)
                continue
            p = self._seg_path(n)
            data = p.read_bytes()
            off = self._read_off if n == self._read_seg else 0
            while off + HEADER.size <= len(data):
                length, crc = HEADER.unpack_from(data, off)
                body = data[off + HEADER.size: off + HEADER.size + length]
                if len(body) < length or zlib.crc32(body) != crc:
                    break
                self._records += 1
                self._bytes += HEADER.size + length
                off += HEADER.size + length
            if off < len(data):
                log.warning("spool %s: cutting %d bytes of a torn record (never acknowledged)", p, len(data) - off)
                with open(p, "r+b") as f:
                    f.truncate(off)

    # -- queue operations ------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Number of batches waiting."""
        return self._records

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def append(self, payload: bytes) -> None:
        """Append one batch durably (fsync'd before returning); raises :class:`SpoolFull`."""
        record = HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            if self._bytes + len(record) > self.max_bytes:
                raise SpoolFull(str(self.path), self.max_bytes)
            if self._wfile.tell() >= self.segment_bytes:
                self._wfile.close()
                self._write_seg += 1
                self._wfile = open(self._seg_path(self._write_seg), "ab")  # noqa: SIM115
                _fsync_dir(self.path)
            self._wfile.write(record)
            self._wfile.flush()
            os.fsync(self._wfile.fileno())
            self._records += 1
            self._bytes += len(record)

    def peek(self) -> SpoolRecord | None:
        """The oldest batch, without removing it."""
        with self._lock:
            while self._records:
                p = self._seg_path(self._read_seg)
                try:
                    with open(p, "rb") as f:
                        f.seek(self._read_off)
                        head = f.read(HEADER.size)
                        if len(head) == HEADER.size:
                            length, crc = HEADER.unpack(head)
                            body = f.read(length)
                            if len(body) == length and zlib.crc32(body) == crc:
                                end = self._read_off + HEADER.size + length
                                return SpoolRecord(self._read_seg, self._read_off, end, body)
                except FileNotFoundError:
                    pass
                if self._read_seg >= self._write_seg:
                    return None  # nothing complete to read (cannot happen while records > 0)
                self._advance_segment()
            return None

    def _advance_segment(self) -> None:
        self._seg_path(self._read_seg).unlink(missing_ok=True)
        self._read_seg += 1
        self._read_off = 0
        self._save_cursor()

    def commit(self, record: SpoolRecord) -> None:
        """Remove ``record`` (the one :meth:`peek` returned) after it was written."""
        with self._lock:
            if (record.segment, record.offset) != (self._read_seg, self._read_off):
                return  # already committed
            self._read_off = record.end
            self._records -= 1
            self._bytes -= record.end - record.offset
            if self._read_seg < self._write_seg and self._read_off >= self._seg_path(self._read_seg).stat().st_size:
                self._advance_segment()
            else:
                self._save_cursor()

    def close(self) -> None:
        with self._lock:
            self._wfile.close()
