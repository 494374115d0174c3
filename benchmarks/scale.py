"""``streetlight bench scale``: 10,000 poles through 1, 2 and 4 gateway processes on one MQTT 5
shared subscription, CPU and memory per process, beside the broker's ceiling and InfluxDB's own
(same method as :mod:`benchmarks.ingest`: points stored in InfluxDB between 10 % and 90 % of the load)."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .ingest import Bench


def run(quick: bool = False) -> list[dict[str, Any]]:
    n = 60_000 if quick else 300_000
    road = f"synthetic:{10_000}"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sl-bench-scale-") as tmp:
        b = Bench(Path(tmp))
        try:
            rows.append(b.ceiling(n))
            rows.append(b.influx_ceiling(road, n))
            rows.append(b.influx_ceiling(road, n, batch=2500, writers=2))
            for procs in (1, 2, 4):
                t = time.perf_counter()
                label = f"gateway x{procs}" + (" (one shared subscription)" if procs > 1 else "")
                row = b.run_case(label, "gateway", road, n, procs)
                row["processes"] = procs
                row["cpu_pct_per_process"] = round(row.get("cpu_pct", 0) / procs)
                row["rss_mib_per_process"] = round(row.get("rss_mib", 0) / procs)
                rows.append(row)
                print(f"  {procs} process(es): {row['msg_per_s']} msg/s ({time.perf_counter() - t:.0f} s)",
                      file=sys.stderr, flush=True)
        finally:
            b.close()
    one = next((r["msg_per_s"] for r in rows if r.get("processes") == 1), 0)
    ceiling = max((r["msg_per_s"] for r in rows if r["case"].startswith("InfluxDB ceiling")), default=0)
    for r in rows:
        if r.get("processes") and one:
            r["x_one_process"] = round(r["msg_per_s"] / one, 2)
        if r.get("processes") and ceiling:
            r["x_db_ceiling"] = round(r["msg_per_s"] / ceiling, 2)
    return rows
