"""Archived (B-LTA) versions of issued PDFs: the newest one's hash and when it was made.

Revision ID: 0003_archives
Revises: 0002_ledger
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_archives"
down_revision = "0002_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("archived_sha256_pdf", sa.String(64), nullable=True))
        batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("archived_at")
        batch.drop_column("archived_sha256_pdf")
