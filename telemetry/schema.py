"""Database, retention policies and continuous queries (1-minute and 1-hour roll-ups).

    raw  (default, ``raw_duration``, 400 d) telemetry, event          every message
    rp_1m (400 d)                            telemetry_1m              per pole per minute
    rp_1h (infinite)                         telemetry_1h              per pole per hour

A year of the reference road at one report per 10 s is ~290 M raw points; kept as 1-hour
roll-ups it is 93 x 8,760 = 815 k rows, so a year's chart reads the hour roll-up.

Continuous queries cover the recent past only (they run on the database's clock). Data written
with older device times (a replay, a simulated week) is rolled up with :func:`rollup`.
"""

from __future__ import annotations

from .client import InfluxQL

_MEAN = ("dim", "power_w", "voltage_v", "current_a", "pf", "lux", "leakage_ma", "temp_c", "rssi_dbm")
_SUM = ("vehicles", "pedestrians")


def _select(src_count: str) -> str:
    parts = [f'mean("{f}") AS "{f}"' for f in _MEAN]
    parts += [f'sum("{f}") AS "{f}"' for f in _SUM]
    parts.append('max("energy_wh") AS "energy_wh"')
    parts.append(src_count)
    return ", ".join(parts)


def rollup_select(db: str, level: str) -> str:
    if level == "1m":
        return (f'SELECT {_select("count(power_w) AS samples")} INTO "{db}"."rp_1m"."telemetry_1m" '
                f'FROM "{db}"."raw"."telemetry"')
    return (f'SELECT {_select("sum(samples) AS samples")} INTO "{db}"."rp_1h"."telemetry_1h" '
            f'FROM "{db}"."rp_1m"."telemetry_1m"')


def ensure_schema(client: InfluxQL, raw_duration: str = "400d") -> None:
    """Create the database, its retention policies and continuous queries if missing (idempotent)."""
    db = client.db
    client.query(f'CREATE DATABASE "{db}"', write=True, db=False)
    existing = {row[0] for r in client.query(f'SHOW RETENTION POLICIES ON "{db}"')
                for s in r.get("series", []) for row in s["values"]}
    for name, duration, default in (("raw", raw_duration, True), ("rp_1m", "400d", False), ("rp_1h", "INF", False)):
        verb = "ALTER" if name in existing else "CREATE"
        client.query(f'{verb} RETENTION POLICY "{name}" ON "{db}" DURATION {duration} REPLICATION 1'
                     f'{" DEFAULT" if default else ""}', write=True)
    cqs = {row[0] for r in client.query("SHOW CONTINUOUS QUERIES")
           for s in r.get("series", []) if s.get("name") == db for row in s.get("values", [])}
    for level, every in (("1m", "1m"), ("1h", "1h")):
        name = f"cq_{level}"
        if name not in cqs:
            client.query(f'CREATE CONTINUOUS QUERY "{name}" ON "{db}" BEGIN '
                         f"{rollup_select(db, level)} GROUP BY time({every}), * END", write=True)


def rollup(client: InfluxQL, start_ms: int, end_ms: int) -> None:
    """Backfill both roll-ups for ``[start_ms, end_ms)`` (replayed or simulated data)."""
    where = f"WHERE time >= {start_ms * 1_000_000} AND time < {end_ms * 1_000_000}"
    client.query(f"{rollup_select(client.db, '1m')} {where} GROUP BY time(1m), *", write=True)
    client.query(f"{rollup_select(client.db, '1h')} {where} GROUP BY time(1h), *", write=True)
