"""A mixed road: a share of the poles' lamp controllers speak LwM2M, the rest MQTT.

The LwM2M poles keep their MQTT connection for what is not the lamp controller's (status, state,
vehicle and pedestrian events, config, heartbeat); their lamp and meter readings, lamp and driver
faults and dim commands go over LwM2M to the platform's LwM2M server (``--lwm2m-share`` of
``streetlight simulate``). A power cut ends a controller without a word; power back, it registers
again, as a rebooted module does.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

import orjson

from streetlight.protocol import DimCommand, pole_topic
from streetlight.registry import Road

from .encode import Outgoing
from .lwm2m_device import Path, SimLwm2mDevice
from .runner import Simulation, drive
from .transport import ConcentratorTransport, PerPoleTransport

log = logging.getLogger(__name__)
READINGS: dict[str, Path] = {"voltage_v": (3418, 0, 1), "current_a": (3418, 0, 2), "power_w": (3418, 0, 4),
                             "pf": (3418, 0, 5), "energy_wh": (3418, 0, 6)}
FAULT_FLAGS: dict[str, Path] = {"lamp_fault": (3416, 0, 5), "driver_fault": (3416, 0, 7)}
TIMEOUT_S = 30.0
RELEASE_EVERY_S = 0.005


class Lwm2mFleet:
    """The LwM2M controllers of a road's poles (by index), on an asyncio loop of their own."""

    def __init__(self, road: Road, server: tuple[str, int], put_command: Any, lifetime_s: int = 300,
                 road_time: Callable[[], int | None] | None = None) -> None:
        self.road, self.server, self.lifetime_s = road, server, lifetime_s
        # an accelerated check runs the road ahead of the platform; a flag notified at once would
        # overtake the MQTT half's queue and reach the platform before its road time does (the
        # controller would open the fault at a tick before the fault), so with ``road_time`` a
        # flag waits for road time to reach its instant, as it would on a live road
        self.road_time = road_time
        self._held: list[tuple[int, int, Path]] = []  # (ts, pole, flag) waiting for road time
        self._held_lock = threading.Lock()
        self.endpoints = {i: p.lwm2m_endpoint for i, p in enumerate(road.poles) if p.lwm2m_endpoint}
        self._put_command = put_command
        self.devices: dict[int, SimLwm2mDevice] = {}
        self._last_ts: dict[int, int] = {}
        self._ids = itertools.count(1)
        self.taken: Counter[str] = Counter()  # messages of the simulation carried over LwM2M, by kind
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="sim-lwm2m", daemon=True)
        self._thread.start()
        if road_time is not None:
            self.loop.call_soon_threadsafe(self._release)

    def __contains__(self, i: int) -> bool:
        return i in self.endpoints

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT_S)

    def register(self, poles: list[int]) -> None:
        async def one(i: int) -> None:
            def on_write(path: Path, value: int, i: int = i) -> None:
                self._on_write(i, value)

            dev = SimLwm2mDevice(self.endpoints[i], self.server, lifetime_s=self.lifetime_s, on_write=on_write)
            await dev.start()
            code = await dev.register()
            if not code.is_successful():
                log.error("%s was refused by the LwM2M server: %s", self.endpoints[i], code)
            self.devices[i] = dev

        async def all_of(ids: list[int]) -> None:
            await asyncio.gather(*(one(i) for i in ids))

        ids = [i for i in poles if i in self.endpoints]
        if ids:
            self._run(all_of(ids))

    def drop(self, poles: list[int]) -> None:
        """A power cut: the controllers stop answering, without de-registering."""
        gone = [self.devices.pop(i) for i in poles if i in self.devices]
        async def stop_all() -> None:
            await asyncio.gather(*(d.stop() for d in gone))

        if gone:
            self._run(stop_all())

    def _on_write(self, i: int, level: int) -> None:
        """A Write of the command resource is the pole's dim command."""
        cmd = DimCommand(cmd_id=f"lwm2m-{next(self._ids)}", issued_ts=self._last_ts.get(i, 0), level=float(level))
        self._put_command(i, pole_topic(self.road.id, self.road.poles[i].id, "cmd"), cmd.to_bytes())

    def publish(self, m: Outgoing) -> bool:
        """Take what goes over LwM2M (True); the rest stays on MQTT."""
        dev = self.devices.get(m.pole)
        if m.pole not in self.endpoints:
            return False
        if m.kind == "ack":
            return True  # an LwM2M controller has no acks: the platform reads its level instead
        if m.kind == "telemetry":
            body = orjson.loads(m.payload)
            self._last_ts[m.pole] = int(body["ts"])
            self.taken["telemetry"] += 1
            if dev is not None:
                values: list[tuple[Path, object]] = [((3418, 0, 5518), int(body["ts"]) // 1000),
                                                     ((3416, 0, 3), round(float(body["dim"])))]
                values += [(path, float(body[f])) for f, path in READINGS.items() if f in body]
                self.loop.call_soon_threadsafe(_set_all, dev, values)
            return True
        if m.kind == "event":
            body = orjson.loads(m.payload)
            flag = FAULT_FLAGS.get(body.get("type", ""))
            if flag is None:
                return False
            self.taken["event"] += 1
            if self.road_time is not None:
                with self._held_lock:
                    self._held.append((int(body["ts"]), m.pole, flag))
            elif dev is not None:
                flagged: list[tuple[Path, object]] = [(flag, True)]
                self.loop.call_soon_threadsafe(_set_all, dev, flagged)
            return True
        return False

    def _release(self) -> None:
        """On the fleet's loop, every few ms: hand held flags to their devices once road time has
        reached them (each is then dated by its device's latest timestamp, or by its arrival)."""
        assert self.road_time is not None
        now = self.road_time()
        if now is not None and self._held:
            with self._held_lock:
                due = [h for h in self._held if h[0] <= now]
                self._held = [h for h in self._held if h[0] > now]
            for _ts, pole, flag in due:
                dev = self.devices.get(pole)
                if dev is not None:
                    dev.set(flag, True)
        self.loop.call_later(RELEASE_EVERY_S, self._release)

    def close(self) -> None:
        async def bye() -> None:
            for dev in self.devices.values():
                try:
                    if dev.location is not None:
                        await asyncio.wait_for(dev.deregister(), 5)
                except Exception as err:  # the server may be gone already
                    log.debug("de-register of %s: %r", dev.endpoint, err)
                await dev.stop()

        try:
            self._run(bye())
        finally:
            self.devices.clear()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)


