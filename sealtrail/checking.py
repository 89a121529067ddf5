"""Checking an uploaded file the way every public surface does (API, upload page, bulk, tests): the signatures
(PDF or XML, told apart by content), then the register and the public log, fail-closed on both.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from ledger.registry import DocumentRecord
from sealtrail.deployment import Deployment
from verifier.status import apply_standing
from verifier.xml import looks_like_xml


@dataclass
class UploadCheck:
    report: Any  # PdfReport or XmlReport, with the register's standing applied
    format: str  # "pdf" or "xml"
    record: DocumentRecord | None


def find_record(dep: Deployment, data: bytes, fmt: str) -> DocumentRecord | None:
    """The register's row for this exact file: the issued PDF or XML, or the newest archived PDF version."""
    digest = hashlib.sha256(data).hexdigest()
    table = DocumentRecord.__table__.c  # type: ignore[attr-defined]
    if fmt == "xml":
        where = table.sha256_xml == digest
    else:
        where = (table.sha256_pdf == digest) | (table.archived_sha256_pdf == digest)
    with Session(dep.engine) as session:
        record = session.exec(select(DocumentRecord).where(where)).first()
        if record is not None:
            session.expunge(record)
    return record


def prove(dep: Deployment, record: DocumentRecord) -> bool | None:
    """The record's log entry proven against the latest checkpoint; None when the log cannot be read now."""
    from sealtrail.ledgerwiring import prove_record

    if record.leaf_index is None:
        return None
    try:
        return prove_record(dep, record)
    except Exception:  # the log cannot be read now: "cannot be confirmed", never "valid"
        return None


def check_upload(dep: Deployment, data: bytes, *, at: datetime | None = None) -> UploadCheck:
    """Signatures, then the registry and the log. ``at`` checks the signatures as of another moment (default now)."""
    fmt = "xml" if looks_like_xml(data) else "pdf"
    report = dep.xml_verifier.verify(data) if fmt == "xml" else dep.pdf_verifier.verify(data, at=at)
    record = find_record(dep, data, fmt)
    proven = prove(dep, record) if record is not None else None
    return UploadCheck(apply_standing(report, record, proven), fmt, record)
