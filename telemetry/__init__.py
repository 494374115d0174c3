"""InfluxDB storage: batched writes, a durable spool, queries returning pandas frames.

Only the v1 HTTP API is used (``/write`` line protocol, ``/query`` InfluxQL): it is served by
InfluxDB 1.x, by 2.x (v1 compatibility, token auth) and by 3.x.
"""

from .client import InfluxQL
from .errors import BadPoints, DatabaseUnavailable, QueryError, SpoolFull, TelemetryError, WriteError
from .lineproto import cabinet_lines, event_line, point_time_ns, port_lines, tag_set, telemetry_line
from .queries import TelemetryQueries, to_frame
from .schema import ensure_schema, rollup
from .spool import Spool, SpoolRecord
from .store import TelemetryStore
from .writer import DeadLetter, InfluxWriter

__all__ = [
    "BadPoints", "DatabaseUnavailable", "DeadLetter", "InfluxQL", "InfluxWriter", "QueryError", "Spool",
    "SpoolFull", "SpoolRecord", "TelemetryError", "TelemetryQueries", "TelemetryStore", "WriteError",
    "cabinet_lines", "ensure_schema", "event_line", "point_time_ns", "port_lines", "rollup", "tag_set",
    "telemetry_line", "to_frame",
]
