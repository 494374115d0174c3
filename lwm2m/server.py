"""The LwM2M server on aiocoap: the ``/rd`` interface (register, update, de-register), registration
lifetimes, and the requests the server makes of a device (Observe with pmin/pmax, Write, Execute,
Discover), including holding writes for a device in queue mode until it next speaks.

Everything here runs on one asyncio loop (:class:`lwm2m.adapter.Lwm2mAdapter` owns its thread).
What it learns goes to a :class:`Handler`; what it refuses is answered with the CoAP code of the
refusal and counted through ``Handler.count``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiocoap
from aiocoap import Code, Message, resource

from .codec import LINK_FORMAT, OLD_TLV, SENML_JSON, TEXT, TLV, Value, decode, encode, parse_links
from .errors import CodecError, Lwm2mError, RegistrationRefused
from .objects import Path, path_str
from .registrations import Registration, Registrations, parse_query

log = logging.getLogger(__name__)
OBSERVE_AFTER_S = 0.2  # a device starts listening only once it has the answer to its register
OBSERVE_ATTEMPTS = 4
SETUP_CONCURRENCY = 64  # observe set-ups in flight at once: a registration storm queues, never floods
STOP_WAIT_S = 5.0


class Handler(Protocol):
    def on_registered(self, reg: Registration) -> None: ...
    def on_updated(self, reg: Registration) -> None: ...
    def on_deregistered(self, reg: Registration, why: str) -> None: ...
    def on_values(self, reg: Registration, values: dict[Path, Value]) -> None: ...
    def count(self, reason: str, detail: str, reg: Registration | None = None, payload: bytes = b"") -> None: ...


@dataclass(slots=True)
class Timing:
    pmin_s: int = 1
    pmax_s: int = 30
    request_timeout_s: float = 10.0
    queue_awake_s: float = 2.0  # a queue-mode device listens this long after it last spoke
    write_format: int = TEXT
    setup_concurrency: int = SETUP_CONCURRENCY


@dataclass(slots=True)
class _Held:
    value: Value
    done: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Lwm2mServer(resource.Resource, resource.PathCapable):
    def __init__(self, registrations: Registrations, handler: Handler, observe: tuple[Path, ...], timing: Timing,
                 *, now: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.registrations = registrations
        self.handler = handler
        self.observe = observe
        self.timing = timing
        self.now = now
        self.ctx: aiocoap.Context | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._setup: asyncio.Semaphore | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self, host: str, port: int) -> None:
        self._setup = asyncio.Semaphore(self.timing.setup_concurrency)
        self.ctx = await aiocoap.Context.create_server_context(self, bind=(host, port), transports=["udp6"])
        self._spawn(self._sweep())

    async def stop(self) -> None:
        for reg in self.registrations.all():
            self._cancel(reg)  # ends the observation iterators, which a task cancel alone may not
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=STOP_WAIT_S)
        if self.ctx is not None:
            await asyncio.wait_for(self.ctx.shutdown(), self.timing.request_timeout_s)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            for reg in self.registrations.expired(self.now()):
                self._drop(reg, "lifetime")

    # -- the /rd interface (aiocoap Resource) ------------------------------------------------------
    async def needs_blockwise_assembly(self, request: Message) -> bool:
        return True

    async def render(self, request: Message) -> Message:  # type: ignore[override]
        path = list(request.opt.uri_path)
        if not path or path[0] != "rd" or len(path) > 2:
            where = "/".join(path)[:60]
            self.handler.count("bad_path", f"no resource {where!r} here (only /rd)", None, request.payload)
            return Message(code=Code.NOT_FOUND)
        try:
            if len(path) == 1:
                if request.code != Code.POST:
                    return Message(code=Code.METHOD_NOT_ALLOWED)
                return self._register(request)
            if request.code == Code.POST:
                return self._update(path[1], request)
            if request.code == Code.DELETE:
                reg = self.registrations.remove(path[1])
                if reg is None:
                    self.handler.count("unknown_registration", f"de-register of unknown {path[1][:20]!r}")
                    return Message(code=Code.NOT_FOUND)
                self._drop(reg, "deregistered")
                return Message(code=Code.DELETED)
            return Message(code=Code.METHOD_NOT_ALLOWED)
        except Lwm2mError as err:
            self.handler.count(err.reason, err.detail, None, request.payload)
            code = err.code if isinstance(err, RegistrationRefused) else "BAD_REQUEST"
            return Message(code=getattr(Code, code), payload=err.detail[:200].encode())

    def _objects(self, request: Message) -> list[tuple[int, ...]]:
        fmt = request.opt.content_format
        if fmt is not None and int(fmt) != LINK_FORMAT:
            raise CodecError(f"a register carries link format (40), not {int(fmt)}")
        return parse_links(request.payload)

    def _register(self, request: Message) -> Message:
        query = parse_query(list(request.opt.uri_query))
        objects = self._objects(request)
        reg, old = self.registrations.register(query, objects, request.remote, self.now())
        if old is not None:
            self._cancel(old)
        log.info("registered %s as %s/%s (lifetime %d s%s)", reg.endpoint, reg.road, reg.pole, reg.lifetime_s,
                 ", queue mode" if reg.queue_mode else "")
        self.handler.on_registered(reg)
        self._spawn(self._observe_all(reg))
        return Message(code=Code.CREATED, location_path=["rd", reg.reg_id])

    def _update(self, reg_id: str, request: Message) -> Message:
        query = parse_query(list(request.opt.uri_query))
        objects = self._objects(request) if request.payload else None
        before = self.registrations.get(reg_id)
        moved = before is not None and before.remote != request.remote
        reg = self.registrations.update(reg_id, query, objects, request.remote, self.now())
        if moved or objects:
            self._cancel(reg)  # the device moved or changed what it offers: observe it afresh
            self._spawn(self._observe_all(reg))
        self.handler.on_updated(reg)
        self._flush(reg)
        return Message(code=Code.CHANGED)

    def _drop(self, reg: Registration, why: str) -> None:
        self._cancel(reg)
        for held in reg.queued.values():
            if not held.done.done():
                held.done.set_result("the device de-registered before it woke")
        reg.queued.clear()
        log.info("%s (%s/%s) is gone: %s", reg.endpoint, reg.road, reg.pole, why)
        self.handler.on_deregistered(reg, why)

    def _cancel(self, reg: Registration) -> None:
        for req in reg.observations:
            _cancel_request(req)
        reg.observations.clear()

    # -- requests to the device --------------------------------------------------------------------
    def _message(self, reg: Registration, code: Code, path: tuple[int, ...], **kw: Any) -> Message:
        msg = Message(code=code, uri_path=[str(p) for p in path], **kw)
        msg.remote = reg.remote
        return msg

    async def _observe_all(self, reg: Registration) -> None:
        """Each object instance at once when the device can (one notification per reading, in TLV
        or SenML-JSON), else each resource on its own (plain text, as the simplest devices do)."""
        await asyncio.sleep(OBSERVE_AFTER_S)
        instances = sorted({(p[0], p[1]) for p in self.observe if reg.has(p[0], p[1])})
        for inst in instances:
            self._spawn(self._observe_instance(reg, inst))

    async def _observe_instance(self, reg: Registration, inst: tuple[int, int]) -> None:
        if await self._observe(reg, inst, whole=True):
            return
        for path in self.observe:
            if (path[0], path[1]) == inst:
                self._spawn(self._observe(reg, path))

    async def _observe(self, reg: Registration, path: tuple[int, ...], whole: bool = False) -> bool:
        """Observe ``path`` until the observation ends; False at once if it could not be set up
        (or, ``whole``, if the device answers an object instance in plain text)."""
        assert self.ctx is not None and self._setup is not None
        query = [f"pmin={self.timing.pmin_s}", f"pmax={self.timing.pmax_s}"]
        for attempt in range(OBSERVE_ATTEMPTS):
            if self.registrations.get(reg.reg_id) is not reg:
                return True  # nothing to fall back to: the registration has ended
            async with self._setup:
                req = self.ctx.request(self._message(reg, Code.GET, path, observe=0, uri_query=query))
                try:
                    first = await asyncio.wait_for(asyncio.shield(req.response), self.timing.request_timeout_s)
                    break
                except Exception as err:
                    if attempt == OBSERVE_ATTEMPTS - 1:
                        self.handler.count("observe_failed", f"observe {path_str(path)}: {err!r}"[:200], reg)
                        return False
            await asyncio.sleep(OBSERVE_AFTER_S * 2 ** attempt)
        else:
            return False
        fmt = first.opt.content_format
        if whole and (not first.code.is_successful() or fmt is None or int(fmt) not in (TLV, OLD_TLV, SENML_JSON)):
            _cancel_request(req)
            return False
        reg.observations.append(req)
        if not first.code.is_successful():
            if first.code != Code.NOT_FOUND:  # a resource the device lacks is not an error
                self.handler.count("observe_refused", f"observe {path_str(path)}: {first.code}", reg)
            return False
        self._received(reg, path, first)
        try:
            async for note in req.observation:
                self._received(reg, path, note)
        except Exception as err:  # the device ended it (an error code, a reset): re-observed on its next update
            log.debug("observation of %s %s ended: %r", reg.endpoint, path_str(path), err)
        return True

    def _received(self, reg: Registration, path: tuple[int, ...], msg: Message) -> None:
        if self.registrations.get(reg.reg_id) is not reg:
            return  # a late notification of a registration that has ended
        reg.last_heard = self.now()
        fmt = msg.opt.content_format
        try:
            values = decode(int(fmt) if fmt is not None else None, msg.payload, path)
        except CodecError as err:
            self.handler.count(err.reason, f"{path_str(path)}: {err.detail}", reg, msg.payload)
            return
        self.handler.on_values(reg, values)
        self._flush(reg)

    async def write(self, reg: Registration, path: Path, value: Value) -> str:
        """Write one resource; ``""`` on success, else why not (the device's code, a time-out, …).
        A device in queue mode that is asleep gets it when it next speaks; a newer write of the
        same resource replaces a held one."""
        if reg.queue_mode and self.now() - reg.last_heard > self.timing.queue_awake_s:
            old = reg.queued.pop(path, None)
            if old is not None and not old.done.done():
                old.done.set_result("replaced by a newer write while the device slept")
            held = _Held(value)
            reg.queued[path] = held
            return await held.done
        return await self._send_write(reg, path, value)

    async def _send_write(self, reg: Registration, path: Path, value: Value) -> str:
        assert self.ctx is not None
        fmt = self.timing.write_format
        msg = self._message(reg, Code.PUT, path, payload=encode(fmt, path, value), content_format=fmt)
        try:
            resp = await asyncio.wait_for(asyncio.shield(self.ctx.request(msg).response), self.timing.request_timeout_s)
        except Exception as err:
            self.handler.count("write_failed", f"write {path_str(path)}: {err!r}"[:200], reg)
            return f"no answer to the write of {path_str(path)}"
        if resp.code.is_successful():
            return ""
        self.handler.count("write_refused", f"write {path_str(path)}: {resp.code}", reg)
        return f"the device refused the write of {path_str(path)}: {resp.code}"

    def _flush(self, reg: Registration) -> None:
        """The device is awake: send what was held for it."""
        if not reg.queued:
            return
        held, reg.queued = reg.queued, {}

        async def send(path: Path, h: _Held) -> None:
            result = await self._send_write(reg, path, h.value)
            if not h.done.done():
                h.done.set_result(result)

        for path, h in held.items():
            self._spawn(send(path, h))

    async def execute(self, reg: Registration, path: Path, args: bytes = b"") -> str:
        assert self.ctx is not None
        msg = self._message(reg, Code.POST, path, payload=args)
        try:
            resp = await asyncio.wait_for(asyncio.shield(self.ctx.request(msg).response), self.timing.request_timeout_s)
        except Exception as err:
            return f"no answer to the execute of {path_str(path)}: {err!r}"
        return "" if resp.code.is_successful() else f"execute {path_str(path)}: {resp.code}"

    async def discover(self, reg: Registration, path: tuple[int, ...]) -> list[tuple[int, ...]]:
        """The resources a device has under ``path`` (Discover: GET with Accept link-format)."""
        assert self.ctx is not None
        msg = self._message(reg, Code.GET, path, accept=LINK_FORMAT)
        resp = await asyncio.wait_for(asyncio.shield(self.ctx.request(msg).response), self.timing.request_timeout_s)
        if not resp.code.is_successful():
            raise CodecError(f"discover {path}: {resp.code}")
        return parse_links(resp.payload)


def _cancel_request(req: Any) -> None:
    try:
        req.observation.cancel()
    except Exception:  # already ended
        pass
