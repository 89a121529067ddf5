"""Checking a signed English translation: find the translation data a signed file carries, and let its original's
standing (this installation's register, or a trust bundle's signed status lists) decide the translation's.
Making translations is ``signer.translation``."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

import schemas
from registry.records import DocumentRecord
from schemas.envelope import signed_data
from schemas.xml import from_xml


def _get(engine: Engine, doc_id: str) -> DocumentRecord | None:
    with Session(engine) as session:
        record = session.get(DocumentRecord, doc_id)
        if record is not None:
            session.expunge(record)
    return record


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
    report: Any, translation: schemas.Translation, engine: Engine | None, bundle: Path | None
) -> Any:
    """`sealtrail verify` of a translation: name its original and let the original's status lower the verdict,
    from this installation's register (``engine``) or a trust bundle's signed status lists (``bundle``)."""
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
    if engine is None:  # trusted roots only, no status source: name the original, as the document itself is unchecked
        report.reasons.append(named)
        return report
    return merge_standing(report, translation_standing(oid, _get(engine, oid)))
