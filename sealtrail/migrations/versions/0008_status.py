"""Bitstring Status List positions: each document's list (school and school year) and its random index there.

Existing rows get a random, unique index in their list (backfill), so every issued document can be looked up
in its school's signed status list.

Revision ID: 0008_status
Revises: 0007_jobs
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0008_status"
down_revision = "0007_jobs"
branch_labels = None
depends_on = None

LIST_SIZE = 131_072  # keep in step with schemas.statuslist.LIST_SIZE (a migration must not import app code)


def _school_year(day: object) -> str:
    year, month = day.year, day.month  # type: ignore[attr-defined]
    return f"{year}-{year + 1}" if month >= 9 else f"{year - 1}-{year}"


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("status_list", sa.String(64), nullable=True))
        batch.add_column(sa.Column("status_index", sa.Integer(), nullable=True))
        batch.create_unique_constraint("uq_documents_status_position", ["status_list", "status_index"])
    conn = op.get_bind()
    documents = sa.table(
        "documents",
        sa.column("id", sa.String),
        sa.column("school_code", sa.String),
        sa.column("issue_date", sa.Date),
        sa.column("status_list", sa.String),
        sa.column("status_index", sa.Integer),
    )
    rows = conn.execute(sa.select(documents.c.id, documents.c.school_code, documents.c.issue_date)).all()
    used: dict[str, set[int]] = {}
    for doc_id, school, issued in rows:
        name = f"{school}/{_school_year(issued)}"
        taken = used.setdefault(name, set())
        index = secrets.randbelow(LIST_SIZE)
        while index in taken:
            index = secrets.randbelow(LIST_SIZE)
        taken.add(index)
        conn.execute(documents.update().where(documents.c.id == doc_id).values(status_list=name, status_index=index))


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_constraint("uq_documents_status_position", type_="unique")
        batch.drop_column("status_index")
        batch.drop_column("status_list")
