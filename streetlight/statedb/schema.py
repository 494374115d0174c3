"""The operational state's tables, for both back-ends (SQLite and PostgreSQL), in one place.

The controller's state (``runtime/state.py``): faults, their transition log, overrides,
versioned schedules, the energy meters, the counter fault numbers are reserved from and the
roads' leases (``runtime/leases.py``). The
API's (``api/store.py``): tokens, the audit log, webhooks and their deliveries. Times are
milliseconds (BIGINT); bodies are JSON text, as the stores have always written them.

This module is the schema as the code uses it now; the migrations under ``migrations/versions``
are how a database gets there, and a test checks that both agree.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, Table, Text

metadata = MetaData()

# an autoincrementing key: BIGSERIAL on PostgreSQL, SQLite's INTEGER PRIMARY KEY (its rowid)
RowId = BigInteger().with_variant(Integer(), "sqlite")
Ms = BigInteger

faults = Table(
    "faults", metadata,
    Column("fault_id", Text, primary_key=True),
    Column("road", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("pole", Text),
    Column("feeder", Text),
    Column("first_seen_ts", Ms, nullable=False),
    Column("last_seen_ts", Ms, nullable=False),
    Column("body", Text, nullable=False),
    Index("faults_state", "road", "state"),
)

fault_log = Table(
    "fault_log", metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("fault_id", Text, nullable=False),
    Column("ts", Ms, nullable=False),
    Column("state", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    sqlite_autoincrement=True,
)

overrides = Table(
    "overrides", metadata,
    Column("id", Text, primary_key=True),
    Column("road", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("active", Integer, nullable=False),
    Column("set_by", Text, nullable=False),
    Column("set_ts", Ms, nullable=False),
    Column("cleared_by", Text),
    Column("cleared_ts", Ms),
)

schedules = Table(
    "schedules", metadata,
    Column("road", Text, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("body", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("ts", Ms, nullable=False),
)

energy = Table(
    "energy", metadata,
    Column("road", Text, primary_key=True),
    Column("ts", Ms, nullable=False),
    Column("body", Text, nullable=False),
)

counters = Table(
    "counters", metadata,
    Column("name", Text, primary_key=True),
    Column("value", BigInteger, nullable=False),
)

tokens = Table(
    "tokens", metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("hash", Text, nullable=False, unique=True),
    Column("created_ms", Ms, nullable=False),
    Column("revoked_ms", Ms),
    Column("expires_ms", Ms),
)

audit = Table(
    "audit", metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("ts_ms", Ms, nullable=False),
    Column("actor", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("token_id", Text),
    Column("action", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("params", Text, nullable=False),
    Column("result", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("count", Integer, nullable=False, server_default="1"),
    Index("audit_ts", "ts_ms"),
    sqlite_autoincrement=True,
)

webhooks = Table(
    "webhooks", metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("secret", Text),
    Column("min_severity", Text, nullable=False),
    Column("created_ms", Ms, nullable=False),
)

deliveries = Table(
    "deliveries", metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("webhook_id", Text, nullable=False),
    Column("fault_id", Text, nullable=False),
    Column("fault_state", Text, nullable=False),
    Column("ts_ms", Ms, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("ok", Integer, nullable=False),
    Column("status_code", Integer),
    Column("error", Text, nullable=False),
    sqlite_autoincrement=True,
)

# which controller process decides for a road, until when (wall milliseconds; runtime/leases.py);
# ``epoch`` grows by one each time the road changes hands
road_leases = Table(
    "road_leases", metadata,
    Column("road", Text, primary_key=True),
    Column("holder", Text, nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("expires_ms", Ms, nullable=False),
    Column("taken_ms", Ms, nullable=False),
)

# the controller's tables (runtime/state.py, runtime/leases.py): what a fresh simulated night clears
CONTROLLER_TABLES = (faults, fault_log, overrides, schedules, energy, counters, road_leases)
