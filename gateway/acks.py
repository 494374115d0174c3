"""Acks are control plane: a command is settled when its pole's Ack arrives.

The ingest pipeline stores what it receives in batches and tells the rest of the platform only
after the batch is stored or spooled; an Ack rides in the same stream, so it would wait for a
batch of telemetry and its InfluxDB write before anyone learnt that the pole had done as told.
The ingest connection therefore also hands each read to :meth:`AckDesk.offer`, which picks out
the Acks and queues them for a thread of their own that settles their commands at once.

The pipeline still processes every Ack as before (validation, rejection counting, road time,
twins, listeners); when it reaches the dispatcher the command is already settled and the second
answer changes nothing. An Ack that does not validate here is left for the pipeline to reject
and count, so nothing is counted twice.
"""

from __future__ import annotations

import logging
import queue
import threading

from streetlight.errors import ProtocolError
from streetlight.protocol import Ack

from .commands import CommandDispatcher
from .inbound import Raw
from .validate import Validator

log = logging.getLogger(__name__)
ACK_SUFFIX = "/ack"


class AckDesk:
    def __init__(self, validator: Validator, commands: CommandDispatcher, *, limit: int = 10_000) -> None:
        self.validator = validator
        self.commands = commands
        self.settled = 0  # commands settled here, ahead of the pipeline
        self.overflow = 0  # Acks left to the pipeline because this queue was full
        self._queue: queue.Queue[list[Raw] | None] = queue.Queue(maxsize=limit)
        self._thread: threading.Thread | None = None

    def offer(self, raws: list[Raw]) -> None:
        """Called on the receiving thread with every read: only picks out and queues."""
        acks = [r for r in raws if r.topic.endswith(ACK_SUFFIX)]
        if acks:
            try:
                self._queue.put_nowait(acks)
            except queue.Full:  # the pipeline settles them, a batch later
                self.overflow += len(acks)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gateway-acks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        while (acks := self._queue.get()) is not None:
            for raw in acks:
                try:
                    self._settle(raw)
                except Exception:  # the pipeline still has it: never lose an ack to a bug here
                    log.exception("settling the ack on %s failed", raw.topic[:200])

    def _settle(self, raw: Raw) -> None:
        try:
            road, pole, kind = self.validator.topic(raw.topic)
            msg = self.validator.message(road, pole, kind, raw.payload, 0).message
        except ProtocolError:
            return  # the pipeline rejects it and counts it, once
        if isinstance(msg, Ack) and self.commands.on_ack(road, pole, msg) is not None:
            self.settled += 1
