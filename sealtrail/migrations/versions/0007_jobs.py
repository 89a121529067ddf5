"""Batch jobs: one row per batch, one row per document of it (its checked input until issued), and on
PostgreSQL the task queue's own schema (procrastinate's, as shipped with the pinned version).

Revision ID: 0007_jobs
Revises: 0003_archives
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_jobs"
down_revision = "0003_archives"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("school_code", sa.String(32), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "batch_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(32), sa.ForeignKey("batches.id"), nullable=False, index=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("doc_id", sa.String(64), nullable=False, unique=True),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("input", sa.JSON, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.String(1000), nullable=True),
        sa.Column("job_id", sa.BigInteger, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("batch_id", "seq"),
    )
    bind = op.get_bind()
    exists = (
        bind.dialect.name == "postgresql" and bind.exec_driver_sql("SELECT to_regclass('procrastinate_jobs')").scalar()
    )
    if bind.dialect.name == "postgresql" and not exists:
        from procrastinate.schema import SchemaManager

        # The driver connection runs the multi-statement script as is (no parameter parsing).
        bind.connection.driver_connection.execute(SchemaManager.get_schema())  # type: ignore[union-attr]


def downgrade() -> None:
    # procrastinate's schema is left in place (it may hold other queues' jobs); drop it by hand if unwanted.
    op.drop_table("batch_items")
    op.drop_table("batches")
