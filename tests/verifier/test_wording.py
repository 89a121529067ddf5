"""How verdicts are said: one primary reason first; an altered file is "not the file that was issued" (never
"the signatures are correct but the document is not in this register"); a genuine document from elsewhere is "not
in this register"; no library exception names; ETSI-style indications in the JSON for machines."""

from __future__ import annotations

import re
from datetime import date

import pytest
from fastapi.testclient import TestClient

from registry.records import DocumentRecord, DocumentStatus
from sealtrail.deployment import Deployment
from sealtrail.web.app import create_app
from signer.issue import IssuedDocument
from tests.verifier.conftest import set_status
from tests.verifier.hostile_pdf import many_revisions
from verifier.checking import check_upload
from verifier.pdf import PdfReport, Reason
from verifier.status import apply_standing
from verifier.wording import etsi, primary_first

Installed = tuple[Deployment, list[IssuedDocument]]
SAYS_SIGNATURES_CORRECT = re.compile(r"chữ ký số đúng|signatures are correct", re.I)
EXCEPTION_NAME = re.compile(r"\b\w*(Error|Exception)\b|Traceback")


def _record(status: DocumentStatus) -> DocumentRecord:
    return DocumentRecord(
        id="VB-2025-000000000001", token="t" * 22, kind="diploma", school_code="01", school_name="THPT",
        holder_masked="N*** V** A*", issue_date=date(2025, 6, 30), status=status.value,
    )  # fmt: skip


def test_an_altered_xml_is_not_the_file_issued(setup: Installed) -> None:
    """Bytes outside what the signatures cover changed: each signature still checks out, but the register holds
    this document's number with another file, so this file is not what was issued: invalid, said first."""
    dep, docs = setup
    altered = docs[0].xml + b"<!-- copy -->\n"
    report = check_upload(dep, altered).report
    assert report.verdict == "invalid"
    assert report.reasons[0].code == "NOT_AS_ISSUED" and docs[0].doc_id in report.reasons[0].vi
    assert "không phải là tệp đã được cấp" in report.reasons[0].vi and "not the one that was issued" in (
        report.reasons[0].en
    )
    assert "NOT_IN_REGISTER" not in {r.code for r in report.reasons}
    assert not any(SAYS_SIGNATURES_CORRECT.search(r.vi + r.en) for r in report.reasons)
    body = report.to_json()
    assert body["etsi"] == {
        "indication": "TOTAL_FAILED",
        "sub_indication": "HASH_FAILURE",
        "reason_code": "NOT_AS_ISSUED",
    }

    # The upload page says so first and never calls the signatures "valid" for this file.
    page = TestClient(create_app(dep.settings)).post("/kiem-tra", files={"file": ("vb.xml", altered)}).text
    assert "KHÔNG HỢP LỆ" in page and page.index("không phải là tệp đã được cấp") < page.index("Chữ ký số")
    assert "riêng chữ ký không làm văn bản hợp lệ" in page
    assert ": hợp lệ" not in page and not SAYS_SIGNATURES_CORRECT.search(page)


def test_an_altered_pdf_is_invalid_with_its_primary_reason_first(setup: Installed) -> None:
    dep, docs = setup
    altered = many_revisions(docs[0].pdf, 2)  # two updates after the seal
    client = TestClient(create_app(dep.settings))
    body = client.post("/api/v1/verify", files={"file": ("vb.pdf", altered)}).json()
    assert body["verdict"] == "invalid" and body["etsi"]["indication"] == "TOTAL_FAILED"
    assert body["reasons"][0]["code"] not in ("NOT_IN_REGISTER", "TRY_LATER", "LOG_UNAVAILABLE")
    assert "NOT_IN_REGISTER" not in {r["code"] for r in body["reasons"]}
    assert not any(SAYS_SIGNATURES_CORRECT.search(r["vi"] + r["en"]) for r in body["reasons"])


def test_the_register_tells_an_altered_file_from_a_document_issued_elsewhere() -> None:
    def signed_ok() -> PdfReport:
        return PdfReport("valid", [], [])

    elsewhere = apply_standing(signed_ok(), None, None, None, [])
    assert elsewhere.verdict == "indeterminate" and [r.code for r in elsewhere.reasons] == ["NOT_IN_REGISTER"]
    assert "không có trong sổ đăng ký của đơn vị này" in elsewhere.reasons[0].vi
    assert not SAYS_SIGNATURES_CORRECT.search(elsewhere.reasons[0].vi + elsewhere.reasons[0].en)
    for status in (DocumentStatus.ISSUED, DocumentStatus.REVOKED, DocumentStatus.SUPERSEDED):
        altered = apply_standing(signed_ok(), None, None, None, [_record(status)])
        assert altered.verdict == "invalid" and altered.reasons[0].code == "NOT_AS_ISSUED", status
    pending = apply_standing(signed_ok(), None, None, None, [_record(DocumentStatus.PENDING)])
    assert pending.verdict == "indeterminate" and [r.code for r in pending.reasons] == ["NOT_IN_REGISTER"]


