"""Privacy gates: wrong-answer counters with backoff for the QR page's date-of-birth form and the bulk look-up,
kept in the database so every process of the installation sees the same count (verifier.gate).

Revision ID: 0012_gates
Revises: 0012_signing_identities
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_gates"
down_revision: str | None = "0012_signing_identities"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "public_attempts",
        sa.Column("scope", sa.String(16), primary_key=True),
        sa.Column("subject", sa.String(128), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("public_attempts")
