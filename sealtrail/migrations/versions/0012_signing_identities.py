"""Signing identities per issuer (#21): an organisation's seal or a person's certificate, its key's location, role,
organisation and validity. Existing rows are untouched.

Revision ID: 0012_signing_identities
Revises: 0010_workflow
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_signing_identities"
down_revision: str | None = "0010_workflow"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_identities",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("organisation", sa.String(32), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("key_location", sa.String(255), nullable=False),
        sa.Column("cert_sha256", sa.String(64), nullable=False),
        sa.Column("chain_pem", sa.Text(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_signing_identities_role", "signing_identities", ["role"])
    op.create_index("ix_signing_identities_organisation", "signing_identities", ["organisation"])
    op.create_index("ix_signing_identities_cert_sha256", "signing_identities", ["cert_sha256"])


def downgrade() -> None:
    op.drop_table("signing_identities")
