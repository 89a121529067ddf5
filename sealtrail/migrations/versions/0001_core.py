"""Core tables: the documents registry.

Revision ID: 0001_core
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("school_code", sa.String(32), nullable=False),
        sa.Column("school_name", sa.String(255), nullable=False),
        sa.Column("holder_masked", sa.String(255), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.String(500), nullable=True),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("superseded_by", sa.String(64), nullable=True),
        sa.Column("sha256_pdf", sa.String(64), nullable=True),
        sa.Column("sha256_xml", sa.String(64), nullable=True),
        sa.Column("leaf_index", sa.Integer(), nullable=True),
        sa.Column("signers", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_documents_token", "documents", ["token"], unique=True)
    op.create_index("ix_documents_school_code", "documents", ["school_code"])


def downgrade() -> None:
    op.drop_index("ix_documents_school_code", "documents")
    op.drop_index("ix_documents_token", "documents")
    op.drop_table("documents")
