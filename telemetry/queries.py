"""Read-side queries, each returning a pandas DataFrame with a UTC ``time`` column.

Times may be given as epoch milliseconds, ``datetime`` or ``pandas.Timestamp``; ``every`` is an
InfluxQL duration (``10s``, ``1m``, ``1h``) or ``None`` for raw points.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pandas as pd

from .client import InfluxQL

TimeLike = int | datetime | pd.Timestamp
DURATION_RE = re.compile(r"^\d+(ns|u|ms|s|m|h|d|w)$")
ID_RE = re.compile(r"^[A-Za-z0-9_.:+-]{1,64}$")
READINGS = ("dim", "power_w", "voltage_v", "current_a", "pf", "energy_wh", "lux", "vehicles", "pedestrians",
            "leakage_ma", "temp_c", "rssi_dbm")
SOURCES = {"raw": '"raw"."telemetry"', "1m": '"rp_1m"."telemetry_1m"', "1h": '"rp_1h"."telemetry_1h"'}


def _ns(t: TimeLike) -> int:
    if isinstance(t, int):
        return t * 1_000_000
    return int(pd.Timestamp(t).value)


def _lit(value: str) -> str:
    """A tag value as an InfluxQL string literal; ids are checked, never spliced raw."""
    if not ID_RE.match(value):
        raise ValueError(f"not a valid id: {value!r}")
    return f"'{value}'"


def _every(every: str) -> str:
    if not DURATION_RE.match(every):
        raise ValueError(f"not an InfluxQL duration: {every!r} (e.g. 10s, 1m, 1h)")
    return every


def to_frame(results: list[dict[str, Any]]) -> pd.DataFrame:
    """Series of an InfluxQL answer -> one frame, tags as columns, ``time`` as UTC timestamps."""
    frames = []
    for r in results:
        for s in r.get("series", []):
            df = pd.DataFrame(s["values"], columns=s["columns"])
            for k, v in (s.get("tags") or {}).items():
                df[k] = v
            frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["time"])
    df = pd.concat(frames, ignore_index=True)
    df["time"] = pd.to_datetime(df["time"], unit="ms", utc=True)
    return df


class TelemetryQueries:
    def __init__(self, client: InfluxQL) -> None:
        self.client = client

    def _frame(self, q: str) -> pd.DataFrame:
        return to_frame(self.client.query(q))

    def pole_readings(self, road: str, pole: str, start: TimeLike, end: TimeLike, every: str | None = None,
                      source: str = "raw") -> pd.DataFrame:
        """One pole's readings in ``[start, end)``: raw points, or means per ``every``."""
        where = (f"WHERE road = {_lit(road)} AND pole = {_lit(pole)} "
                 f"AND time >= {_ns(start)} AND time < {_ns(end)}")
        if every is None:
            return self._frame(f"SELECT * FROM {SOURCES[source]} {where}")
        sel = ", ".join(f'{"sum" if f in ("vehicles", "pedestrians") else "max" if f == "energy_wh" else "mean"}'
                        f'("{f}") AS "{f}"' for f in READINGS)
        return self._frame(f"SELECT {sel} FROM {SOURCES[source]} {where} GROUP BY time({_every(every)}) fill(none)")

    def segment_aggregates(self, road: str, start: TimeLike, end: TimeLike, every: str = "1h",
                           segment: str | None = None, source: str = "raw") -> pd.DataFrame:
        """Per segment (or the road, ``segment='*'``) and time bucket: total power, mean dim,
        vehicles and pedestrians counted, poles reporting."""
        where = f"WHERE road = {_lit(road)} AND time >= {_ns(start)} AND time < {_ns(end)}"
        if segment and segment != "*":
            where += f" AND segment = {_lit(segment)}"
        e = _every(every)
        inner = (f'SELECT mean("power_w") AS p, mean("dim") AS d, sum("vehicles") AS v, sum("pedestrians") AS w '
                 f"FROM {SOURCES[source]} {where} GROUP BY time({e}), pole, segment")
        by = "" if segment == "*" else ", segment"
        q = (f'SELECT sum(p) AS power_w, mean(d) AS dim, sum(v) AS vehicles, sum(w) AS pedestrians, count(p) AS poles '
             f"FROM ({inner}) WHERE time >= {_ns(start)} AND time < {_ns(end)} GROUP BY time({e}){by} fill(none)")
        return self._frame(q)

    def energy_per_day(self, road: str, start: TimeLike, end: TimeLike, by: str = "pole",
                       tz: str = "Asia/Shanghai") -> pd.DataFrame:
        """Energy (Wh) per local day from the cumulative meter, by ``pole``, ``segment`` or ``road``."""
        if by not in ("pole", "segment", "road"):
            raise ValueError("by must be 'pole', 'segment' or 'road'")
        q = (f'SELECT spread("energy_wh") AS energy_wh FROM {SOURCES["raw"]} WHERE road = {_lit(road)} '
             f"AND time >= {_ns(start)} AND time < {_ns(end)} GROUP BY time(1d), pole, segment fill(none) "
             f"tz('{tz}')")
        df = self._frame(q)
        if df.empty:
            return pd.DataFrame(columns=["time", by, "energy_wh"])
        df["time"] = df["time"].dt.tz_convert(tz)
        if by == "pole":
            return df[["time", "pole", "segment", "energy_wh"]].reset_index(drop=True)
        if by == "segment":
            return df.groupby(["time", "segment"], as_index=False)["energy_wh"].sum()
        out = df.groupby("time", as_index=False)["energy_wh"].sum()
        out["road"] = road
        return out[["time", "road", "energy_wh"]]

    def latest(self, road: str) -> pd.DataFrame:
        """The newest telemetry point of every pole of ``road``, one row per pole."""
        return self._frame(f'SELECT * FROM {SOURCES["raw"]} WHERE road = {_lit(road)} '
                           f"GROUP BY pole ORDER BY time DESC LIMIT 1")

    def count_distinct_seq(self, road: str, start: TimeLike | None = None) -> pd.DataFrame:
        """Points and distinct ``seq`` per pole: the exactly-once check of the fault tests."""
        where = f"WHERE road = {_lit(road)}" + (f" AND time >= {_ns(start)}" if start is not None else "")
        return self._frame(f'SELECT count("seq") AS points, count(distinct("seq")) AS distinct_seq '
                           f"FROM {SOURCES['raw']} {where} GROUP BY pole")

    def count_readings(self, road: str, start: TimeLike | None = None, end: TimeLike | None = None) -> dict[str, int]:
        """Stored points of ``road`` per measurement (``telemetry``, ``event``), in ``[start, end]``
        when given: what a run's accounting compares with what the poles published."""
        when = f" AND time >= {_ns(start)} AND time <= {_ns(end)}" if start is not None and end is not None else ""
        out = {}
        for m in ("telemetry", "event"):
            res = self.client.query(f'SELECT count("seq") FROM "raw"."{m}" WHERE road = {_lit(road)}{when}')
            out[m] = sum(int(s["values"][0][1] or 0) for r in res for s in r.get("series", []))
        return out

    def port_readings(self, road: str, pole: str, start: TimeLike, end: TimeLike) -> pd.DataFrame:
        """One pole's port points (protocol 1.1) in ``[start, end)``: a row per port and report."""
        return self._frame(f'SELECT * FROM "raw"."port" WHERE road = {_lit(road)} AND pole = {_lit(pole)} '
                           f"AND time >= {_ns(start)} AND time < {_ns(end)}")

    def cabinet_readings(self, road: str, cabinet: str, start: TimeLike, end: TimeLike) -> pd.DataFrame:
        """One cabinet's feeder points (protocol 1.1) in ``[start, end)``: a row per feeder and report."""
        return self._frame(f'SELECT * FROM "raw"."cabinet_feeder" WHERE road = {_lit(road)} '
                           f"AND cabinet = {_lit(cabinet)} AND time >= {_ns(start)} AND time < {_ns(end)}")
