"""The verdict matrix from issue #7, each case a real document checked by the engine every public surface uses
(``verifier.checking.check_upload``), with its verdict and reason code; PDFs are also shown to ``pdfsig``."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import httpx
import pytest
import weasyprint
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import DocumentSecurityStore
from sqlmodel import Session

from hsm_adapters.soft import SoftKeyBackend
from registry.records import DocumentRecord, DocumentStatus
from schemas.qrseal import key_id
from sealtrail.deployment import Deployment
from sealtrail.devpki import PkiServices
from signer.issue import IssuedDocument
from signer.pdf import PadesSigner, SignatureRequest
from tests.conftest import free_port
from tests.verifier.conftest import mark_revoked_and_superseded, set_status
from verifier.checking import check_upload
from verifier.pdf import PdfVerifier
from verifier.qrseal import SealError, check_qr, seal_matches_document

AFTER_TEACHERS_CERT_EXPIRED = datetime.now(UTC) + timedelta(days=3 * 365 + 60)


def _pdfsig(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "checked.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, timeout=60).stdout


def _codes(report: object) -> set[str]:
    return {r.code for r in report.reasons}  # type: ignore[attr-defined]


def _sign(dep: Deployment, role: str, *, timestamp: bool, long_term: bool) -> bytes:
    """A one-page PDF signed by ``role`` of the dev PKI: B-B (no timestamp), B-T, or B-LT."""
    pki = dep.dev_pki
    signer = PadesSigner(
        trust_roots=dep.trust_roots,
        other_certs=dep.intermediates,
        timestamp_urls=[pki.tsa_url] if timestamp else [],
        long_term=long_term,
    )
    pdf = weasyprint.HTML(string="<p>Bằng tốt nghiệp (thử)</p>").write_pdf(pdf_variant="pdf/a-3b")
    backend = SoftKeyBackend.from_pkcs12(pki.p12_path(role))
    return signer.sign(pdf, backend, SignatureRequest("sig_seal", role, "test", lock_document=True))


def _with_live_revocation_data(dep: Deployment, pdf: bytes, role: str) -> bytes:
    """Add to the DSS what the dev PKI's responders say right now: OCSP for the signer, the root CRL."""
    pki = dep.dev_pki
    cert = cx509.load_der_x509_certificate(pki.cert(role).dump())
    issuer = cx509.load_der_x509_certificate(pki.issuing_ca.dump())
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
    answer = httpx.post(
        f"{pki.service_prefix}ocsp/issuing",
        content=request.public_bytes(serialization.Encoding.DER),
        headers={"Content-Type": "application/ocsp-request"},
        timeout=10,
    )
    crl = httpx.get(f"{pki.service_prefix}crls/root/latest.crl", timeout=10).content
    from asn1crypto import crl as acrl
    from asn1crypto import ocsp as aocsp

    reader = PdfFileReader(BytesIO(pdf))
    contents = reader.embedded_regular_signatures[0].pkcs7_content
    out = BytesIO(pdf)
    DocumentSecurityStore.add_dss(
        out,
        contents,
        certs=[pki.issuing_ca],
        ocsps=[aocsp.OCSPResponse.load(answer.content)],
        crls=[acrl.CertificateList.load(crl)],
    )
    return out.getvalue()


def test_good_document_is_valid(setup: tuple[Deployment, list[IssuedDocument]], tmp_path: Path) -> None:
    dep, docs = setup
    checked = check_upload(dep, docs[0].pdf)
    assert checked.report.verdict == "valid" and checked.report.reasons == []
    assert checked.record is not None and checked.record.id == docs[0].doc_id
    text = _pdfsig(docs[0].pdf, tmp_path)
    assert text.count("Signature Validation: Signature is Valid.") == text.count("Signature #") >= 2, text


