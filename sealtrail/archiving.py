"""The archive job: keep every issued PDF verifiable for decades by extending it to PAdES B-LTA in time.

For each issued document whose newest version has no document timestamp yet, or whose newest document
timestamp's TSA certificate expires within ``within_days``, the job adds fresh validation data and a document
timestamp (``signer.archive.extend_to_lta``). The new version is stored beside the old one (content-addressed,
nothing overwritten), then, in one database transaction, an ``archive`` entry naming the issue entry is appended
to the public log and the registry points at the new version. The issued PDF a student downloaded keeps its own
hash and stays valid; one failing document is reported and does not stop the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlmodel import Session, select

from ledger.entry import Entry
from ledger.registry import DocumentRecord, DocumentStatus
from sealtrail.deployment import Deployment
from signer.archive import extend_to_lta, needs_renewal
from signer.pdf import SigningError
from signer.storage import BlobStore


@dataclass
class ArchiveReport:
    renewed: list[str] = field(default_factory=list)
    not_due: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def renew_archives(dep: Deployment, *, within_days: int = 365, now: datetime | None = None) -> ArchiveReport:
    from sealtrail.ledgerwiring import ledger_for

    ledger, _ = ledger_for(dep)
    blobs = BlobStore(dep.settings.documents_dir)
    report = ArchiveReport()
    with Session(dep.engine) as session:
        records = session.exec(select(DocumentRecord).where(DocumentRecord.status == DocumentStatus.ISSUED.value)).all()
        for record in records:
            session.expunge(record)
    for record in records:
        current = record.archived_sha256_pdf or record.sha256_pdf
        if current is None or record.leaf_index is None:
            continue
        try:
            pdf = blobs.get(current, "pdf")
        except OSError as exc:
            report.failed.append((record.id, f"the stored PDF cannot be read ({exc})"))
            continue
        try:
            if not needs_renewal(pdf, within_days=within_days, now=now):
                report.not_due.append(record.id)
                continue
            extended = extend_to_lta(
                pdf, timestamp_urls=dep.timestamp_urls, trust_roots=dep.trust_roots, other_certs=dep.intermediates
            )
        except (SigningError, ValueError) as exc:
            report.failed.append((record.id, str(exc)))
            continue
        digest = blobs.put(extended, "pdf")
        when = datetime.now(UTC)
        entry = Entry(
            type="archive",
            doc_id=record.id,
            pdf_sha256=digest,
            xml_sha256="",
            signer_cert_sha256="",
            time=when,
            refers=record.leaf_index,
        )
        with dep.engine.begin() as conn:
            ledger.append(conn, [entry])
            conn.execute(
                DocumentRecord.__table__.update()  # type: ignore[attr-defined]
                .where(DocumentRecord.__table__.c.id == record.id)  # type: ignore[attr-defined]
                .values(archived_sha256_pdf=digest, archived_at=when)
            )
        report.renewed.append(record.id)
    return report
