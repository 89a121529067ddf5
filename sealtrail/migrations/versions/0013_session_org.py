"""Sessions carry the organisation they were opened for (a pupil's sign-in code names its school): a portal session
sees only that organisation's roles.

Revision ID: 0013_session_org
Revises: 0012_gates
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_session_org"
down_revision: str | None = "0012_gates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("login_sessions", sa.Column("org_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("login_sessions", "org_id")
