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

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

import schemas
from registry.records import DocumentRecord, DocumentStatus
from schemas.xml import from_xml
from sealtrail.deployment import Deployment
from signer.xades import signed_data

if TYPE_CHECKING:
    from signer.issue import Issuer

SUFFIX = "-EN"
TRANSLATABLE = ("transcript", "diploma")


class TranslationError(Exception):
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


def _get(dep: Deployment, doc_id: str) -> DocumentRecord | None:
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
    dep: Deployment, doc_id: str, *, school_code: str | None = None, issuer: Issuer | None = None
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
        from sealtrail.demo import issuer_for

        issuer = issuer_for(dep)
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


def _existing(dep: Deployment, tid: str) -> Translated | None:
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


def embedded_translation(data: bytes) -> schemas.Translation | None:
    """The translation data a signed PDF (its attached XML) or signed XML carries; None for other documents."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    from verifier.pdf import attachments
    from verifier.xml import looks_like_xml

    try:
        if looks_like_xml(data):
            xml: bytes | None = signed_data(data)
        else:
            found = attachments(PdfFileReader(io.BytesIO(data), strict=False), keep_data=True)
            xml = next((a.get("data") for a in found if a["name"] == "translation.xml"), None)
        doc = from_xml(xml) if xml else None
    except Exception:  # not one of ours, or damaged: the signature check says so
        return None
    return doc if isinstance(doc, schemas.Translation) else None


@dataclass
class _Probe:
    """A report to read the original's offline status into (its verdict starts valid: only the status lowers it)."""

    verdict: str = "valid"
    reasons: list[Any] = field(default_factory=list)


def follow_original_offline(
    report: Any, translation: schemas.Translation, dep: Deployment | None, bundle: Path | None
) -> Any:
    """`sealtrail verify` of a translation: name its original and let the original's status lower the verdict,
    from this installation's register (``dep``) or a trust bundle's signed status lists (``bundle``)."""
    from verifier.pdf import Reason
    from verifier.status import merge_standing, translation_standing

    oid = translation.original_doc_id
    named = Reason("TRANSLATION_OF", f"Bản dịch tiếng Anh của văn bản {oid}", f"English translation of document {oid}")
    if bundle is not None:  # the original's bit in the bundle's signed lists, found by its PDF's SHA-256
        from verifier.credentials import apply_offline_status
        from verifier.status import DocumentStanding

        probe = apply_offline_status(bundle, b"", _Probe(), digest=translation.original_sha256_pdf)
        said = [Reason(r.code, f"Bản gốc {oid}: {r.vi}", f"Original {oid}: {r.en}") for r in probe.reasons]
        return merge_standing(report, DocumentStanding(probe.verdict, (named, *said)))
    if dep is None:  # trusted roots only, no status source: name the original, as the document itself is unchecked
        report.reasons.append(named)
        return report
    return merge_standing(report, translation_standing(oid, _get(dep, oid)))
