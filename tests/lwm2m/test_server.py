"""The LwM2M server against simulated devices on loopback, without the rest of the platform:
registration rules, observations, writes in every encoding, queue mode, lifetimes, bad input and
a registration storm."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiocoap
import pytest
from aiocoap import Code, Message

from lwm2m.codec import SENML_JSON, TEXT, TLV
from lwm2m.objects import OBSERVED
from lwm2m.registrations import Registration, Registrations
from lwm2m.server import Lwm2mServer, Timing
from simulators.lwm2m_device import STARTED, SimLwm2mDevice
from streetlight.net import LOOPBACK, free_udp_port

from .conftest import ENDPOINTS, lwm2m_road

STORM_POLES = 24


class Recorder:
    """The server's handler, keeping what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.values: dict[str, dict[Any, Any]] = {}
        self.counts: Counter[str] = Counter()

    def on_registered(self, reg: Registration) -> None:
        self.events.append(("registered", reg.pole))

    def on_updated(self, reg: Registration) -> None:
        self.events.append(("updated", reg.pole))

    def on_deregistered(self, reg: Registration, why: str) -> None:
        self.events.append((why, reg.pole))

    def on_values(self, reg: Registration, values: dict[Any, Any]) -> None:
        self.values.setdefault(reg.pole, {}).update(values)

    def count(self, reason: str, detail: str, reg: Registration | None = None, payload: bytes = b"") -> None:
        self.counts[reason] += 1


async def until(cond: Callable[[], Any], timeout_s: float = 10.0, what: str = "condition") -> Any:
    for _ in range(int(timeout_s / 0.02)):
        if value := cond():
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def run(test: Callable[[Lwm2mServer, Recorder, int], Awaitable[None]], **timing: Any) -> None:
    async def main() -> None:
        rec = Recorder()
        server = Lwm2mServer(Registrations([lwm2m_road()]), rec, OBSERVED, Timing(**timing))
        port = free_udp_port()
        await server.start(LOOPBACK, port)
        try:
            await asyncio.wait_for(test(server, rec, port), 120)
        finally:
            await server.stop()
    asyncio.run(main())


async def device(port: int, pole: str = "NH-001", **kw: Any) -> SimLwm2mDevice:
    dev = SimLwm2mDevice(ENDPOINTS[pole], (LOOPBACK, port), **kw)
    dev.values.update(STARTED)  # a lamp that is on and measured
    await dev.start(free_udp_port())
    return dev


def test_register_observe_and_deregister() -> None:
    async def body(server: Lwm2mServer, rec: Recorder, port: int) -> None:
        dev = await device(port)
        assert await dev.register() == Code.CREATED
        await until(lambda: rec.values.get("NH-001", {}).get((3418, 0, 1)) == 230.0, what="first values")
        dev.set((3418, 0, 4), 84.0)
        await until(lambda: rec.values["NH-001"].get((3418, 0, 4)) == 84.0, what="a notification")
        assert await dev.update() == Code.CHANGED
        assert await dev.deregister() == Code.DELETED
        assert rec.events == [("registered", "NH-001"), ("updated", "NH-001"), ("deregistered", "NH-001")]
        assert len(server.registrations) == 0
        await dev.stop()
    run(body)


@pytest.mark.parametrize("fmt", [TEXT, TLV, SENML_JSON])
def test_writes_in_every_encoding(fmt: int) -> None:
    async def body(server: Lwm2mServer, rec: Recorder, port: int) -> None:
        written: list[int] = []
        dev = await device(port, on_write=lambda p, v: written.append(v))
        await dev.register()
        reg = await until(lambda: server.registrations.of_pole("nanhuan-1", "NH-001"))
        assert await server.write(reg, (3416, 0, 1), 30) == ""
        assert written == [30]
        refused = await server.write(reg, (3416, 0, 3), 30)  # the measured level is read-only
        assert "4.05" in refused and rec.counts["write_refused"] == 1
        await dev.stop()
    run(body, write_format=fmt)


def test_queue_mode_holds_writes_until_the_device_speaks() -> None:
    async def body(server: Lwm2mServer, rec: Recorder, port: int) -> None:
        written: list[int] = []
        dev = await device(port, queue_mode=True, on_write=lambda p, v: written.append(v))
        await dev.register()
        reg = await until(lambda: server.registrations.of_pole("nanhuan-1", "NH-001"))
        assert reg.queue_mode
        await asyncio.sleep(0.5)  # it has gone to sleep
        first = asyncio.ensure_future(server.write(reg, (3416, 0, 1), 40))
        second = asyncio.ensure_future(server.write(reg, (3416, 0, 1), 20))
        await asyncio.sleep(0.3)
        assert written == [] and set(reg.queued) == {(3416, 0, 1)}
        assert "replaced" in await first
        assert await dev.update() == Code.CHANGED  # it wakes
        assert await second == "" and written == [20]
        await dev.stop()
    run(body, queue_awake_s=0.2)


def test_a_lapsed_lifetime_ends_the_registration() -> None:
    async def body(server: Lwm2mServer, rec: Recorder, port: int) -> None:
        dev = await device(port, lifetime_s=1, keep_registered=False)
        await dev.register()
        await until(lambda: ("lifetime", "NH-001") in rec.events, 5, "expiry")
        assert len(server.registrations) == 0
        await dev.stop()
    run(body)