def _set_all(dev: SimLwm2mDevice, values: list[tuple[Path, object]]) -> None:
    for path, value in values:
        dev.set(path, value)


class MixedTransport:
    """MQTT for every pole, LwM2M for the lamp controllers of the fleet's poles."""

    def __init__(self, mqtt: PerPoleTransport | ConcentratorTransport, fleet: Lwm2mFleet) -> None:
        self.mqtt, self.fleet = mqtt, fleet
        self.inbox = mqtt.inbox

    def connect(self, poles: list[int]) -> None:
        self.mqtt.connect(poles)
        self.fleet.register(poles)

    def drop(self, poles: list[int]) -> None:
        self.mqtt.drop(poles)
        self.fleet.drop(poles)

    def publish_many(self, msgs: list[Outgoing]) -> None:
        self.mqtt.publish_many([m for m in msgs if not self.fleet.publish(m)])

    def reconnected(self) -> list[int]:
        return self.mqtt.reconnected()

    def flush(self, timeout: float = 60.0, pipelined: bool = False) -> None:
        self.mqtt.flush(timeout, pipelined)

    def close(self) -> None:
        try:
            self.fleet.close()
        finally:
            self.mqtt.close()


class MixedSimulation(Simulation):
    """A :class:`Simulation` whose road's ``lwm2m_endpoint`` poles speak LwM2M to ``lwm2m_server``."""

    def __init__(self, scenario: Any, *, lwm2m_server: tuple[str, int], lwm2m_lifetime_s: int = 300,
                 road_time: Callable[[], int | None] | None = None, **kwargs: Any) -> None:
        super().__init__(scenario, **kwargs)
        self.lwm2m_server, self.lwm2m_lifetime_s = lwm2m_server, lwm2m_lifetime_s
        self.road_time = road_time

    def _make_transport(self) -> PerPoleTransport | ConcentratorTransport:
        mqtt = super()._make_transport()
        fleet = Lwm2mFleet(self.scenario.road, self.lwm2m_server, mqtt.inbox.put, self.lwm2m_lifetime_s, self.road_time)
        # the same interface as the MQTT transports (connect, publish, flush, inbox, close), by duck typing
        return MixedTransport(mqtt, fleet)  # type: ignore[return-value]


def with_lwm2m(scenario: Any, share: float) -> Any:
    """The scenario on its road with LwM2M controllers on ``share`` of the poles."""
    import dataclasses

    from streetlight.registry import with_lwm2m_share

    return dataclasses.replace(scenario, road=with_lwm2m_share(scenario.road, share))


def run_mixed(scenario: Any, *, lwm2m_server: tuple[str, int], progress: bool = False, **kwargs: Any) -> Any:
    """:func:`simulators.runner.run_simulation` for a mixed road; returns its RunStats."""
    sim = MixedSimulation(scenario, lwm2m_server=lwm2m_server, **kwargs)
    return drive(sim, progress=progress, stop=kwargs.get("stop"), label=f"{scenario.name} (mixed)")
