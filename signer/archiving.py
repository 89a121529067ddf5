"""The archive job: keep every issued PDF verifiable for decades by extending it to PAdES B-LTA in time.

For each issued document whose newest version has no document timestamp yet, or whose newest document
timestamp's TSA certificate expires within ``within_days``, the job adds fresh validation data and a document
timestamp (``signer.archive.extend_to_lta``). The new version is stored beside the old one (content-addressed,
nothing overwritten or deleted), then, in one database transaction, an ``archive`` entry naming the issue entry
is appended to the public log and the registry points at the new version (``archived_sha256_pdf``). The issued
PDF a student downloaded keeps its own hash (``sha256_pdf``) and stays valid: the new version is an incremental
update that leaves its bytes untouched. One failing document is reported and does not stop the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from ledger.entry import Entry
from ledger.store import Ledger, LedgerError
from registry.records import DocumentRecord, DocumentStatus
from signer.archive import extend_to_lta, needs_renewal
from signer.host import Installation
from signer.pdf import SigningError


@dataclass
class ArchiveReport:
    """Document ids by outcome; ``failed`` pairs each id with the reason (English, from the signer)."""

    renewed: list[str] = field(default_factory=list)
    not_due: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


class _Changed(Exception):
    """The record changed while its new version was being made; the transaction is rolled back."""


def renew_archives(dep: Installation, *, within_days: int = 365, now: datetime | None = None) -> ArchiveReport:
    """Extend every issued document that is due (see ``needs_renewal``) to B-LTA and record the new version.

    ``now`` only decides what is due (for tests and dry reasoning); the timestamps themselves are real.
    Raise ``DeploymentError`` (before touching anything) when no timestamp authority or trust list is set up.
    """
    if within_days < 0:
        raise ValueError("within_days cannot be negative")
    timestamp_urls = dep.timestamp_urls
    trust_roots, other_certs = dep.trust_roots, dep.intermediates
    ledger = dep.ledger
    blobs = dep.blobs
    report = ArchiveReport()
    with Session(dep.engine) as session:
        statement = select(DocumentRecord).where(DocumentRecord.status == DocumentStatus.ISSUED.value)
        records = session.exec(statement.order_by(DocumentRecord.leaf_index)).all()  # type: ignore[arg-type]
        for record in records:
            session.expunge(record)
    for record in records:
        current = record.archived_sha256_pdf or record.sha256_pdf
        if current is None or record.leaf_index is None:
            report.failed.append((record.id, "the registry names no stored PDF or log entry for this document"))
            continue
        try:
            pdf = blobs.get(current, "pdf")
        except (OSError, ValueError) as exc:
            report.failed.append((record.id, f"the stored PDF cannot be read ({exc})"))
            continue
        try:
            if not needs_renewal(pdf, within_days=within_days, now=now):
                report.not_due.append(record.id)
                continue
            extended = extend_to_lta(
                pdf, timestamp_urls=timestamp_urls, trust_roots=trust_roots, other_certs=other_certs
            )
        except (SigningError, ValueError) as exc:
            report.failed.append((record.id, str(exc)))
            continue
        try:
            # Stored first, so the registry never names a missing file; if recording fails, the unused new file
            # is harmless, and the old one is never touched either way.
            digest = blobs.put(extended, "pdf")
            _record_new_version(dep, ledger, record, current_archived=record.archived_sha256_pdf, digest=digest)
        except _Changed:
            report.failed.append((record.id, "the document was changed while it was being archived; run again"))
            continue
        except (OSError, SQLAlchemyError, LedgerError) as exc:
            report.failed.append((record.id, f"the new version could not be recorded ({exc}); nothing was changed"))
            continue
        report.renewed.append(record.id)
    return report


def _record_new_version(
    dep: Installation, ledger: Ledger, record: DocumentRecord, *, current_archived: str | None, digest: str
) -> None:
    """Log the archive entry and point the registry at ``digest`` in one transaction, if the record is unchanged."""
    when = datetime.now(UTC)
    assert record.leaf_index is not None
    entry = Entry(
        type="archive",
        doc_id=record.id,
        pdf_sha256=digest,
        xml_sha256="",
        signer_cert_sha256="",
        time=when,
        refers=record.leaf_index,
    )
    table = DocumentRecord.__table__  # type: ignore[attr-defined]
    unchanged = (
        table.c.archived_sha256_pdf.is_(None)
        if current_archived is None
        else (table.c.archived_sha256_pdf == current_archived)
    )
    with dep.engine.begin() as conn:
        ledger.append(conn, [entry])
        result = conn.execute(
            table.update()
            .where(table.c.id == record.id, table.c.status == DocumentStatus.ISSUED.value, unchanged)
            .values(archived_sha256_pdf=digest, archived_at=when)
        )
        if result.rowcount != 1:
            raise _Changed  # rolls back the log entry too
