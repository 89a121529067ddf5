"""Workflow: the principal's batches run as batch jobs (``batches``/``batch_items``), so the web process's own
``signing_batches`` table goes; and a registered signer (own key) may belong to a staff person, so the approval
workflow sends that person's signing step to their USB token or remote signing service.

Revision ID: 0010_workflow
Revises: 0005_accounts
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_workflow"
down_revision: str | None = "0011_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registered_signers") as batch:
        batch.add_column(sa.Column("person_id", sa.Integer(), nullable=True))
        batch.create_index("ix_registered_signers_person_id", ["person_id"])
        batch.create_foreign_key("fk_registered_signers_person_id", "people", ["person_id"], ["id"])
    op.drop_index("ix_signing_batches_school_code", "signing_batches")
    op.drop_table("signing_batches")


def downgrade() -> None:
    op.create_table(
        "signing_batches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("school_code", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("item_ids", sa.JSON(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_signing_batches_school_code", "signing_batches", ["school_code"])
    with op.batch_alter_table("registered_signers") as batch:
        batch.drop_constraint("fk_registered_signers_person_id", type_="foreignkey")
        batch.drop_index("ix_registered_signers_person_id")
        batch.drop_column("person_id")
