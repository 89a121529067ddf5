"""The public registry of documents: one row per issued document, what its QR token resolves to.

It holds no personal data beyond what a public verification page may show (a masked name), and the hashes
and ledger positions that tie each document to its log entries.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, DateTime, UniqueConstraint
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class DocumentStatus(StrEnum):
    PENDING = "pending"
    ISSUED = "issued"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"


class DocumentRecord(SQLModel, table=True):
    """An issued (or pending) document as the verifier sees it."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("status_list", "status_index", name="uq_documents_status_position"),)

    id: str = Field(primary_key=True, max_length=64)
    token: str = Field(index=True, unique=True, max_length=64)
    kind: str = Field(max_length=16)
    school_code: str = Field(index=True, max_length=32)
    school_name: str = Field(max_length=255)
    holder_masked: str = Field(max_length=255)
    issue_date: date
    status: str = Field(default=DocumentStatus.PENDING.value, max_length=16)
    status_reason: str | None = Field(default=None, max_length=500)
    status_changed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    superseded_by: str | None = Field(default=None, max_length=64)
    sha256_pdf: str | None = Field(default=None, max_length=64)
    sha256_xml: str | None = Field(default=None, max_length=64)
    leaf_index: int | None = None
    signers: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    issued_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # The newest B-LTA version of the PDF (the issued one, sha256_pdf, stays valid and findable).
    archived_sha256_pdf: str | None = Field(default=None, max_length=64)
    archived_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # Its position in the W3C Bitstring Status List of its school and school year (random, unique in the list).
    status_list: str | None = Field(default=None, max_length=64)
    status_index: int | None = None
    # Keyed hashes (HMAC-SHA256, installation secret) for bulk look-ups; no personal data in clear (verifier.lookup).
    lookup_number: str | None = Field(default=None, index=True, max_length=64)
    lookup_holder: str | None = Field(default=None, max_length=64)
    # A signed English translation names the document it renders; its standing follows that original's.
    translation_of: str | None = Field(default=None, index=True, max_length=64)


def original_of(engine: Engine, record: DocumentRecord) -> DocumentRecord | None:
    """The original a translation renders (None for other documents, or when the original is not registered)."""
    if not record.translation_of:
        return None
    with Session(engine) as session:
        original = session.get(DocumentRecord, record.translation_of)
        if original is not None:
            session.expunge(original)
    return original
