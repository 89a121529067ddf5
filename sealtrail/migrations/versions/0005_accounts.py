"""People and workflow: organisations, people, memberships, sessions, one-time codes, audit events, share links,
work items with their transitions, and signing batches. Only new tables: existing data is untouched.

Revision ID: 0005_accounts
Revises: 0006_deferred
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_accounts"
down_revision = "0006_deferred"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("parent_id", sa.Integer(), sa.ForeignKey("organisations.id"), nullable=True),
        _when("created_at"),
    )
    op.create_index("ix_organisations_code", "organisations", ["code"], unique=True)
    op.create_table(
        "people",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("full_name", sa.String(255), nullable=False),
        sa.Column("personal_id", sa.String(12), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("totp_secret", sa.String(64), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        _when("locked_until", nullable=True),
        _when("created_at"),
    )
    op.create_index("ix_people_username", "people", ["username"], unique=True)
    op.create_index("ix_people_personal_id", "people", ["personal_id"])
    op.create_table(
        "memberships",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("people.id"), nullable=False),
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        _when("created_at"),
        sa.UniqueConstraint("person_id", "org_id", "role"),
    )
    op.create_index("ix_memberships_person_id", "memberships", ["person_id"])
    op.create_index("ix_memberships_org_id", "memberships", ["org_id"])
    op.create_table(
        "login_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("people.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        _when("created_at"),
        _when("last_seen"),
        _when("expires_at"),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_login_sessions_person_id", "login_sessions", ["person_id"])
    op.create_table(
        "one_time_codes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("people.id"), nullable=False),
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("people.id"), nullable=True),
        _when("expires_at"),
        _when("used_at", nullable=True),
    )
    op.create_index("ix_one_time_codes_person_id", "one_time_codes", ["person_id"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        _when("at"),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("org_code", sa.String(32), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("leaf_index", sa.Integer(), nullable=True),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_org_code", "audit_events", ["org_code"])
    op.create_table(
        "share_links",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("people.id"), nullable=False),
        sa.Column("doc_id", sa.String(64), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("label", sa.String(120), nullable=False),
        _when("created_at"),
        _when("expires_at"),
        _when("revoked_at", nullable=True),
    )
    op.create_index("ix_share_links_person_id", "share_links", ["person_id"])
    op.create_table(
        "work_items",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("school_code", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("class_name", sa.String(32), nullable=False),
        sa.Column("school_year", sa.String(16), nullable=False),
        sa.Column("holder_name", sa.String(255), nullable=False),
        sa.Column("holder_personal_id", sa.String(12), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("previous_data", sa.JSON(), nullable=True),
        sa.Column("doc_id", sa.String(64), nullable=True),
        sa.Column("supersedes", sa.String(64), nullable=True),
        sa.Column("last_error", sa.String(1000), nullable=True),
        sa.Column("created_by", sa.String(128), nullable=False),
        _when("updated_at"),
    )
    for column in ("school_code", "class_name", "school_year", "holder_personal_id", "doc_id"):
        op.create_index(f"ix_work_items_{column}", "work_items", [column])
    op.create_table(
        "work_transitions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.String(32), sa.ForeignKey("work_items.id"), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=False),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        _when("at"),
        sa.Column("note", sa.String(1000), nullable=False),
    )
    op.create_index("ix_work_transitions_item_id", "work_transitions", ["item_id"])
    op.create_table(
        "signing_batches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("school_code", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("item_ids", sa.JSON(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _when("created_at"),
        _when("finished_at", nullable=True),
    )
    op.create_index("ix_signing_batches_school_code", "signing_batches", ["school_code"])


def downgrade() -> None:
    for table in (
        "signing_batches",
        "work_transitions",
        "work_items",
        "share_links",
        "audit_events",
        "one_time_codes",
        "login_sessions",
        "memberships",
        "people",
        "organisations",
    ):
        op.drop_table(table)
