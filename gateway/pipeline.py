"""The ingest worker: batch, validate, deduplicate, store or spool, then acknowledge.

A worker thread takes what the ingest connection queued, in order, in batches closed by size or
by time, and prepares each: invalid messages are recorded as rejected; duplicates (same seq, same
payload) dropped; every timed message is put on road time (``streetlight.clock``); valid telemetry
and events become line protocol. A committer thread then, batch after batch in the
same order, writes it to InfluxDB or appends it to the spool (fsync'd), and only then sends the
PUBACKs, so a crash at any point loses nothing the broker considers delivered; then the twins
are updated and the listeners called (on the committer, never on the socket thread). While one
batch is being written the next is being validated.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streetlight.clock import RoadClocks
from streetlight.errors import ProtocolError
from streetlight.protocol import Event, Telemetry
from streetlight.registry import Road
from telemetry import InfluxWriter, SpoolFull, event_line, tag_set, telemetry_line

from .cabinets import Cabinets
from .dedup import Dedup, Verdict
from .inbound import Inbound, Raw
from .metrics import GatewayMetrics
from .rejected import RejectedStore
from .validate import Validator

log = logging.getLogger(__name__)
TS_STORABLE = (2**63 - 1) // 1_000_000 - 1  # InfluxDB's last representable millisecond


@dataclass(slots=True)
class _Prepared:
    batch: list[Raw]
    lines: list[str]
    valid: list[Inbound]


class Pipeline:
    def __init__(self, roads: list[Road], inbox: queue.Queue[list[Raw]], writer: InfluxWriter, rejected: RejectedStore,
                 metrics: GatewayMetrics, clock: RoadClocks, ack: Callable[[list[Raw]], None],
                 on_valid: Callable[[list[Inbound]], None], *, max_batch: int = 5000,
                 max_delay_s: float = 0.005) -> None:
        self.inbox = inbox
        self.writer = writer
        self.rejected = rejected
        self.metrics = metrics
        self.clock = clock
        self._ack = ack
        self._on_valid = on_valid
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self.validator = Validator(roads)
        self.dedup = Dedup()
        self.cabinets = Cabinets(roads, rejected, clock)
        self._tags = {(r.id, p.id): tag_set(r.id, p, p.id) for r in roads for p in r.poles}
        self._stop = threading.Event()
        # prepared batches waiting for the committer: two, so that one is written while the next
        # is validated, and no more (each holds unacknowledged messages)
        self._prepared: queue.Queue[_Prepared | None] = queue.Queue(maxsize=2)
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._stop.clear()
        self._threads = [threading.Thread(target=self._run, name="gateway-ingest", daemon=True),
                         threading.Thread(target=self._commit_loop, name="gateway-commit", daemon=True)]
        for t in self._threads:
            t.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._threads:
            self._threads[0].join(timeout_s)
            self._prepared.put(None)  # the committer finishes what was prepared, then stops
            self._threads[1].join(timeout_s)

    def _collect(self) -> list[Raw]:
        """One batch, closed at ``max_batch`` messages or ``max_delay_s`` after its first one. The wait
        is short (an ack should not sit in a batch for long): under load batches grow by themselves,
        since the next one gathers while the previous one is being stored."""
        try:
            batch = list(self.inbox.get(timeout=0.1))
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.max_delay_s
        while len(batch) < self.max_batch:
            try:
                batch.extend(self.inbox.get_nowait())
            except queue.Empty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.extend(self.inbox.get(timeout=left))
                except queue.Empty:
                    break
        return batch

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._collect()
            if batch:
                try:
                    self._prepared.put(self.prepare(batch))
                except Exception:  # a bug must not stop ingest; the batch is redelivered (not acked)
                    log.exception("ingest batch of %d failed", len(batch))

    def _commit_loop(self) -> None:
        while (item := self._prepared.get()) is not None:
            try:
                self.commit(item)
            except Exception:
                log.exception("committing a batch of %d failed", len(item.batch))

    def prepare(self, batch: list[Raw]) -> _Prepared:
        """Validate, count rejections, deduplicate, put on road time and encode (no I/O but the
        rejected log)."""
        lines: list[str] = []
        valid: list[Inbound] = []
        self.metrics.messages_in += len(batch)
        topic_of, parse, tags = self.validator.topic, self.validator.parse, self._tags
        for raw in batch:
            if raw.topic.count("/") == 5:  # only a cabinet topic has six levels
                self._prepare_cabinet(raw, lines, valid)
                continue
            road = pole = None
            try:
                road, pole, kind = topic_of(raw.topic)
                ts, msg = parse(kind, raw.payload, 0)
            except ProtocolError as err:
                if road is None:  # the topic itself was refused: count it under the ids it names
                    parts = raw.topic.split("/")
                    road, pole = (parts[2][:32], parts[3][:32]) if len(parts) == 5 else (None, None)
                self.rejected.add(raw.topic, raw.payload, err.reason, err.detail, road, pole)
                continue
            if isinstance(msg, Telemetry | Event):
                if msg.ts > TS_STORABLE:
                    self.rejected.add(raw.topic, raw.payload, "out_of_range",
                                      "ts is beyond the year 2262, which the time-series store cannot hold", road, pole)
                    continue
                if raw.sequenced:
                    reboot = kind == "event" and msg.type == "reboot"
                    verdict = self.dedup.judge(road, pole, msg.ts, msg.seq, raw.payload, reboot)
                    if verdict is not Verdict.NEW and not self._count(verdict, raw, road, pole, msg.seq, msg.ts):
                        continue
            inb = place(self.clock, road, pole, kind, ts, msg)
            if inb.device_ts_ms is not None:
                self.metrics.clock_corrected += 1
            if kind == "telemetry":
                lines.append(telemetry_line(tags[(road, pole)], inb.message, inb.device_ts_ms))
                if inb.message.ports:
                    inb, port_lines = self.cabinets.ports(raw.topic, raw.payload, inb)
                    lines.extend(port_lines)
            elif kind == "event":
                lines.append(event_line(tags[(road, pole)], inb.message, inb.device_ts_ms))
            valid.append(inb)
        return _Prepared(batch, lines, valid)

    def _prepare_cabinet(self, raw: Raw, lines: list[str], valid: list[Inbound]) -> None:
        parts = raw.topic.split("/")
        try:
            inb, cabinet_lines = self.cabinets.take(raw.topic, raw.payload)
        except ProtocolError as err:
            self.rejected.add(raw.topic, raw.payload, err.reason, err.detail, parts[2][:32], parts[4][:32])
            return
        if inb.device_ts_ms is not None:
            self.metrics.clock_corrected += 1
        lines.extend(cabinet_lines)
        valid.append(inb)

    def _count(self, verdict: Verdict, raw: Raw, road: str, pole: str, seq: int, ts: int) -> bool:
        """Count what dedup found beyond a new reading; True if the message is still stored."""
        if verdict is Verdict.DUPLICATE:
            self.metrics.duplicates += 1
        elif verdict is Verdict.CONFLICT:  # storing it would overwrite the reading already stored
            self.rejected.add(raw.topic, raw.payload, "seq_conflict",
                              f"seq {seq} at ts {ts} was already stored with a different payload; the first is kept",
                              road, pole)
        elif verdict is Verdict.RESTART:
            self.metrics.restarts[(road, pole)] += 1
        elif verdict is Verdict.REUSED:
            self.metrics.seq_reused += 1
        return verdict.stored

    def commit(self, p: _Prepared) -> None:
        """Store or spool, then acknowledge, then tell the twins and listeners; batches in order."""
        self._hand_off(p.lines)
        self._ack(p.batch)
        if p.valid:
            self._on_valid(p.valid)
        self.metrics.messages_done += len(p.batch)

    def _hand_off(self, lines: list[str]) -> None:
        """Write or spool; if the spool is full too, hold the batch (unacknowledged) and retry."""
        delay = 0.2
        while True:
            try:
                if self.writer.write(lines) == "spooled":
                    self.metrics.spooled_batches += 1
                self.metrics.written += len(lines)
                return
            except SpoolFull as err:
                log.error("%s; holding %d points unacknowledged", err, len(lines))
                if self._stop.wait(delay):
                    raise
                delay = min(delay * 2, 5.0)


def on_road_time(clocks: RoadClocks, inb: Inbound) -> Inbound:
    """Telemetry and events are evidence of road time; every timed message is judged against
    it: one whose pole's clock is out of tolerance is used (and stored) at road time, its own
    ts kept beside (``device_ts_ms``). A status, which has no ts, happens at road time."""
    return place(clocks, inb.road, inb.pole, inb.kind, inb.ts_ms, inb.message)


def place(clocks: RoadClocks, road: str, pole: str, kind: str, ts: int, message: Any) -> Inbound:
    """:func:`on_road_time` of a message not yet made an Inbound: the Inbound is built once, on
    road time (the ingest pipeline runs this for every message)."""
    clock = clocks.roads[road]
    if kind == "status":
        now = clock.now_ms()
        return Inbound(road, pole, kind, now if now is not None else clocks.now_or_wall(road), message, road_ms=now)
    timed = kind == "telemetry" or kind == "event"  # evidence of road time; state and ack are only judged
    j = clock.observe(pole, ts) if timed else clock.judge(pole, ts)
    if j.corrected:
        return Inbound(road, pole, kind, j.ts_ms, message.model_copy(update={"ts": j.ts_ms}), j.offset_ms, j.skewed,
                       ts, j.road_ms)
    return Inbound(road, pole, kind, ts, message, j.offset_ms, j.skewed, None, j.road_ms)