def test_tampered_content_is_invalid(setup: tuple[Deployment, list[IssuedDocument]], tmp_path: Path) -> None:
    dep, docs = setup
    pdf = docs[0].pdf
    at = pdf.index(b"/MediaBox")  # inside the first revision, covered by every signature
    tampered = pdf[:at] + b"/MediaBoy" + pdf[at + 9 :]
    report = check_upload(dep, tampered).report
    assert report.verdict == "invalid" and "HASH_FAILURE" in _codes(report)
    assert "Digest Mismatch" in _pdfsig(tampered, tmp_path)


def test_removed_signature_is_invalid(setup: tuple[Deployment, list[IssuedDocument]], tmp_path: Path) -> None:
    """The school's seal signature taken off in an update: the earlier signatures see the change."""
    dep, docs = setup
    writer = IncrementalPdfFileWriter(BytesIO(docs[0].pdf))
    for ref in writer.root["/AcroForm"]["/Fields"]:
        field = ref.get_object()
        if field.get("/T") == "sig_seal":
            del field["/V"]
            writer.update_container(field)
    out = BytesIO()
    writer.write(out)
    stripped = out.getvalue()
    report = check_upload(dep, stripped).report
    assert report.verdict == "invalid" and "MODIFIED_AFTER_SIGNING" in _codes(report)
    assert len(report.signatures) == len(docs[0].record.signers) - 1
    text = _pdfsig(stripped, tmp_path)
    assert "sig_seal\n  The signature form field is not signed." in text


def test_page_appended_after_signing_is_invalid(setup: tuple[Deployment, list[IssuedDocument]], tmp_path: Path) -> None:
    dep, docs = setup
    writer = IncrementalPdfFileWriter(BytesIO(docs[0].pdf))
    pages = writer.root["/Pages"]
    page = generic.DictionaryObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/Page"),
            generic.NameObject("/Parent"): writer.root.raw_get("/Pages"),
            generic.NameObject("/MediaBox"): generic.ArrayObject([generic.NumberObject(n) for n in (0, 0, 595, 842)]),
            generic.NameObject("/Contents"): writer.add_object(
                generic.StreamObject(stream_data=b"BT /F1 24 Tf 72 700 Td (Diem Toan: 10) Tj ET")
            ),
        }
    )
    pages["/Kids"].append(writer.add_object(page))
    pages["/Count"] = generic.NumberObject(int(pages["/Count"]) + 1)
    writer.update_container(pages)
    out = BytesIO()
    writer.write(out)
    appended = out.getvalue()
    assert (
        len(PdfFileReader(BytesIO(appended)).root["/Pages"]["/Kids"])
        == len(PdfFileReader(BytesIO(docs[0].pdf)).root["/Pages"]["/Kids"]) + 1
    )
    report = check_upload(dep, appended).report
    assert report.verdict == "invalid" and "MODIFIED_AFTER_SIGNING" in _codes(report)
    text = _pdfsig(appended, tmp_path)
    assert "Not total document signed" in text.rsplit("Signature #", 1)[1]


def test_expired_certificate_with_lt_data_stays_valid(setup: tuple[Deployment, list[IssuedDocument]]) -> None:
    """Checked after the teacher's 3-year certificate expired: the timestamp and OCSP taken at signing prove it."""
    dep, docs = setup
    teacher = dep.dev_pki.cert("homeroom_teacher")["tbs_certificate"]["validity"]["not_after"].native
    assert teacher < AFTER_TEACHERS_CERT_EXPIRED
    checked = check_upload(dep, docs[0].pdf, at=AFTER_TEACHERS_CERT_EXPIRED)
    assert checked.report.verdict == "valid", checked.report.reasons


@pytest.mark.parametrize("days", [1, 120])
def test_stale_embedded_revocation_data_does_not_make_a_b_lt_document_indeterminate(
    setup: tuple[Deployment, list[IssuedDocument]], days: int
) -> None:
    """The dev PKI's OCSP answers are good for 10 minutes and its CRLs for 90 days: a day later, or after the
    CRL's next update, the issued document is still valid from the data embedded at signing time."""
    dep, docs = setup
    checked = check_upload(dep, docs[0].pdf, at=datetime.now(UTC) + timedelta(days=days))
    assert checked.report.verdict == "valid", checked.report.reasons


