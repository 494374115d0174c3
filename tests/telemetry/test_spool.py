"""The on-disk spool: ordered, bounded, durable across reopen, torn tails cut."""

from __future__ import annotations

from pathlib import Path

import pytest

from telemetry import Spool, SpoolFull


def drain(sp: Spool) -> list[bytes]:
    out = []
    while (rec := sp.peek()) is not None:
        out.append(rec.payload)
        sp.commit(rec)
    return out


def test_fifo_across_segments_and_reopen(tmp_path: Path) -> None:
    sp = Spool(tmp_path, segment_bytes=100)
    items = [f"batch-{i}".encode() * 5 for i in range(40)]
    for x in items[:25]:
        sp.append(x)
    first = [sp.peek()]
    assert first[0] is not None and first[0].payload == items[0]
    sp.commit(first[0])
    sp.close()
    sp = Spool(tmp_path, segment_bytes=100)  # a restart keeps what was not committed, in order
    assert sp.depth == 24
    for x in items[25:]:
        sp.append(x)
    assert drain(sp) == items[1:]
    assert sp.depth == 0 and sp.size_bytes == 0
    assert len(list(tmp_path.glob("*.seg"))) <= 2  # consumed segments are deleted


def test_commit_twice_is_harmless(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    sp.append(b"a")
    sp.append(b"b")
    rec = sp.peek()
    assert rec is not None
    sp.commit(rec)
    sp.commit(rec)
    assert drain(sp) == [b"b"]


def test_bounded(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=100)
    sp.append(b"x" * 50)
    with pytest.raises(SpoolFull, match="full"):
        sp.append(b"y" * 50)
    assert sp.depth == 1


def test_torn_tail_is_cut_and_earlier_records_survive(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    sp.append(b"one")
    sp.append(b"two")
    sp.close()
    seg = sorted(tmp_path.glob("*.seg"))[-1]
    with open(seg, "ab") as f:
        f.write(b"\x10\x00\x00\x00\x00\x00")  # a header cut by a crash
    sp = Spool(tmp_path)
    assert sp.depth == 2
    sp.append(b"three")
    assert drain(sp) == [b"one", b"two", b"three"]
