"""Checking an uploaded file the way every public surface does (API, upload page, bulk, tests): the signatures
(PDF or XML, told apart by content), then the register and the public log, fail-closed on both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import LargeBinary, bindparam, func
from sqlmodel import Session, select

from registry.records import DocumentRecord, original_of
from verifier.host import Installation
from verifier.isolation import CheckPool, Stopped, Trust, claimed_identity, stopped_report
from verifier.status import apply_standing
from verifier.wording import finish
from verifier.xml import looks_like_xml


@dataclass
class UploadCheck:
    report: Any  # PdfReport or XmlReport, with the register's standing applied
    format: str  # "pdf" or "xml"
    record: DocumentRecord | None
    archive_leaf: int | None = None  # the log's archive entry that names this file, for an older archived version


def find_record(dep: Installation, data: bytes, fmt: str) -> DocumentRecord | None:
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


def find_archived_version(dep: Installation, data: bytes) -> tuple[DocumentRecord, int] | None:
    """An archived (B-LTA) PDF version that is neither the issued nor the newest one, found through the log's
    ``archive`` entries (each names the new version's SHA-256 and the issue entry it extends).

    The entries are canonical JSON, so the database filters on the exact ``"pdf_sha256":"<hex>"`` bytes and each
    hit is parsed and checked before it counts."""
    from ledger.entry import Entry, EntryError
    from ledger.models import entries

    digest = hashlib.sha256(data).hexdigest()
    needle = bindparam("needle", f'"pdf_sha256":"{digest}"'.encode(), type_=LargeBinary)
    with dep.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            contains = func.position(needle.op("IN")(entries.c.data)) > 0
        else:
            contains = func.instr(entries.c.data, needle) > 0
        hits = conn.execute(
            select(entries.c.idx, entries.c.data).where(contains).order_by(entries.c.idx).limit(8)
        ).all()
    table = DocumentRecord.__table__.c  # type: ignore[attr-defined]
    for idx, raw in hits:
        try:
            entry = Entry.parse(bytes(raw))
        except EntryError:
            continue
        if entry.type != "archive" or entry.pdf_sha256 != digest or entry.refers is None:
            continue
        with Session(dep.engine) as session:
            record = session.exec(
                select(DocumentRecord).where(table.id == entry.doc_id, table.leaf_index == entry.refers)
            ).first()
            if record is not None:
                session.expunge(record)
                return record, int(idx)
    return None


def prove_entry(dep: Installation, index: int) -> bool:
    """Entry ``index`` proven included in the log's latest signed checkpoint."""
    from ledger import tlog
    from ledger.note import open_checkpoint

    ledger = dep.ledger
    with dep.engine.connect() as conn:
        note = ledger.latest_checkpoint(conn)
        if note is None:
            return False
        checkpoint = open_checkpoint(note, ledger.verifier, ledger.origin)
        if index >= checkpoint.size:
            return False
        proof = ledger.prove_inclusion(conn, index, checkpoint.size)
        data = ledger.entry(conn, index)
    tlog.verify_inclusion(index, checkpoint.size, tlog.leaf_hash(data), proof, checkpoint.root)
    return True


def prove(dep: Installation, record: DocumentRecord) -> bool | None:
    """The record's log entry proven against the latest checkpoint; None when the log cannot be read now."""
    if record.leaf_index is None:
        return None
    try:
        return dep.prove_record(record)
    except Exception:  # the log cannot be read now: "cannot be confirmed", never "valid"
        return None


def trust_of(dep: Installation) -> Trust:
    """The installation's trust list as the isolated workers receive it."""
    return Trust(tuple(c.dump() for c in dep.trust_roots), tuple(c.dump() for c in dep.intermediates))


def find_claimed(dep: Installation, claimed: tuple[str, str, str] | None) -> list[DocumentRecord]:
    """The register's documents of the kind, number and issuer a file's signed data claims (keyed hash look-up)."""
    if claimed is None:
        return []
    from registry.lookup import number_hash

    kind, number, school = claimed
    table = DocumentRecord.__table__.c  # type: ignore[attr-defined]
    with Session(dep.engine) as session:
        found = session.exec(
            select(DocumentRecord).where(table.lookup_number == number_hash(dep.lookup_key, number))
        ).all()
        for record in found:
            session.expunge(record)
    return [r for r in found if r.kind == kind and (not school or r.school_code == school)]


def check_upload(
    dep: Installation,
    data: bytes,
    *,
    at: datetime | None = None,
    pool: CheckPool | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> UploadCheck:
    """Signatures, then the registry and the log. ``at`` checks the signatures as of another moment (default now).

    With a ``pool`` (every public surface) the signatures are checked in an isolated worker under CPU, memory and
    wall-clock limits; an overrun answers "indeterminate: too complex to check here". ``cancelled()`` (the client
    hung up) stops the worker and raises Stopped("cancelled"). The register is looked up by the file's hash first:
    a file known to be exactly one this service issued skips the page-text comparison (its costliest step)."""
    fmt = "xml" if looks_like_xml(data) else "pdf"
    record = find_record(dep, data, fmt)
    if pool is not None:
        try:
            checked = pool.check(data, trust_of(dep), at=at, compare_pages=record is None, cancelled=cancelled)
        except Stopped as exc:
            if exc.cause == "cancelled":
                raise
            return UploadCheck(finish(stopped_report(fmt, exc)), fmt, record)
        report, claimed = checked.report, checked.claimed
    else:
        if fmt == "xml":
            report = dep.xml_verifier.verify(data)
        else:
            report = dep.pdf_verifier.verify(data, at=at, compare_pages=record is None)
        claimed = claimed_identity(report) if record is None and report.verdict != "invalid" else None
    if report.verdict == "invalid":  # nothing after an invalid verdict: the register cannot make it better
        return UploadCheck(finish(report), fmt, record)
    archive_leaf = None
    # Only a PDF carrying a document timestamp (what archiving adds) can be an archived version: other unknown
    # uploads never cost a search of the log.
    if record is None and fmt == "pdf" and b"/ETSI.RFC3161" in data:
        found = find_archived_version(dep, data)
        if found is not None:
            record, archive_leaf = found
    proven = prove(dep, record) if record is not None else None
    if proven and archive_leaf is not None:
        try:  # fail-closed: the archive entry naming this very file must be in the log too
            proven = prove_entry(dep, archive_leaf)
        except Exception:
            proven = None
    original = original_of(dep.engine, record) if record is not None else None
    others = find_claimed(dep, claimed) if record is None else []
    report = apply_standing(report, record, proven, original, others)
    return UploadCheck(finish(report), fmt, record, archive_leaf)


def apply_register(dep: Installation, data: bytes, report: Any, fmt: str) -> Any:
    """``sealtrail verify`` on an installation: a file this register issued takes the register's status (revoked
    or superseded → invalid, with the reason; pending → not valid); a file it does not know keeps its offline
    verdict (it may come from another installation). The log proof is the public pages' and the bundle's part
    (a document issued a moment ago is in no signed checkpoint yet); a translation's original is followed by
    the CLI itself (signer.translation.follow_original_offline)."""
    from verifier.status import _own_standing, merge_standing

    if report.verdict == "invalid":
        return report
    record = find_record(dep, data, fmt)
    if record is None:
        return report
    return merge_standing(report, _own_standing(record, True))


def register_status_lines(dep: Installation, doc_id: str) -> tuple[bool, list[str]]:
    """``sealtrail verify-qr`` on an installation: (the register says the document stands, lines to print)."""
    from verifier.status import document_standing

    with Session(dep.engine) as session:
        record = session.get(DocumentRecord, doc_id)
        if record is not None:
            session.expunge(record)
    if record is None:
        return False, [
            f"KHÔNG HỢP LỆ / NOT VALID: văn bản {doc_id} không có trong sổ đăng ký này "
            f"/ document {doc_id} is not in this register"
        ]
    standing = document_standing(record, True, original_of(dep.engine, record))  # the log proof: the online page
    if standing.verdict == "valid":
        return True, [f"Trạng thái trong sổ đăng ký / register status: {record.status}"]
    lines = [f"KHÔNG HỢP LỆ / NOT VALID: {r.vi} / {r.en}" for r in standing.reasons]
    return False, lines
