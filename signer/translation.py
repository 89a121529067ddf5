"""Signed English translations: made from an issued original, sealed by the school, logged with a reference to the
original's issue entry, and valid only while the original is.

Decisions (README "English translations"):
- Only an *issued* transcript or diploma is translated; a pending, revoked or superseded one is refused with a
  message saying why, and so is a copy or a translation.
- A translation's id is the original's id + ``-EN``: translating the same original again returns the translation
  already issued (the same file), and two requests at once end with one translation.
- A corrected original is a new document (the old one is superseded): its translation is a new one too, and the
  old translation then verifies as not valid because its original is superseded. The verifier always looks at
  the original's standing (``original_standing``), so revoking an original needs no second step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlmodel import Session

import schemas
from errors import PermanentError
from registry.records import DocumentRecord, DocumentStatus
from schemas.xml import from_xml
from signer.host import Installation
from signer.xades import signed_data

if TYPE_CHECKING:
    from signer.issue import Issuer

SUFFIX = "-EN"
TRANSLATABLE = ("transcript", "diploma")


class TranslationError(PermanentError):
    """A translation that cannot be made; the message says why and what to do (Vietnamese / English)."""

    status_code = 409


class OriginalNotFound(TranslationError):
    status_code = 404


@dataclass(frozen=True)
class Translated:
    record: DocumentRecord  # the translation's register row
    pdf: bytes
    created: bool  # False: the translation issued earlier for this original


def translation_id(original_id: str) -> str:
    return original_id + SUFFIX


def _get(dep: Installation, doc_id: str) -> DocumentRecord | None:
    with Session(dep.engine) as session:
        record = session.get(DocumentRecord, doc_id)
        if record is not None:
            session.expunge(record)
    return record


def _refuse_unless_issued(record: DocumentRecord) -> None:
    doc_id = record.id
    if record.kind not in TRANSLATABLE:
        raise TranslationError(
            f"Chỉ dịch được học bạ hoặc văn bằng; {doc_id} là {record.kind} — hãy dịch văn bản gốc / "
            f"only transcripts and diplomas are translated; {doc_id} is a {record.kind}: translate its original"
        )
    if record.status == DocumentStatus.PENDING.value:
        raise TranslationError(
            f"Văn bản {doc_id} chưa được ký và cấp xong / {doc_id} is not issued yet: finish signing it first"
        )
    if record.status == DocumentStatus.REVOKED.value:
        raise TranslationError(
            f"Văn bản {doc_id} đã bị thu hồi, không dịch được / {doc_id} was revoked and cannot be translated"
        )
    if record.status == DocumentStatus.SUPERSEDED.value:
        by = record.superseded_by or "?"
        raise TranslationError(
            f"Văn bản {doc_id} đã được thay thế bằng {by}; hãy dịch {by} / "
            f"{doc_id} was superseded by {by}: translate {by} instead"
        )


def translate(
    dep: Installation, doc_id: str, *, school_code: str | None = None, issuer: Issuer | None = None
) -> Translated:
    """The signed English translation of issued document ``doc_id`` (``school_code``: only that school's)."""
    from signer.issue import AlreadyIssued

    record = _get(dep, doc_id)
    if record is None or (school_code is not None and record.school_code != school_code):
        raise OriginalNotFound(f"Không có văn bản {doc_id} / no document {doc_id}")
    _refuse_unless_issued(record)
    assert record.sha256_pdf and record.sha256_xml and record.leaf_index is not None
    tid = translation_id(record.id)
    existing = _existing(dep, tid)
    if existing is not None:
        return existing
    pending = _get(dep, tid)
    if issuer is None:
        issuer = dep.make_issuer()
    original = from_xml(signed_data(dep.blobs.get(record.sha256_xml, "xml")))
    school = original.school if isinstance(original, schemas.Transcript) else original.issuer
    original_qr = issuer._prepare(original, doc_id=record.id, token=record.token)[0].qr_payload
    translation = schemas.Translation(
        original_doc_id=record.id,
        original_kind=record.kind,  # type: ignore[arg-type]
        original_sha256_pdf=record.sha256_pdf,
        original_sha256_xml=record.sha256_xml,
        original_leaf_index=record.leaf_index,
        original_issue_date=record.issue_date,
        original_qr=original_qr,
        holder=original.holder,
        issuer=school,
        issue_date=datetime.now(UTC).date(),
        issue_place=school.province,
        **{record.kind: original},
    )
    try:
        issued = issuer.issue(
            translation, entry_type="translation", doc_id=tid, token=pending.token if pending else None
        )
    except AlreadyIssued:  # another request translated it meanwhile: that one is the translation
        existing = _existing(dep, tid)
        if existing is None:
            raise TranslationError(
                f"Bản dịch {tid} đang được tạo; hãy thử lại sau ít phút / {tid} is being made: try again shortly"
            ) from None
        return existing
    return Translated(issued.record, issued.pdf, True)


def _existing(dep: Installation, tid: str) -> Translated | None:
    """The translation already issued under ``tid``; refuses one that was revoked on its own."""
    record = _get(dep, tid)
    if record is None or record.status == DocumentStatus.PENDING.value:
        return None
    if record.status != DocumentStatus.ISSUED.value:
        raise TranslationError(
            f"Bản dịch {tid} đã bị thu hồi; liên hệ nhà trường / the translation {tid} was revoked: ask the school"
        )
    assert record.sha256_pdf
    return Translated(record, dep.blobs.get(record.sha256_pdf, "pdf"), False)
