"""A document's standing as the public sees it: its registry status combined with proof of its log entry.

Fail-closed: a document is "valid" only when it is issued AND its ledger entry was proven against a signed
checkpoint; when the log cannot be checked the answer is "indeterminate", never "valid".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.registry import DocumentRecord, DocumentStatus
from verifier.pdf import Reason, Verdict

KINDS = {
    "transcript": ("Học bạ số", "Digital school record (transcript)"),
    "diploma": ("Văn bằng", "Diploma"),
    "copy": ("Bản sao điện tử", "Certified electronic copy"),
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


def document_standing(record: DocumentRecord, ledger_proven: bool | None) -> DocumentStanding:
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
    "Chữ ký số đúng nhưng văn bản không có trong sổ đăng ký của đơn vị này; chưa xác định được tình trạng",
    "The signatures are correct but the document is not in this service's register; its status is unknown",
)


def apply_standing(report: Any, record: DocumentRecord | None, ledger_proven: bool | None) -> Any:
    """Combine a file's signature check with the registry: a revoked, superseded, unlogged or unknown document
    is never "valid", however good its signatures (fail-closed). ``report`` is a PDF or XML report."""
    if report.verdict == "invalid":
        return report
    if record is None:
        report.verdict = "indeterminate"
        report.reasons.append(NOT_REGISTERED)
        return report
    standing = document_standing(record, ledger_proven)
    if standing.verdict == "invalid" or (standing.verdict == "indeterminate" and report.verdict == "valid"):
        report.verdict = standing.verdict
    report.reasons.extend(standing.reasons)
    return report
