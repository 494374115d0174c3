"""The first managed schema: the controller's and the API's tables in one database.

A database from before migrations (``controller.sqlite3`` or ``api.sqlite3`` made by an older
release, with its own ``CREATE TABLE IF NOT EXISTS``) is taken over in place: the tables it
lacks are created, the columns older files lack are added (tokens' ``expires_ms``, audit's
``count``), its rows are kept. A new database gets every table.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _tables() -> dict[str, tuple[list[sa.Column], dict[str, bool]]]:
    auto = {"sqlite_autoincrement": True}
    return {
        "faults": ([
            sa.Column("fault_id", sa.Text, primary_key=True), sa.Column("road", sa.Text, nullable=False),
            sa.Column("type", sa.Text, nullable=False), sa.Column("state", sa.Text, nullable=False),
            sa.Column("severity", sa.Text, nullable=False), sa.Column("pole", sa.Text), sa.Column("feeder", sa.Text),
            sa.Column("first_seen_ts", sa.BigInteger, nullable=False),
            sa.Column("last_seen_ts", sa.BigInteger, nullable=False), sa.Column("body", sa.Text, nullable=False),
        ], {}),
        "fault_log": ([
            sa.Column("id", RowId, primary_key=True, autoincrement=True),
            sa.Column("fault_id", sa.Text, nullable=False), sa.Column("ts", sa.BigInteger, nullable=False),
            sa.Column("state", sa.Text, nullable=False), sa.Column("actor", sa.Text, nullable=False),
            sa.Column("note", sa.Text, nullable=False, server_default=""),
        ], auto),
        "overrides": ([
            sa.Column("id", sa.Text, primary_key=True), sa.Column("road", sa.Text, nullable=False),
            sa.Column("body", sa.Text, nullable=False), sa.Column("active", sa.Integer, nullable=False),
            sa.Column("set_by", sa.Text, nullable=False), sa.Column("set_ts", sa.BigInteger, nullable=False),
            sa.Column("cleared_by", sa.Text), sa.Column("cleared_ts", sa.BigInteger),
        ], {}),
        "schedules": ([
            sa.Column("road", sa.Text, primary_key=True),
            sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("body", sa.Text, nullable=False), sa.Column("actor", sa.Text, nullable=False),
            sa.Column("ts", sa.BigInteger, nullable=False),
        ], {}),
        "energy": ([
            sa.Column("road", sa.Text, primary_key=True), sa.Column("ts", sa.BigInteger, nullable=False),
            sa.Column("body", sa.Text, nullable=False),
        ], {}),
        "counters": ([
            sa.Column("name", sa.Text, primary_key=True), sa.Column("value", sa.BigInteger, nullable=False),
        ], {}),
        "tokens": ([
            sa.Column("id", sa.Text, primary_key=True), sa.Column("name", sa.Text, nullable=False),
            sa.Column("role", sa.Text, nullable=False), sa.Column("hash", sa.Text, nullable=False, unique=True),
            sa.Column("created_ms", sa.BigInteger, nullable=False), sa.Column("revoked_ms", sa.BigInteger),
            sa.Column("expires_ms", sa.BigInteger),
        ], {}),
        "audit": ([
            sa.Column("id", RowId, primary_key=True, autoincrement=True),
            sa.Column("ts_ms", sa.BigInteger, nullable=False), sa.Column("actor", sa.Text, nullable=False),
            sa.Column("role", sa.Text, nullable=False), sa.Column("token_id", sa.Text),
            sa.Column("action", sa.Text, nullable=False), sa.Column("target", sa.Text, nullable=False),
            sa.Column("params", sa.Text, nullable=False), sa.Column("result", sa.Text, nullable=False),
            sa.Column("detail", sa.Text, nullable=False),
            sa.Column("count", sa.Integer, nullable=False, server_default="1"),
        ], auto),
        "webhooks": ([
            sa.Column("id", sa.Text, primary_key=True), sa.Column("name", sa.Text, nullable=False),
            sa.Column("kind", sa.Text, nullable=False), sa.Column("url", sa.Text, nullable=False),
            sa.Column("secret", sa.Text), sa.Column("min_severity", sa.Text, nullable=False),
            sa.Column("created_ms", sa.BigInteger, nullable=False),
        ], {}),
        "deliveries": ([
            sa.Column("id", RowId, primary_key=True, autoincrement=True),
            sa.Column("webhook_id", sa.Text, nullable=False), sa.Column("fault_id", sa.Text, nullable=False),
            sa.Column("fault_state", sa.Text, nullable=False), sa.Column("ts_ms", sa.BigInteger, nullable=False),
            sa.Column("attempt", sa.Integer, nullable=False), sa.Column("ok", sa.Integer, nullable=False),
            sa.Column("status_code", sa.Integer), sa.Column("error", sa.Text, nullable=False),
        ], auto),
    }


# columns an older file may lack, added with the default its code assumed
_LATER_COLUMNS = {
    "tokens": [sa.Column("expires_ms", sa.BigInteger)],
    "audit": [sa.Column("count", sa.Integer, nullable=False, server_default="1")],
}
_INDEXES = {"faults_state": ("faults", ["road", "state"]), "audit_ts": ("audit", ["ts_ms"])}


def upgrade() -> None:
    insp = sa.inspect(op.get_bind())
    present = set(insp.get_table_names())
    for name, (columns, kw) in _tables().items():
        if name not in present:
            op.create_table(name, *columns, **kw)
            continue
        have = {c["name"] for c in insp.get_columns(name)}
        for col in _LATER_COLUMNS.get(name, []):
            if col.name not in have:
                op.add_column(name, col)
    for index, (table, cols) in _INDEXES.items():
        if table not in present or index not in {i["name"] for i in insp.get_indexes(table)}:
            op.create_index(index, table, cols)


def downgrade() -> None:
    raise NotImplementedError("the baseline is not undone: restore a backup of the older release's file instead")