def test_expired_certificate_without_lt_data_is_indeterminate(
    setup: tuple[Deployment, list[IssuedDocument]], tmp_path: Path
) -> None:
    dep, _docs = setup
    # A certificate that had expired before it signed (no timestamp, no revocation data): pdfsig agrees.
    expired = _sign(dep, "expired_signer", timestamp=False, long_term=False)
    report = check_upload(dep, expired).report
    assert report.verdict == "indeterminate" and "OUT_OF_BOUNDS_NO_POE" in _codes(report)
    assert "Certificate has Expired" in _pdfsig(expired, tmp_path)
    # A signature made now without a timestamp (B-B), checked after the certificate expired: nothing proves when.
    plain = _sign(dep, "homeroom_teacher", timestamp=False, long_term=False)
    later = check_upload(dep, plain, at=AFTER_TEACHERS_CERT_EXPIRED).report
    assert later.verdict == "indeterminate" and "OUT_OF_BOUNDS_NO_POE" in _codes(later)
    today = check_upload(dep, plain).report  # today the installation's own revocation data proves its status
    assert today.signatures[0].indication == "valid" and _codes(today) == {"NOT_IN_REGISTER"}, today.reasons
    bare = PdfVerifier(dep.trust_roots, dep.intermediates).verify(plain)  # the file alone: no revocation data
    assert bare.verdict == "indeterminate" and "TRY_LATER" in _codes(bare)


def test_revoked_certificate_is_invalid(setup: tuple[Deployment, list[IssuedDocument]], tmp_path: Path) -> None:
    dep, _docs = setup
    signed = _sign(dep, "revoked_signer", timestamp=True, long_term=False)
    with_revinfo = _with_live_revocation_data(dep, signed, "revoked_signer")
    report = check_upload(dep, with_revinfo).report
    assert report.verdict == "invalid" and "REVOKED" in _codes(report)
    assert report.signatures[0].revoked
    assert "Signature Validation: Signature is Valid." in _pdfsig(with_revinfo, tmp_path)  # intact, but revoked


def test_revoked_and_superseded_documents_are_invalid(
    setup: tuple[Deployment, list[IssuedDocument]], tmp_path: Path
) -> None:
    dep, docs = setup
    mark_revoked_and_superseded(dep, docs)
    revoked = check_upload(dep, docs[1].pdf).report
    assert revoked.verdict == "invalid" and "DOCUMENT_REVOKED" in _codes(revoked)
    superseded = check_upload(dep, docs[2].pdf).report
    assert superseded.verdict == "invalid" and "DOCUMENT_SUPERSEDED" in _codes(superseded)
    assert any(docs[0].doc_id in r.en for r in superseded.reasons)
    assert "DOCUMENT_SUPERSEDED" in {r.code for r in check_upload(dep, docs[2].xml).report.reasons}
    text = _pdfsig(docs[1].pdf, tmp_path)  # the file alone cannot tell: only the register knows
    assert text.count("Signature Validation: Signature is Valid.") == text.count("Signature #") >= 2


def test_unknown_issuer_is_indeterminate(setup: tuple[Deployment, list[IssuedDocument]], tmp_path: Path) -> None:
    from sealtrail.devpki import create_dev_pki

    dep, _docs = setup
    port = free_port()
    stranger = create_dev_pki(tmp_path / "stranger", f"http://127.0.0.1:{port}")
    with PkiServices(stranger, port=port):
        signer = PadesSigner(
            trust_roots=[stranger.root], other_certs=[stranger.issuing_ca], timestamp_urls=[stranger.tsa_url]
        )
        pdf = weasyprint.HTML(string="<p>Văn bằng của một CA lạ</p>").write_pdf(pdf_variant="pdf/a-3b")
        backend = SoftKeyBackend.from_pkcs12(stranger.p12_path("seal"))
        forged = signer.sign(pdf, backend, SignatureRequest("sig_seal", "seal", "test", lock_document=True))
    report = check_upload(dep, forged).report
    assert report.verdict == "indeterminate" and "NO_CERTIFICATE_CHAIN_FOUND" in _codes(report)
    assert "NOT_IN_REGISTER" in _codes(report)
    text = _pdfsig(forged, tmp_path)
    assert "Signature is Valid." in text and "Certificate issuer isn't Trusted" in text


