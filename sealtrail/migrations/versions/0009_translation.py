"""Signed English translations: a document row names the original it translates (its standing follows that one).

Revision ID: 0009_translation
Revises: 0005_accounts
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_translation"
down_revision = "0005_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("translation_of", sa.String(64), nullable=True))
        batch.create_index("ix_documents_translation_of", ["translation_of"])


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_index("ix_documents_translation_of")
        batch.drop_column("translation_of")
