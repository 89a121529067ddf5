"""Keyed-hash look-up columns for bulk CSV checks: HMAC of the document number (indexed) and of (name, birth date).

Existing rows cannot be filled here: the hashes need the installation secret and the stored signed XML, both
outside the database. Run ``sealtrail re-index`` once after upgrading to fill them for older documents.

Revision ID: 0004_lookup
Revises: 0008_status
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_lookup"
down_revision = "0008_status"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("lookup_number", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lookup_holder", sa.String(64), nullable=True))
        batch.create_index("ix_documents_lookup_number", ["lookup_number"])


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_index("ix_documents_lookup_number")
        batch.drop_column("lookup_holder")
        batch.drop_column("lookup_number")