async def _raw(ctx: aiocoap.Context, port: int, code: Code, path: str, query: tuple[str, ...] = (),
               payload: bytes = b"", fmt: int | None = 40) -> Message:
    msg = Message(code=code, uri=f"coap://{LOOPBACK}:{port}/{path}", payload=payload)
    if fmt is not None:
        msg.opt.content_format = fmt
    msg.opt.uri_query = query
    return await ctx.request(msg).response


def test_bad_registrations_get_the_right_code_and_are_counted() -> None:
    async def body(server: Lwm2mServer, rec: Recorder, port: int) -> None:
        ctx = await aiocoap.Context.create_client_context()
        ep = f"ep={ENDPOINTS['NH-001']}"
        cases = [
            ((Code.POST, "rd", ("ep=urn:imei:0",), b"</3416/0>"), Code.FORBIDDEN, "unknown_endpoint"),
            ((Code.POST, "rd", (), b"</3416/0>"), Code.BAD_REQUEST, "bad_registration"),
            ((Code.POST, "rd", (ep, "lt=-5"), b"</3416/0>"), Code.BAD_REQUEST, "bad_registration"),
            ((Code.POST, "rd", (ep, "b=T"), b"</3416/0>"), Code.BAD_REQUEST, "bad_registration"),
            ((Code.POST, "rd", (ep, ep), b"</3416/0>"), Code.BAD_REQUEST, "bad_registration"),
            ((Code.POST, "rd", (ep,), b"3416 and more"), Code.BAD_REQUEST, "bad_payload"),
            ((Code.POST, "rd", (ep,), b"</3416/zero>"), Code.BAD_REQUEST, "bad_payload"),
            ((Code.POST, "rd/nosuch", (), b""), Code.NOT_FOUND, "unknown_registration"),
            ((Code.DELETE, "rd/nosuch", (), b""), Code.NOT_FOUND, "unknown_registration"),
            ((Code.GET, "rd", (), b""), Code.METHOD_NOT_ALLOWED, None),
            ((Code.POST, "bs", (), b""), Code.NOT_FOUND, "bad_path"),
        ]
        for (code, path, query, payload), expected, reason in cases:
            before = rec.counts.copy()
            resp = await _raw(ctx, port, code, path, query, payload)
            assert resp.code == expected, (path, query, payload, resp.code)
            if reason:
                assert rec.counts[reason] == before[reason] + 1, (path, query, payload, rec.counts)
        wrong_format = await _raw(ctx, port, Code.POST, "rd", (ep,), b"</3416/0>", fmt=TEXT)
        assert wrong_format.code == Code.BAD_REQUEST
        assert len(server.registrations) == 0 and rec.events == []
        # after all that, a good device registers as usual
        dev = await device(port)
        assert await dev.register() == Code.CREATED
        await dev.stop()
        await ctx.shutdown()
    run(body)


class _BadDevice(aiocoap.resource.Resource):
    """Answers an observe of /3418/0/1 with the payload and format it is given."""

    def __init__(self, payload: bytes, fmt: int) -> None:
        super().__init__()
        self.payload, self.fmt = payload, fmt

    async def render_get(self, request: Message) -> Message:
        return Message(payload=self.payload, content_format=self.fmt)


@pytest.mark.parametrize(("payload", "fmt", "reason"), [
    (b"\xc8\x01\x05\x01", TLV, "bad_payload"), (b"[{", SENML_JSON, "bad_payload"), (b"warm", TEXT, "bad_payload"),
    (b"\xa1\x01\x02", 60, "unsupported_format"),
])
def test_malformed_notifications_are_counted_and_dropped(payload: bytes, fmt: int, reason: str) -> None:
    async def body(server: Lwm2mServer, rec: Recorder, port: int) -> None:
        site = aiocoap.resource.Site()
        site.add_resource(["3418", "0", "1"], _BadDevice(payload, fmt))
        dev_port = free_udp_port()
        ctx = await aiocoap.Context.create_server_context(site, bind=(LOOPBACK, dev_port), transports=["udp6"])
        resp = await _raw(ctx, port, Code.POST, "rd", (f"ep={ENDPOINTS['NH-005']}",), b"</3418/0>")
        assert resp.code == Code.CREATED
        await until(lambda: rec.counts[reason] >= 1, what=reason)
        assert rec.values == {} and len(server.registrations) == 1  # the registration itself stands
        await ctx.shutdown()
    run(body)


def test_a_registration_storm_after_a_power_cut() -> None:
    """Every pole of a feeder registers at once, three times as many as the server sets up
    observations for at a time (the bench runs the whole road and more): all are registered and
    observed, none refused."""
    async def body(server: Lwm2mServer, rec: Recorder, port: int) -> None:
        devices = [await device(port, pole) for pole in list(ENDPOINTS)[:STORM_POLES]]
        codes = await asyncio.gather(*(d.register() for d in devices))
        assert codes == [Code.CREATED] * len(devices)
        await until(lambda: len(rec.values) == len(devices) and all((3416, 0, 3) in v for v in rec.values.values()),
                    60, "every pole observed")
        assert len(server.registrations) == STORM_POLES and rec.counts["observe_failed"] == 0
        await asyncio.gather(*(d.stop() for d in devices))
    run(body, setup_concurrency=STORM_POLES // 3)
