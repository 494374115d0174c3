"""One consumer process of the ingest benchmark (``python -m benchmarks.ingest_consumer MODE …``).

* ``naive``: a paho callback that parses JSON and writes each message with its own HTTP request.
* ``batched``: the same callback, writing every 1,000 points in one request.
* ``gateway``: the real :class:`~gateway.service.GatewayService` (validation, dedup, spool, acks).

Prints ``loaded`` when built, connects on a line on stdin, prints ``ready`` once subscribed;
stops cleanly on SIGTERM (the session stays on the broker).
"""

from __future__ import annotations

import signal
import sys
import threading

import httpx
import orjson
import paho.mqtt.client as mqtt


def naive(port: int, influx: str, db: str, client_id: str, batch: int) -> None:
    http = httpx.Client(base_url=influx, timeout=30)
    pending: list[str] = []

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        d = orjson.loads(msg.payload)
        pole = msg.topic.split("/")[3]
        pending.append(f"telemetry,pole={pole} seq={d['seq']}i,dim={d['dim']},power_w={d['power_w']},"
                       f"voltage_v={d['voltage_v']} {d['ts'] * 1_000_000 + d['seq'] % 1_000_000}")
        if len(pending) >= batch:
            http.post("/write", params={"db": db}, content="\n".join(pending).encode())
            pending.clear()

    ready = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    c.on_message = on_message
    c.on_subscribe = lambda *_: ready.set()
    c.on_connect = lambda client, *_: client.subscribe("sl/v1/+/+/telemetry", qos=1)
    _wait_go()
    c.connect("127.0.0.1", port)
    c.loop_start()
    ready.wait(30)
    _serve(lambda: (c.disconnect(), c.loop_stop()))


def gateway(port: int, influx: str, db: str, client_id: str, road: str, group: str | None, data_dir: str,
            writers: int) -> None:
    from gateway.service import GatewayService, settle_garbage_collector
    from streetlight.registry import load_road
    from streetlight.settings import Settings

    s = Settings(mqtt_url=f"mqtt://127.0.0.1:{port}", influx_url=influx, influx_db=db, data_dir=data_dir,
                 influx_writers=writers)
    gw = GatewayService(s, [load_road(road)], client_id=client_id, shared_group=group)
    _wait_go()
    gw.start()
    settle_garbage_collector()  # as `streetlight serve` does
    gw.link.subscribed.wait(30)
    _serve(gw.stop)


def _wait_go() -> None:
    """Everything imported and built: start when the benchmark says so (all consumers at once)."""
    print("loaded", flush=True)
    sys.stdin.readline()


def _serve(stop: object) -> None:
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print("ready", flush=True)
    done.wait()
    stop()  # type: ignore[operator]


if __name__ == "__main__":
    mode, port, influx, db, cid = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    if mode == "gateway":
        gateway(port, influx, db, cid, sys.argv[6], sys.argv[7] or None, sys.argv[8], int(sys.argv[9]))
    else:
        naive(port, influx, db, cid, 1 if mode == "naive" else 1000)