def _qr_keys(dep: Deployment) -> dict[bytes, object]:
    public = dep.qr_private_key.public_key()  # type: ignore[attr-defined]
    return {key_id(public): public}


def test_forged_qr_seal_is_refused(setup: tuple[Deployment, list[IssuedDocument]]) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from schemas.qrseal import parse_qr_payload, qr_payload
    from signer.qrseal import make_seal
    from verifier.qrseal import verify_seal

    dep, docs = setup
    keys, hosts = _qr_keys(dep), dep.verify_hosts
    assert check_qr(docs[0].qr_payload, keys, hosts).claims is not None  # type: ignore[arg-type]
    genuine = verify_seal(parse_qr_payload(docs[0].qr_payload).seal, keys)  # type: ignore[arg-type]
    forged_claims = type(genuine)(**{**genuine.__dict__, "holder_name": "Trần Văn Giả"})
    forger = ec.generate_private_key(ec.SECP256R1())
    url = docs[0].qr_payload.split("#", 1)[0].rsplit("/", 1)
    forged = qr_payload(url[0].removesuffix("/v"), url[1], make_seal(forged_claims, forger))
    with pytest.raises(SealError, match="unknown key"):
        check_qr(forged, keys, hosts)  # type: ignore[arg-type]


def test_qr_from_another_document_is_caught(setup: tuple[Deployment, list[IssuedDocument]]) -> None:
    dep, docs = setup
    keys, hosts = _qr_keys(dep), dep.verify_hosts
    own = check_upload(dep, docs[0].pdf).report
    other = check_upload(dep, docs[1].pdf).report
    qr = check_qr(docs[0].qr_payload, keys, hosts)  # type: ignore[arg-type]
    assert qr.claims is not None
    assert seal_matches_document(qr.claims, [a["sha256"] for a in own.attachments])
    assert not seal_matches_document(qr.claims, [a["sha256"] for a in other.attachments])


def test_verify_qr_command_refuses_a_qr_on_another_document(
    setup: tuple[Deployment, list[IssuedDocument]], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from sealtrail.cli import app

    dep, docs = setup
    (tmp_path / "own.pdf").write_bytes(docs[0].pdf)
    (tmp_path / "other.pdf").write_bytes(docs[1].pdf)
    env = {"SEALTRAIL_DATA_DIR": str(dep.settings.data_dir), "SEALTRAIL_DEV_PKI_URL": dep.settings.dev_pki_url}
    runner = CliRunner()
    own = runner.invoke(app, ["verify-qr", docs[0].qr_payload, "--document", str(tmp_path / "own.pdf")], env=env)
    assert own.exit_code == 0, own.output
    # the other document in good standing (an earlier test may have revoked it: the register is consulted too)
    with Session(dep.engine) as session:
        before = session.get(DocumentRecord, docs[1].doc_id)
        assert before is not None
        status, reason = before.status, before.status_reason
    set_status(dep, docs[1].doc_id, DocumentStatus.ISSUED, status_reason=None)
    try:
        args = ["verify-qr", docs[0].qr_payload, "--document", str(tmp_path / "other.pdf")]
        other = runner.invoke(app, args, env=env)
    finally:
        set_status(dep, docs[1].doc_id, DocumentStatus(status), status_reason=reason)
    assert other.exit_code == 1 and "QR_OTHER_DOCUMENT" in other.output, other.output
