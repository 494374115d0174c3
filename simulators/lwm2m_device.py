"""A simulated LwM2M lamp controller: objects 3, 3416 (outdoor lamp controller) and 3418
(electrical monitor) served over CoAP with aiocoap, registered with an LwM2M server.

Values are set by the simulation (``set``) and notified to whoever observes them (a resource in
plain text, an object instance in SenML-JSON, once per turn of the loop); a Write of
``/3416/0/1`` is handed to ``on_write``. Plain text is what it sends; it accepts Writes in plain
text, TLV (one resource) and SenML-JSON. Observe attributes (pmin/pmax) are not honoured: it
notifies on every change, which a simulated pole makes once per report.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

import aiocoap
from aiocoap import Code, Message, resource

from streetlight.net import LOOPBACK

log = logging.getLogger(__name__)
Path = tuple[int, int, int]
TEXT, LINK_FORMAT, SENML_JSON, TLV = 0, 40, 110, 11542
ANSWER_TIMEOUT_S = 30.0
WRITABLE: frozenset[Path] = frozenset({(3416, 0, 1)})
# readings are None (not measured yet: left out of a read) until the simulation sets them
INITIAL: dict[Path, object] = {
    (3, 0, 0): "streetlight simulator", (3, 0, 1): "sim-lamp-controller",
    (3416, 0, 1): 100, (3416, 0, 3): None, (3416, 0, 5): False, (3416, 0, 7): False, (3416, 0, 9): False,
    (3416, 0, 10): False, (3416, 0, 11): False, (3416, 0, 12): False,
    (3418, 0, 1): None, (3418, 0, 2): None, (3418, 0, 4): None, (3418, 0, 5): None, (3418, 0, 6): None,
    (3418, 0, 5518): None,
}
STARTED: dict[Path, object] = {(3416, 0, 3): 100, (3418, 0, 1): 230.0, (3418, 0, 2): 0.4, (3418, 0, 4): 84.0,
                               (3418, 0, 5): 0.95, (3418, 0, 6): 0.0}


def text_of(value: object) -> bytes:
    if isinstance(value, bool):
        return b"1" if value else b"0"
    return str(value).encode()


def decode_write(fmt: int | None, payload: bytes) -> float:
    """A single number written to a resource, in text, TLV or SenML-JSON; ValueError otherwise."""
    if fmt in (None, TEXT):
        return float(payload.decode())
    if fmt == SENML_JSON:
        records = json.loads(payload)
        return float(records[0]["v"])
    if fmt == TLV:
        head = payload[0]
        id_len = 2 if head & 0x20 else 1
        len_type = (head >> 3) & 0x03
        start = 1 + id_len + len_type
        value = payload[start:]
        if not value:
            raise ValueError("empty TLV value")
        return float(int.from_bytes(value, "big", signed=True))  # the dim command is an integer resource
    raise ValueError(f"content format {fmt} not accepted")


async def _answer(ctx: aiocoap.Context, msg: Message) -> Message:
    # shielded: a caller cancelled mid-request must not cancel aiocoap's own future, which it
    # completes later (on shutdown at the latest)
    return await asyncio.wait_for(asyncio.shield(ctx.request(msg).response), ANSWER_TIMEOUT_S)


class _Resource(resource.ObservableResource):
    def __init__(self, device: SimLwm2mDevice, path: Path) -> None:
        super().__init__()
        self.device, self.path = device, path

    async def render_get(self, request: Message) -> Message:
        value = self.device.values[self.path]
        if value is None:
            return Message(code=Code.NOT_FOUND)
        return Message(payload=text_of(value), content_format=TEXT)

    async def render_put(self, request: Message) -> Message:
        if self.path not in WRITABLE:
            return Message(code=Code.METHOD_NOT_ALLOWED)
        try:
            value = decode_write(request.opt.content_format, request.payload)
        except (ValueError, IndexError, KeyError, TypeError):
            return Message(code=Code.BAD_REQUEST)
        if not 0 <= value <= 100:
            return Message(code=Code.BAD_REQUEST)
        self.device.set(self.path, int(value))
        self.device.on_write(self.path, int(value))
        return Message(code=Code.CHANGED)


class _Instance(resource.ObservableResource):
    """An object instance read or observed whole, in SenML-JSON."""

    def __init__(self, device: SimLwm2mDevice, inst: tuple[int, int]) -> None:
        super().__init__()
        self.device, self.inst = device, inst

    async def render_get(self, request: Message) -> Message:
        o, i = self.inst
        records: list[dict[str, object]] = []
        for (obj, ins, rid), value in sorted(self.device.values.items()):
            if (obj, ins) == self.inst and value is not None:
                key = "vb" if isinstance(value, bool) else "vs" if isinstance(value, str) else "v"
                records.append({"n": str(rid), key: value})
        records[0:1] = [{"bn": f"/{o}/{i}/", **(records[0] if records else {})}]
        return Message(payload=json.dumps(records).encode(), content_format=SENML_JSON)


class SimLwm2mDevice:
    """One pole's lamp controller. All methods run on the asyncio loop that ``start`` ran on."""

    def __init__(self, endpoint: str, server: tuple[str, int], *, lifetime_s: int = 300,
                 queue_mode: bool = False, on_write: Callable[[Path, int], None] = lambda p, v: None,
                 keep_registered: bool = True) -> None:
        self.endpoint, self.server = endpoint, server
        self.lifetime_s, self.queue_mode = lifetime_s, queue_mode
        self.on_write = on_write
        self.keep_registered = keep_registered  # update before the lifetime runs out, as a device should
        self.values: dict[Path, object] = dict(INITIAL)
        self.ctx: aiocoap.Context | None = None
        self.location: list[str] | None = None
        self._resources: dict[Path, _Resource] = {}
        self._instances: dict[tuple[int, int], _Instance] = {}
        self._dirty: set[tuple[int, int]] = set()
        self._updater: asyncio.Task[None] | None = None

    async def start(self, port: int = 0) -> None:
        site = resource.Site()
        for path in self.values:
            self._resources[path] = res = _Resource(self, path)
            site.add_resource([str(p) for p in path], res)
        for inst in {(p[0], p[1]) for p in self.values}:
            self._instances[inst] = whole = _Instance(self, inst)
            site.add_resource([str(inst[0]), str(inst[1])], whole)
        self.ctx = await aiocoap.Context.create_server_context(site, bind=(LOOPBACK, port), transports=["udp6"])

    def _uri(self, path: str) -> str:
        return f"coap://{self.server[0]}:{self.server[1]}/{path}"

    async def register(self) -> Code:
        assert self.ctx is not None
        objects = sorted({(p[0], p[1]) for p in self.values})
        links = ",".join(f"</{o}/{i}>" for o, i in objects).encode()
        binding = "UQ" if self.queue_mode else "U"
        msg = Message(code=Code.POST, uri=self._uri("rd"), payload=links, content_format=LINK_FORMAT)
        msg.opt.uri_query = (f"ep={self.endpoint}", f"lt={self.lifetime_s}", "lwm2m=1.1", f"b={binding}")
        resp = await _answer(self.ctx, msg)
        if resp.code.is_successful():
            self.location = list(resp.opt.location_path)
            if self._updater is None and self.keep_registered:
                self._updater = asyncio.ensure_future(self._keep_registered())
        return resp.code

    async def update(self) -> Code:
        assert self.ctx is not None and self.location is not None
        msg = Message(code=Code.POST, uri=self._uri("/".join(self.location)))
        return (await _answer(self.ctx, msg)).code

    async def deregister(self) -> Code:
        assert self.ctx is not None and self.location is not None
        self._stop_updates()
        msg = Message(code=Code.DELETE, uri=self._uri("/".join(self.location)))
        code = (await _answer(self.ctx, msg)).code
        self.location = None
        return code

    async def _keep_registered(self) -> None:
        while True:
            await asyncio.sleep(max(1.0, self.lifetime_s / 2))
            if self.location is not None:
                try:
                    await self.update()
                except Exception as err:  # the server is away: try again next time
                    log.debug("%s: update failed: %r", self.endpoint, err)

    def _stop_updates(self) -> None:
        if self._updater is not None:
            self._updater.cancel()
            self._updater = None

    def set(self, path: Path, value: object) -> None:
        """A new value; observers hear of it when it changed."""
        if self.values.get(path) != value:
            self.values[path] = value
            res = self._resources.get(path)
            if res is not None:
                res.updated_state()
            inst = (path[0], path[1])
            if inst in self._instances and not self._dirty:
                asyncio.get_running_loop().call_soon(self._notify_instances)
            self._dirty.add(inst)

    def _notify_instances(self) -> None:
        """One notification per object instance for everything set in one turn of the loop."""
        dirty, self._dirty = self._dirty, set()
        for inst in dirty:
            self._instances[inst].updated_state()

    async def stop(self) -> None:
        """The device goes away without a word (power cut) or after ``deregister``."""
        self._stop_updates()
        if self.ctx is not None:
            ctx, self.ctx = self.ctx, None
            await asyncio.wait_for(ctx.shutdown(), ANSWER_TIMEOUT_S)
