"""Deferred signing: registered signers (their own keys: USB token or remote service) and pending signing steps.

Revision ID: 0006_deferred
Revises: 0004_lookup
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_deferred"
down_revision = "0004_lookup"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registered_signers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("school_code", sa.String(32), nullable=False, index=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("cert_sha256", sa.String(64), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("credential_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "signing_tasks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("doc_id", sa.String(64), sa.ForeignKey("documents.id"), nullable=False, index=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("signer_id", sa.String(32), sa.ForeignKey("registered_signers.id"), nullable=True, index=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("field_name", sa.String(64), nullable=False),
        sa.Column("lock_document", sa.Boolean(), nullable=False),
        sa.Column("input_pdf_sha256", sa.String(64), nullable=True),
        sa.Column("input_xml_sha256", sa.String(64), nullable=True),
        sa.Column("prepared_pdf_sha256", sa.String(64), nullable=True),
        sa.Column("prepared_xml_sha256", sa.String(64), nullable=True),
        sa.Column("pdf_state", sa.JSON(), nullable=True),
        sa.Column("pdf_to_sign", sa.String(128), nullable=True),
        sa.Column("xml_to_sign", sa.String(128), nullable=True),
        sa.Column("output_pdf_sha256", sa.String(64), nullable=True),
        sa.Column("output_xml_sha256", sa.String(64), nullable=True),
        sa.Column("cert_sha256", sa.String(64), nullable=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("doc_id", "step", name="uq_signing_tasks_doc_step"),
    )


def downgrade() -> None:
    op.drop_table("signing_tasks")
    op.drop_table("registered_signers")
