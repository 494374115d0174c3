"""``streetlight bench lwm2m``: LwM2M registrations/s and notifications/s stored, against the
MQTT path in the same run (same gateway, broker and InfluxDB)."""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from gateway.service import GatewayService
from lwm2m.adapter import Lwm2mAdapter
from ops.processes import wait_for
from ops.servers import start_influxd, start_mosquitto
from simulators.lwm2m_device import STARTED, SimLwm2mDevice
from streetlight.net import LOOPBACK, free_udp_port
from streetlight.protocol import pole_topic
from streetlight.registry import make_road, with_lwm2m_share
from streetlight.settings import Settings


def _wait(cond: Any, timeout_s: float) -> None:
    if not wait_for(cond, timeout_s, interval_s=0.01):
        raise TimeoutError("the platform did not get there in time")


def run(quick: bool = False) -> list[dict[str, Any]]:
    n_poles, rounds = (93, 5) if quick else (200, 20)
    road = with_lwm2m_share(make_road(n_poles), 1.0)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sl-bench-lwm2m-") as tmp:
        mq, db = start_mosquitto(Path(tmp) / "mq"), start_influxd(Path(tmp) / "db")
        port = free_udp_port()
        settings = Settings(mqtt_url=mq.url, influx_url=db.url, influx_db="bench_lwm2m", data_dir=Path(tmp) / "state",
                            road_clock="wall", lwm2m_enabled=True, lwm2m_port=port,
                            _env_file=None)  # type: ignore[call-arg]
        gw = GatewayService(settings, [road])
        gw.start()
        adapter = Lwm2mAdapter(gw, settings, [road])
        adapter.start()
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()

        def on_loop(coro: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(coro, loop).result(300)

        try:
            devices = [SimLwm2mDevice(p.lwm2m_endpoint or "", (LOOPBACK, port)) for p in road.poles]
            for d in devices:
                d.values.update(STARTED)

            async def start_all() -> None:
                await asyncio.gather(*(d.start() for d in devices))

            async def register_all() -> None:
                await asyncio.gather(*(d.register() for d in devices))

            on_loop(start_all())
            t0 = time.perf_counter()
            on_loop(register_all())
            _wait(lambda: len(adapter.registrations) == n_poles, 120)
            reg_s = time.perf_counter() - t0
            rows.append({"case": f"LwM2M registrations ({n_poles} at once)", "count": n_poles,
                         "seconds": round(reg_s, 3), "per_s": round(n_poles / reg_s)})
            _wait(lambda: gw.metrics.written >= n_poles, 120)  # everyone's first reading is in

            async def change(r: int) -> None:
                for d in devices:
                    d.set((3418, 0, 4), 80.0 + r)  # one reading per pole: one SenML notification

            lw_s = 0.0
            for r in range(rounds):  # a round: every pole reports a new reading at once
                before = gw.metrics.written
                t0 = time.perf_counter()
                on_loop(change(r))
                _wait(lambda b=before: gw.metrics.written >= b + n_poles, 300)
                lw_s += time.perf_counter() - t0
            total = n_poles * rounds
            rows.append({"case": "LwM2M notifications stored (incl. the 50 ms coalescing per round)", "count": total,
                         "seconds": round(lw_s, 3), "per_s": round(total / lw_s)})

            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-lwm2m-mqtt")
            client.max_inflight_messages_set(1000)
            client.connect(settings.mqtt_host, settings.mqtt_port)
            client.loop_start()
            before = gw.metrics.written
            now = gw.clock.now_or_wall(road.id)
            t0 = time.perf_counter()
            for r in range(rounds):
                for p in road.poles:
                    body = {"ts": now + r * 100, "seq": r + 1, "dim": 100.0, "power_w": 80.0 + r, "voltage_v": 230.0}
                    client.publish(pole_topic(road.id, p.id, "telemetry"), orjson.dumps(body), qos=1)
            _wait(lambda: gw.metrics.written >= before + total, 300)
            mq_s = time.perf_counter() - t0
            client.loop_stop()
            client.disconnect()
            rows.append({"case": "MQTT telemetry stored (same run)", "count": total, "seconds": round(mq_s, 3),
                         "per_s": round(total / mq_s)})
        finally:
            async def stop_all() -> None:
                await asyncio.gather(*(d.stop() for d in devices), return_exceptions=True)

            on_loop(stop_all())
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            adapter.stop()
            gw.stop()
            mq.stop()
            db.stop()
    return rows
