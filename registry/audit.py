"""Auditing the register against the log: every issued document has its entry, every entry's hashes match the
register and the stored files, translations and archive entries point at their originals, and the published
checkpoint is consistent with the database (``sealtrail ledger audit``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Engine
from sqlmodel import Session, select

from ledger.entry import Entry
from ledger.store import Ledger
from registry.records import DocumentRecord, DocumentStatus


class StoredFiles(Protocol):
    def get(self, sha256: str, ext: str) -> bytes: ...


def audit(engine: Engine, ledger: Ledger, blobs: StoredFiles, fork_check: Callable[[], None]) -> list[str]:
    """The ledger's own audit plus the registry cross-check: every issued document has its entry, every entry's
    hashes match the stored files, and the published checkpoint is consistent with the database."""
    with engine.connect() as conn:
        report = ledger.audit(conn)
        problems = list(report.problems)
        size = report.size
        entries = {i: Entry.parse(ledger.entry(conn, i)) for i in range(size)}
    try:
        fork_check()
    except Exception as exc:
        problems.append(str(exc))
    documents = ("issue", "copy", "translation")  # a copy and a translation are documents of their own
    by_doc = {e.doc_id: (i, e) for i, e in entries.items() if e.type in documents}
    with Session(engine) as session:
        records = session.exec(select(DocumentRecord)).all()
    leaves = {r.id: r.leaf_index for r in records}
    for record in records:
        if record.status == DocumentStatus.PENDING.value:
            if record.id in by_doc:
                problems.append(f"{record.id} is pending but the log already has its issue entry")
            continue
        found = by_doc.get(record.id)
        if found is None or found[0] != record.leaf_index:
            problems.append(f"{record.id} is {record.status} but has no matching issue entry in the log")
            continue
        entry = found[1]
        if (entry.pdf_sha256, entry.xml_sha256) != (record.sha256_pdf, record.sha256_xml):
            problems.append(f"{record.id}: the registry's hashes differ from its log entry")
        if record.translation_of is not None and entry.refers != leaves.get(record.translation_of):
            problems.append(f"{record.id}: its log entry does not refer to its original's issue entry")
        for digest, ext in ((entry.pdf_sha256, "pdf"), (entry.xml_sha256, "xml")):
            try:
                blobs.get(digest, ext)
            except OSError as exc:
                problems.append(f"{record.id}: stored {ext.upper()} is missing or damaged ({exc})")
    archived: dict[str, Entry] = {}
    for _i, e in sorted(entries.items()):
        if e.type == "archive":
            archived[e.doc_id] = e  # the newest archive entry wins
            issue = by_doc.get(e.doc_id)
            if issue is None or e.refers != issue[0]:
                problems.append(f"archive entry {_i} for {e.doc_id} does not refer to that document's issue entry")
    for record in records:
        newest = archived.get(record.id)
        if (newest.pdf_sha256 if newest else None) != record.archived_sha256_pdf:
            problems.append(f"{record.id}: the registry's archived version differs from the log's newest archive entry")
        elif newest is not None:
            try:
                blobs.get(newest.pdf_sha256, "pdf")
            except OSError as exc:
                problems.append(f"{record.id}: stored archived PDF is missing or damaged ({exc})")
    known = {r.id for r in records}
    problems.extend(f"log entry for unknown document {doc_id}" for doc_id in by_doc if doc_id not in known)
    return problems
