"""A document's standing as the public sees it: its registry status combined with proof of its log entry.

Fail-closed: a document is "valid" only when it is issued AND its ledger entry was proven against a signed
checkpoint; when the log cannot be checked the answer is "indeterminate", never "valid".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry.records import DocumentRecord, DocumentStatus
from verifier.pdf import Reason, Verdict

KINDS = {
    "transcript": ("Học bạ số", "Digital school record (transcript)"),
    "diploma": ("Văn bằng", "Diploma"),
    "copy": ("Bản sao điện tử", "Certified electronic copy"),
    "translation": ("Bản dịch tiếng Anh", "Signed English translation"),
}
STATUS_TEXT = {
    DocumentStatus.ISSUED: ("còn hiệu lực", "in force"),
    DocumentStatus.REVOKED: ("đã bị thu hồi", "revoked"),
    DocumentStatus.SUPERSEDED: ("đã được thay thế", "superseded"),
    DocumentStatus.PENDING: ("chưa cấp xong", "not issued yet"),
}
VERDICT_TEXT = {
    "valid": ("HỢP LỆ", "Valid"),
    "invalid": ("KHÔNG HỢP LỆ", "Not valid"),
    "indeterminate": ("CHƯA XÁC ĐỊNH ĐƯỢC", "Cannot be confirmed right now"),
}


@dataclass(frozen=True)
class DocumentStanding:
    verdict: Verdict
    reasons: tuple[Reason, ...]


def document_standing(
    record: DocumentRecord, ledger_proven: bool | None, original: DocumentRecord | None = None
) -> DocumentStanding:
    """The document's own standing; a translation's (``record.translation_of`` set) also follows its ``original``:
    valid only while the original is in force, and never valid when the original cannot be found."""
    own = _own_standing(record, ledger_proven)
    if not record.translation_of:
        return own
    follows = translation_standing(record.translation_of, original)
    verdict = own.verdict
    if "invalid" in (own.verdict, follows.verdict):
        verdict = "invalid"
    elif "indeterminate" in (own.verdict, follows.verdict):
        verdict = "indeterminate"
    return DocumentStanding(verdict, (*follows.reasons, *own.reasons))


def translation_standing(original_id: str, original: DocumentRecord | None) -> DocumentStanding:
    """What a translation's original lends it: a line naming the original and its status, and the verdict that
    status allows (revoked or superseded original: not valid; unknown or pending: cannot be confirmed)."""
    if original is None or original.id != original_id:
        return DocumentStanding(
            "indeterminate",
            (
                Reason(
                    "ORIGINAL_UNKNOWN",
                    f"Bản dịch của văn bản {original_id}, nhưng không tìm thấy bản gốc trong sổ đăng ký",
                    f"Translation of document {original_id}, but the original is not in the register",
                ),
            ),
        )
    status = DocumentStatus(original.status)
    vi, en = STATUS_TEXT[status]
    code = {DocumentStatus.REVOKED: "ORIGINAL_REVOKED", DocumentStatus.SUPERSEDED: "ORIGINAL_SUPERSEDED"}
    line = Reason(
        code.get(status, "TRANSLATION_OF"),
        f"Bản dịch tiếng Anh của văn bản {original_id}; bản gốc tiếng Việt {vi} (bản gốc có giá trị pháp lý)",
        f"English translation of document {original_id}; the Vietnamese original is {en} (the original prevails)",
    )
    verdict: Verdict = {
        DocumentStatus.ISSUED: "valid",
        DocumentStatus.REVOKED: "invalid",
        DocumentStatus.SUPERSEDED: "invalid",
        DocumentStatus.PENDING: "indeterminate",
    }[status]  # type: ignore[assignment]
    return DocumentStanding(verdict, (line,))


def _own_standing(record: DocumentRecord, ledger_proven: bool | None) -> DocumentStanding:
    status = DocumentStatus(record.status)
    if status is DocumentStatus.REVOKED:
        when = record.status_changed_at.strftime("%d/%m/%Y") if record.status_changed_at else "?"
        why = record.status_reason or ""
        return DocumentStanding(
            "invalid",
            (Reason("DOCUMENT_REVOKED", f"Văn bản đã bị thu hồi ngày {when}. {why}", f"Revoked on {when}. {why}"),),
        )
    if status is DocumentStatus.SUPERSEDED:
        by = record.superseded_by or "?"
        return DocumentStanding(
            "invalid",
            (
                Reason(
                    "DOCUMENT_SUPERSEDED",
                    f"Văn bản đã được thay thế bằng văn bản {by}",
                    f"Superseded by document {by}",
                ),
            ),
        )
    if status is DocumentStatus.PENDING:
        return DocumentStanding(
            "indeterminate",
            (Reason("NOT_YET_ISSUED", "Văn bản chưa được ký và cấp xong", "The document has not been issued yet"),),
        )
    if not ledger_proven:
        return DocumentStanding(
            "indeterminate",
            (
                Reason(
                    "LOG_UNAVAILABLE",
                    "Chưa kiểm chứng được mục ghi trong sổ cái công khai; hãy thử lại sau",
                    "The public log entry could not be proven right now; try again later",
                ),
            ),
        )
    return DocumentStanding("valid", ())


NOT_REGISTERED = Reason(
    "NOT_IN_REGISTER",
    "Văn bản không có trong sổ đăng ký của đơn vị này (có thể do nơi khác cấp); chưa xác định được tình trạng",
    "The document is not in this service's register (it may have been issued elsewhere); its status is unknown",
)


def not_as_issued(issued: DocumentRecord) -> Reason:
    """The register holds a document under the number this file's data claims, but not this file."""
    return Reason(
        "NOT_AS_ISSUED",
        f"Tệp này không phải là tệp đã được cấp: sổ đăng ký có văn bản {issued.id} mang số hiệu này nhưng với nội "
        "dung khác (tệp đã bị thay đổi sau khi cấp); hãy lấy bản gốc từ nơi cấp",
        f"This file is not the one that was issued: the register holds document {issued.id} under this number with "
        "different content (the file was changed after it was issued); get the original from the issuer",
    )


def apply_standing(
    report: Any,
    record: DocumentRecord | None,
    ledger_proven: bool | None,
    original: DocumentRecord | None = None,
    claimed: list[DocumentRecord] | None = None,
) -> Any:
    """Combine a file's signature check with the registry: a revoked, superseded, unlogged or unknown document
    is never "valid", however good its signatures (fail-closed). ``report`` is a PDF or XML report.

    ``claimed`` are the register's documents under the number (and issuer) the file's signed data claims, for a
    file that is not itself in the register: when one of them was issued, this file is not what was issued
    (invalid); a genuine document from another installation has none (not in this register: indeterminate)."""
    if report.verdict == "invalid":
        return report
    if record is None:
        issued = [r for r in claimed or [] if DocumentStatus(r.status) is not DocumentStatus.PENDING]
        if issued:
            report.verdict = "invalid"
            report.reasons.insert(0, not_as_issued(issued[0]))
            return report
        report.verdict = "indeterminate"
        report.reasons.append(NOT_REGISTERED)
        return report
    return merge_standing(report, document_standing(record, ledger_proven, original))


def merge_standing(report: Any, standing: DocumentStanding) -> Any:
    """The report's verdict lowered to the standing's (never raised), with the standing's reasons added."""
    if standing.verdict == "invalid" or (standing.verdict == "indeterminate" and report.verdict == "valid"):
        report.verdict = standing.verdict
    report.reasons.extend(standing.reasons)
    return report
