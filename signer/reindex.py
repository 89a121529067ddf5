"""`sealtrail re-index`: fill the bulk look-up columns (keyed hashes) of documents issued before they existed,
from each document's stored signed XML. Safe to run again: rows are only written when their hashes change."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, select

from registry.lookup import lookup_columns
from registry.records import DocumentRecord
from schemas.xml import from_xml
from signer.host import Installation
from signer.xades import signed_data


@dataclass
class ReindexReport:
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def reindex(dep: Installation) -> ReindexReport:
    key = dep.lookup_key
    blobs = dep.blobs
    report = ReindexReport()
    with Session(dep.engine) as session:
        records = session.exec(select(DocumentRecord).where(DocumentRecord.sha256_xml.is_not(None))).all()  # type: ignore[union-attr]
        for record in records:
            try:
                doc = from_xml(signed_data(blobs.get(str(record.sha256_xml), "xml")))
            except Exception as exc:  # one unreadable document is reported and does not stop the others
                report.failed.append((record.id, f"{exc.__class__.__name__}: {exc}"))
                continue
            columns = lookup_columns(key, doc)
            if all(getattr(record, k) == v for k, v in columns.items()):
                report.unchanged += 1
                continue
            for k, v in columns.items():
                setattr(record, k, v)
            session.add(record)
            report.updated.append(record.id)
        session.commit()
    return report
