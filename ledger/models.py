"""The ledger's tables, and the database triggers that make them append-only."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Connection, DateTime, Integer, LargeBinary, SmallInteger, Table, Text
from sqlmodel import SQLModel

metadata = SQLModel.metadata

entries = Table(
    "ledger_entries",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
)
nodes = Table(
    "ledger_nodes",
    metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)
checkpoints = Table(
    "ledger_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("size", BigInteger, nullable=False, index=True),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
state = Table(
    "ledger_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
)
APPEND_ONLY = ("ledger_entries", "ledger_nodes", "ledger_checkpoints")


def install_append_only_guards(conn: Connection) -> None:
    """Make the database itself refuse UPDATE and DELETE on the log tables, and never let the size shrink."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            """
            CREATE OR REPLACE FUNCTION sealtrail_ledger_append_only() RETURNS trigger AS $$
            BEGIN
              RAISE EXCEPTION 'the ledger is append-only: %% on %% refused', TG_OP, TG_TABLE_NAME;
            END $$ LANGUAGE plpgsql
            """
        )
        conn.exec_driver_sql(
            """
            CREATE OR REPLACE FUNCTION sealtrail_ledger_size_grows() RETURNS trigger AS $$
            BEGIN
              IF NEW.size < OLD.size THEN
                RAISE EXCEPTION 'the ledger is append-only: its size cannot shrink';
              END IF;
              RETURN NEW;
            END $$ LANGUAGE plpgsql
            """
        )
        for table in APPEND_ONLY:
            conn.exec_driver_sql(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION sealtrail_ledger_append_only()"
            )
        conn.exec_driver_sql(
            "CREATE TRIGGER ledger_state_grows BEFORE UPDATE ON ledger_state "
            "FOR EACH ROW EXECUTE FUNCTION sealtrail_ledger_size_grows()"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER ledger_state_kept BEFORE DELETE OR TRUNCATE ON ledger_state "
            "FOR EACH STATEMENT EXECUTE FUNCTION sealtrail_ledger_append_only()"
        )
    else:
        for table in APPEND_ONLY:
            for op in ("UPDATE", "DELETE"):
                conn.exec_driver_sql(
                    f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: {op} on {table} refused'); END"
                )
        conn.exec_driver_sql(
            "CREATE TRIGGER ledger_state_grows BEFORE UPDATE ON ledger_state WHEN NEW.size < OLD.size "
            "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: its size cannot shrink'); END"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER ledger_state_kept BEFORE DELETE ON ledger_state "
            "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: DELETE on ledger_state refused'); END"
        )
