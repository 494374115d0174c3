"""``streetlight bench sim``: how fast the road steps, and how fast it publishes, beside the broker.

Rows:
* pure stepping (physics, traffic, device state; no payloads) of 93, 10,000 and 100,000 poles:
  pole-steps per CPU second and CPU seconds per simulated report interval (target: well under 1 s
  for 100,000 poles);
* 10,000 poles in concentrator mode publishing to Mosquitto (QoS 1) as fast as it takes them,
  received by ``mosquitto_sub``, beside two ceilings measured in the same run on the same broker
  and subscriber: ``mosquitto_pub --repeat`` (QoS 1), and pre-encoded packets written in bulk
  (what broker and subscriber take when publishing costs nothing).
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ops.servers import MosquittoServer, find_binary, free_port
from simulators.engine import RoadSim
from simulators.rawmqtt import RawMqtt
from simulators.runner import Simulation
from simulators.scenario import Scenario
from streetlight.clock import parse_local
from streetlight.registry import load_road

EVENING = "2026-11-23 19:00"  # the evening peak: the most vehicle events of the day


def _stepping(n: int, steps: int) -> dict[str, Any]:
    road = load_road("nanhuan-1") if n == 93 else load_road(f"synthetic:{n}")
    t = parse_local(EVENING)
    sim = RoadSim(road, t, seed=1, heartbeat_required=False)
    t += 300_000  # one five-minute step fills the road with traffic
    sim.step(t)
    sim.apply_targets(t)
    cpu0 = time.process_time()
    for _ in range(steps):
        t += 10_000
        sim.step(t)
        sim.apply_targets(t)
    cpu = (time.process_time() - cpu0) / steps
    return {"case": f"step {n:,} poles", "poles": n, "steps": steps,
            "pole_steps_per_s": round(n / cpu), "cpu_s_per_interval": round(cpu, 4),
            "target_cpu_s_per_interval": 1.0, "ratio_to_target": round(cpu / 1.0, 3)}


class _Counter:
    """``mosquitto_sub`` on the protocol's topics, printing one byte per message; counts them."""

    def __init__(self, port: int, topic: str) -> None:
        self.count = 0
        self.proc = subprocess.Popen([find_binary("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(port), "-q", "1",
                                      "-t", topic, "-F", "x"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        time.sleep(0.5)  # mosquitto_sub has no "subscribed" signal; give it time to SUBACK

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := self.proc.stdout.read1(1 << 16):
            self.count += chunk.count(b"\n")

    def wait_for(self, n: int, timeout: float = 300.0) -> float:
        deadline = time.perf_counter() + timeout
        while self.count < n and time.perf_counter() < deadline:
            time.sleep(0.002)
        return time.perf_counter()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _ceiling_mosquitto_pub(port: int, n: int, payload: bytes) -> float:
    """Messages/s from ``mosquitto_pub --repeat`` (QoS 1) to ``mosquitto_sub`` (QoS 1), end to end."""
    sub = _Counter(port, "bench/#")
    try:
        t0 = time.perf_counter()
        subprocess.run([find_binary("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(port), "-q", "1",
                        "-t", "bench/ceiling", "-m", payload.decode(), "--repeat", str(n)],
                       check=True, stdout=subprocess.DEVNULL)
        return n / (sub.wait_for(n) - t0)
    finally:
        sub.stop()


def _ceiling_bulk(port: int, n: int, payload: bytes) -> float:
    """Messages/s of pre-encoded QoS 1 packets written in bulk (no simulation) to ``mosquitto_sub``:
    what the broker and subscriber take when the publisher costs nothing."""
    sub = _Counter(port, "bench/#")
    conn = RawMqtt("127.0.0.1", port, "bench-bulk")
    try:
        conn.connect()
        msgs = [("bench/bulk", payload, False)] * n
        t0 = time.perf_counter()
        conn.publish_many(msgs)
        return n / (sub.wait_for(n) - t0)
    finally:
        conn.close()
        sub.stop()


def _publishing(port: int, n: int, steps: int) -> dict[str, Any]:
    """The concentrator publishing as fast as it can, to a ``mosquitto_sub`` that receives it all."""
    road = load_road(f"synthetic:{n}")
    start = parse_local(EVENING)
    sc = Scenario(name="bench", road=road, start_ms=start, duration_s=10 * (steps + 1), speed=None, seed=1,
                  report_interval_s=10)
    sim = Simulation(sc, mqtt_url=f"mqtt://127.0.0.1:{port}", speed=None, concentrator=True, heartbeat_required=False)
    sub = _Counter(port, "sl/v1/#")
    try:
        sim.start()
        sim.step()  # warm up: traffic on the road
        before = sim.stats.published
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        for _ in range(steps):
            sim.step()
        cpu = time.process_time() - cpu0
        sent = sim.stats.published - before
        t1 = sub.wait_for(sim.stats.published)
        received = sub.count
    finally:
        sim.close()
        sub.stop()
    return {"case": f"publish {n:,} poles (concentrator)", "poles": n, "steps": steps, "messages": sent,
            "msgs_per_s": round(sent / (t1 - t0)), "received": received >= sim.stats.published,
            "cpu_s_per_interval": round(cpu / steps, 3)}


def run(quick: bool) -> list[dict[str, Any]]:
    rows = [
        _stepping(93, 50 if quick else 500),
        _stepping(10_000, 5 if quick else 30),
        _stepping(100_000, 2 if quick else 10),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        broker = MosquittoServer(name="mosquitto", port=free_port(), data_dir=Path(tmp)).start()
        try:
            pub = _publishing(broker.port, 10_000, 2 if quick else 6)
            sample = b'{"ts":1795431600000,"seq":123,"dim":100.0,"power_w":150.2,"voltage_v":229.1}'
            ceiling_pub = _ceiling_mosquitto_pub(broker.port, 20_000 if quick else 100_000, sample)
            ceiling_bulk = _ceiling_bulk(broker.port, 50_000 if quick else 200_000, sample)
        finally:
            broker.stop()
    pub["ceiling_mosquitto_pub_msgs_per_s"] = round(ceiling_pub)
    pub["ratio_to_mosquitto_pub"] = round(pub["msgs_per_s"] / ceiling_pub, 2)
    pub["ceiling_bulk_msgs_per_s"] = round(ceiling_bulk)
    pub["ratio_to_bulk"] = round(pub["msgs_per_s"] / ceiling_bulk, 2)
    rows.append(pub)
    return rows
