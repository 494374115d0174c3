"""One object for the rest of the platform: writer + queries, built from the settings."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
from pydantic import SecretStr

from streetlight.settings import Settings

from .client import InfluxQL
from .queries import TelemetryQueries, TimeLike
from .schema import ensure_schema
from .writer import InfluxWriter


class TelemetryStore:
    """``InfluxWriter`` (batched, spooled) and ``TelemetryQueries`` on one database."""

    def __init__(self, url: str, db: str, *, data_dir: Path, username: str | None = None,
                 password: str | None = None, token: str | None = None, drain: bool = True,
                 raw_duration: str = "400d") -> None:
        self.raw_duration = raw_duration
        self.client = InfluxQL(url, db, username=username, password=password, token=token)
        self.writer = InfluxWriter(url, db, spool_dir=Path(data_dir) / "telemetry", username=username,
                                   password=password, token=token, drain=drain,
                                   on_missing_database=lambda: self.ensure_schema(self.raw_duration))
        self.queries = TelemetryQueries(self.client)

    @classmethod
    def from_settings(cls, s: Settings, drain: bool = True) -> TelemetryStore:
        def secret(v: SecretStr | None) -> str | None:
            return v.get_secret_value() if v is not None else None

        return cls(s.influx_url, s.influx_db, data_dir=s.data_dir, username=s.influx_username,
                   password=secret(s.influx_password), token=secret(s.influx_token), drain=drain)

    def ensure_schema(self, raw_duration: str | None = None) -> None:
        ensure_schema(self.client, raw_duration or self.raw_duration)

    def close(self) -> None:
        self.writer.close()
        self.client.close()

    # the query API, re-exported for callers that hold the store
    def pole_readings(self, road: str, pole: str, start: TimeLike, end: TimeLike, every: str | None = None) -> pd.DataFrame:
        return self.queries.pole_readings(road, pole, start, end, every)

    def segment_aggregates(self, road: str, start: TimeLike, end: TimeLike, every: str = "1h",
                           segment: str | None = None) -> pd.DataFrame:
        return self.queries.segment_aggregates(road, start, end, every, segment)

    def energy_per_day(self, road: str, start: TimeLike | datetime, end: TimeLike, by: str = "pole") -> pd.DataFrame:
        return self.queries.energy_per_day(road, start, end, by)

    def latest(self, road: str) -> pd.DataFrame:
        return self.queries.latest(road)

    def count_readings(self, road: str, start_ms: int | None = None, end_ms: int | None = None) -> dict[str, int]:
        return self.queries.count_readings(road, start_ms, end_ms)
