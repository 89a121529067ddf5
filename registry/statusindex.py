"""Status-list positions in the registry: a random unique index per document, and each list's current bits.

The bits are computed from the documents' registry status every time they are asked for, so a list can never
disagree with the registry: a document whose status becomes revoked or superseded, by whatever path (for a
translation: its original's), is set in the next list signed (see signer/vc.py, which signs a list on request and
caches it by content).
"""

from __future__ import annotations

import secrets

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from errors import PermanentError
from registry.records import DocumentRecord, DocumentStatus
from schemas.statuslist import LIST_SIZE, bitstring, list_name, school_year

SET_STATUSES = (DocumentStatus.REVOKED.value, DocumentStatus.SUPERSEDED.value)
_ATTEMPTS = 20


class StatusListFullError(PermanentError, RuntimeError):
    """A school's list for a school year has no free index left."""


def _free_index(session: Session, name: str) -> int:
    table = DocumentRecord.__table__  # type: ignore[attr-defined]
    taken = set(session.execute(select(table.c.status_index).where(table.c.status_list == name)).scalars())
    if len(taken) >= LIST_SIZE:
        raise StatusListFullError(
            f"Danh sách trạng thái {name} đã đầy / the status list {name} is full ({LIST_SIZE} documents)"
        )
    while True:
        index = secrets.randbelow(LIST_SIZE)
        if index not in taken:
            return index


def add_with_status_index(engine: Engine, record: DocumentRecord) -> None:
    """Store a new (pending) record with a random free index in its school-year list, retrying on a clash with
    a concurrent issue (the database's unique constraint decides)."""
    name = list_name(record.school_code, school_year(record.issue_date))
    for attempt in range(_ATTEMPTS):
        with Session(engine) as session:
            record.status_list = name
            record.status_index = _free_index(session, name)
            session.add(record)
            try:
                session.commit()
                return
            except IntegrityError:
                session.rollback()
                if attempt == _ATTEMPTS - 1:
                    raise
                session.expunge_all()


def list_names(engine: Engine, school_code: str | None = None) -> list[str]:
    table = DocumentRecord.__table__  # type: ignore[attr-defined]
    query = select(table.c.status_list).where(table.c.status_list.is_not(None)).distinct()
    if school_code is not None:
        query = query.where(table.c.school_code == school_code)
    with engine.connect() as conn:
        return sorted(conn.execute(query).scalars())


def status_bits(engine: Engine, name: str) -> bytes:
    """The list's bitstring as the registry stands now: revoked and superseded documents are set, and so are
    translations whose original is revoked or superseded (a translation's standing follows its original's)."""
    table = DocumentRecord.__table__  # type: ignore[attr-defined]
    original = table.alias("original")
    own = select(table.c.status_index).where(table.c.status_list == name, table.c.status.in_(SET_STATUSES))
    followed = (
        select(table.c.status_index)
        .join(original, original.c.id == table.c.translation_of)
        .where(table.c.status_list == name, original.c.status.in_(SET_STATUSES))
    )
    with engine.connect() as conn:
        indexes = conn.execute(own.union(followed)).scalars()
        return bitstring([i for i in indexes if i is not None])
