"""A document's lifecycle in the register and the log, always together: publish (pending → issued), supersede
(issued → superseded) and revoke (issued → revoked) each append their log entry and flip the document's status
in ONE transaction, and the flip is conditional on the status it starts from. So the register and the log never
disagree, and a repeated or concurrent change finds the row already changed, raises StatusChanged, and its log
entry rolls back with the transaction (nothing is logged twice)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from errors import PermanentError
from ledger.entry import Entry
from ledger.store import Ledger
from registry.records import DocumentRecord, DocumentStatus


class StatusChanged(PermanentError, RuntimeError):
    """The document was no longer in the status this change starts from (changed by another run meanwhile):
    permanent, the same change would find the same."""

    def __init__(self, doc_id: str, expected: DocumentStatus) -> None:
        super().__init__(
            f"Văn bản {doc_id} không còn ở trạng thái {expected.value}", f"{doc_id} is no longer {expected.value}"
        )
        self.doc_id = doc_id
        self.expected = expected


def change(
    engine: Engine,
    ledger: Ledger,
    entry: Entry,
    doc_id: str,
    source: DocumentStatus,
    values: dict[str, Any],
    *,
    leaf_column: str | None = None,
) -> int:
    """Append ``entry`` and set ``values`` (and the new leaf's index in ``leaf_column``) on document ``doc_id`` if
    its status is still ``source``, in one transaction; returns the entry's leaf index. Raises StatusChanged (and
    logs nothing) otherwise."""
    table = DocumentRecord.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        (leaf_index,) = ledger.append(conn, [entry])  # holds the log's lock until commit
        if leaf_column is not None:
            values = {**values, leaf_column: leaf_index}
        changed = conn.execute(
            table.update().where(table.c.id == doc_id, table.c.status == source.value).values(**values)
        ).rowcount
        if changed != 1:  # changed meanwhile: this entry rolls back with the transaction
            raise StatusChanged(doc_id, source)
    return int(leaf_index)


def publish(engine: Engine, ledger: Ledger, entry: Entry, *, signers: list[dict[str, str]], at: datetime) -> int:
    """Pending → issued, with the entry's hashes, the signers' names and the leaf it was logged at."""
    values = {
        "status": DocumentStatus.ISSUED.value,
        "sha256_pdf": entry.pdf_sha256,
        "sha256_xml": entry.xml_sha256,
        "signers": signers,
        "issued_at": at,
    }
    return change(engine, ledger, entry, entry.doc_id, DocumentStatus.PENDING, values, leaf_column="leaf_index")


def supersede(engine: Engine, ledger: Ledger, entry: Entry, old_id: str, new_id: str) -> int:
    """Issued → superseded by ``new_id``; ``entry`` is the ``supersede`` entry naming the old issue entry."""
    return change(
        engine,
        ledger,
        entry,
        old_id,
        DocumentStatus.ISSUED,
        {
            "status": DocumentStatus.SUPERSEDED.value,
            "superseded_by": new_id,
            "status_changed_at": entry.time,
            "status_reason": f"Đính chính bằng {new_id}",
        },
    )


def revoke(engine: Engine, ledger: Ledger, entry: Entry, doc_id: str, reason: str) -> int:
    """Issued → revoked with its reason; ``entry`` is the ``revoke`` entry naming the issue entry."""
    return change(
        engine,
        ledger,
        entry,
        doc_id,
        DocumentStatus.ISSUED,
        {"status": DocumentStatus.REVOKED.value, "status_reason": reason[:500], "status_changed_at": entry.time},
    )