@pytest.mark.parametrize(
    "junk",
    [
        b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF",
        b"%PDF-1.7\nxref\n0 2\nzzzz\ntrailer << /Size 2 /Root 9 0 R >>\nstartxref\n9\n%%EOF",
        b"%PDF-1.4\n" + b"(" * 5000 + b"\n%%EOF",
    ],
)
def test_unreadable_files_get_plain_words_without_library_names(setup: Installed, junk: bytes) -> None:
    dep, _docs = setup
    body = TestClient(create_app(dep.settings)).post("/api/v1/verify", files={"file": ("x.pdf", junk)}).json()
    assert body["verdict"] in ("invalid", "indeterminate")
    for reason in body["reasons"]:
        assert not EXCEPTION_NAME.search(reason["vi"]) and not EXCEPTION_NAME.search(reason["en"]), reason
    assert body["reasons"][0]["code"] in ("FORMAT_FAILURE", "GENERIC", "TOO_COMPLEX")


def test_the_primary_reason_is_the_one_that_decides() -> None:
    later = Reason("TRY_LATER", "chưa có dữ liệu thu hồi", "no revocation data")
    hash_failure = Reason("HASH_FAILURE", "đã bị sửa", "changed after signing")
    revoked = Reason("DOCUMENT_REVOKED", "đã thu hồi", "revoked")
    translation = Reason("TRANSLATION_OF", "bản dịch", "translation")
    assert primary_first([later, revoked, hash_failure], "invalid") == [hash_failure, revoked, later]
    assert primary_first([translation, later], "indeterminate") == [later, translation]
    assert primary_first([later, later], "indeterminate") == [later]
    assert etsi("invalid", [later, revoked]) == {
        "indication": "TOTAL_FAILED", "sub_indication": "REVOKED", "reason_code": "DOCUMENT_REVOKED",
    }  # fmt: skip
    assert etsi("valid", [translation]) == {"indication": "TOTAL_PASSED", "sub_indication": None, "reason_code": None}
    assert etsi("indeterminate", [Reason("OUT_OF_BOUNDS_NO_POE", "", "")])["sub_indication"] == "OUT_OF_BOUNDS_NO_POE"
    policy = Reason("SIGNER_POLICY_FAILURE", "thiếu chữ ký của hiệu trưởng", "the principal's signature is missing")
    assert primary_first([later, policy], "invalid")[0] == policy
    assert etsi("invalid", [later, policy])["sub_indication"] == "SIG_CONSTRAINTS_FAILURE"
    # A code added elsewhere (a structure finding, say) still gets an ETSI sub-indication of the right class.
    assert etsi("invalid", [Reason("AMBIGUOUS_STRUCTURE", "", "")])["sub_indication"] == "FORMAT_FAILURE"
    assert etsi("indeterminate", [Reason("SOMETHING_NEW", "", "")])["sub_indication"] == "GENERIC"


def test_the_json_carries_etsi_indications_for_machines(setup: Installed) -> None:
    dep, docs = setup
    set_status(dep, docs[1].doc_id, DocumentStatus.REVOKED, status_reason="Cấp sai thông tin")
    client = TestClient(create_app(dep.settings))

    def verify(data: bytes) -> dict[str, object]:
        response = client.post("/api/v1/verify", files={"file": ("f", data)})
        assert response.status_code == 200
        return response.json()  # type: ignore[no-any-return]

    valid = verify(docs[0].pdf)
    assert valid["verdict"] == "valid" and valid["etsi"]["indication"] == "TOTAL_PASSED"  # type: ignore[index]
    assert all(s["etsi"]["indication"] == "TOTAL_PASSED" for s in valid["signatures"])  # type: ignore[attr-defined]

    revoked = verify(docs[1].pdf)
    assert revoked["etsi"] == {
        "indication": "TOTAL_FAILED",
        "sub_indication": "REVOKED",
        "reason_code": "DOCUMENT_REVOKED",
    }

    tampered = bytearray(docs[0].pdf)
    at = tampered.index(b"/Type /Page") + 1
    tampered[at : at + 4] = b"Tipe"
    failed = verify(bytes(tampered))
    assert failed["verdict"] == "invalid" and failed["etsi"]["indication"] == "TOTAL_FAILED"  # type: ignore[index]
    assert failed["reasons"][0]["code"] in ("HASH_FAILURE", "FORMAT_FAILURE")  # type: ignore[index]
    assert failed["etsi"]["sub_indication"] == failed["reasons"][0]["code"]  # type: ignore[index]
