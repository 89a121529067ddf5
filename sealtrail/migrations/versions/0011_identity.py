"""Identity: a forced password change after a reset, e-mail for single sign-on matching, links from a provider's
identity to a person, and parents linked to their children by the school. Existing rows are untouched.

Revision ID: 0011_identity
Revises: 0005_accounts
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_identity"
down_revision: str | None = "0009_translation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (SQLite's table rebuild would trip over the foreign keys pointing at people)
    op.add_column("people", sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("people", sa.Column("email", sa.String(255), nullable=True))
    op.create_index("ix_people_email", "people", ["email"])
    op.create_table(
        "sso_identities",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("issuer", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("people.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("issuer", "subject"),
    )
    op.create_index("ix_sso_identities_person_id", "sso_identities", ["person_id"])
    op.create_table(
        "parent_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("parent_id", sa.Integer(), sa.ForeignKey("people.id"), nullable=False),
        sa.Column("student_id", sa.Integer(), sa.ForeignKey("people.id"), nullable=False),
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("parent_id", "student_id", "org_id"),
    )
    op.create_index("ix_parent_links_parent_id", "parent_links", ["parent_id"])


def downgrade() -> None:
    op.drop_table("parent_links")
    op.drop_table("sso_identities")
    op.drop_index("ix_people_email", "people")
    op.drop_column("people", "email")  # SQLite ≥ 3.35 drops a column in place
    op.drop_column("people", "must_change_password")
