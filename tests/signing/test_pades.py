"""PAdES signing through a KeyBackend: three signers in order, B-LT, independent checks with pdfsig."""

from __future__ import annotations

import re
import subprocess
from io import BytesIO
from pathlib import Path

import pytest
import weasyprint
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import DocumentSecurityStore

from hsm_adapters.soft import SoftKeyBackend
from sealtrail.devpki import SIGNER_ROLES, DevPki
from signer.pdf import PadesSigner, SignatureRequest, SigningError
from tests.conftest import free_port
from verifier.pdf import PdfVerifier


def _pdf() -> bytes:
    html = "<h1 style='font-family: Liberation Serif'>Học bạ — Nguyễn Thị Thu Hằng</h1><p>Toán: 8.3</p>"
    return weasyprint.HTML(string=html).write_pdf(pdf_variant="pdf/a-3b")


def _sign_all(pki: DevPki, pdf: bytes, signer: PadesSigner) -> bytes:
    for i, role in enumerate(SIGNER_ROLES):
        backend = SoftKeyBackend.from_pkcs12(pki.p12_path(role))
        request = SignatureRequest(
            field_name=f"sig_{role}", signer_name=role, reason="test", lock_document=i == len(SIGNER_ROLES) - 1
        )
        pdf = signer.sign(pdf, backend, request)
    return pdf


def _pdfsig(path: Path) -> str:
    return subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, timeout=60).stdout


@pytest.fixture(scope="module")
def signed(dev_pki: DevPki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    signer = PadesSigner(trust_roots=[dev_pki.root], other_certs=[dev_pki.issuing_ca], timestamp_urls=[dev_pki.tsa_url])
    path = tmp_path_factory.mktemp("pades") / "signed.pdf"
    path.write_bytes(_sign_all(dev_pki, _pdf(), signer))
    return path


def test_three_signatures_in_order_all_valid_for_pdfsig(signed: Path) -> None:
    text = _pdfsig(signed)
    fields = [line.split(":", 1)[1].strip() for line in text.splitlines() if "Signature Field Name" in line]
    assert fields == ["sig_homeroom_teacher", "sig_principal", "sig_seal"]
    assert text.count("Signature Validation: Signature is Valid.") == 3
    assert text.count("Signature Type: ETSI.CAdES.detached") == 3


def test_long_term_data_is_embedded(signed: Path) -> None:
    reader = PdfFileReader(BytesIO(signed.read_bytes()))
    dss = DocumentSecurityStore.read_dss(reader)
    assert len(dss.ocsps) >= 3
    assert len(dss.certs) >= 3


def test_signing_keeps_the_pdfa3_claim(signed: Path) -> None:
    """pyHanko rewrites the XMP on each signature; the PDF/A-3b claim must survive all three."""
    meta = subprocess.run(["pdfinfo", "-meta", str(signed)], capture_output=True, text=True, timeout=60).stdout
    assert re.search(r"pdfaid:part(>|=\")3", meta), meta
    assert re.search(r"pdfaid:conformance(>|=\")B", meta), meta


def test_our_validator_accepts_with_timestamps_and_no_network(signed: Path, dev_pki: DevPki) -> None:
    report = PdfVerifier([dev_pki.root]).verify(signed.read_bytes())
    assert report.verdict == "valid", report.reasons
    assert [s.indication for s in report.signatures] == ["valid"] * 3
    assert all(s.timestamp_time is not None for s in report.signatures)


def test_b_lt_still_validates_after_the_pki_services_stop(tmp_path: Path) -> None:
    from sealtrail.devpki import PkiServices, create_dev_pki

    port = free_port()
    pki = create_dev_pki(tmp_path / "pki", f"http://127.0.0.1:{port}")
    with PkiServices(pki, port=port):
        signer = PadesSigner(trust_roots=[pki.root], other_certs=[pki.issuing_ca], timestamp_urls=[pki.tsa_url])
        pdf = _sign_all(pki, _pdf(), signer)
    report = PdfVerifier([pki.root]).verify(pdf)
    assert report.verdict == "valid", report.reasons


def test_dead_timestamp_authority_leaves_the_document_unsigned(dev_pki: DevPki) -> None:
    dead = f"http://127.0.0.1:{free_port()}/tsa"
    signer = PadesSigner(trust_roots=[dev_pki.root], other_certs=[dev_pki.issuing_ca], timestamp_urls=[dead])
    original = _pdf()
    backend = SoftKeyBackend.from_pkcs12(dev_pki.p12_path("principal"))
    with pytest.raises(SigningError, match="timestamp"):
        signer.sign(original, backend, SignatureRequest("sig_principal", "p", "test"))


def test_second_timestamp_authority_takes_over(dev_pki: DevPki) -> None:
    dead = f"http://127.0.0.1:{free_port()}/tsa"
    signer = PadesSigner(
        trust_roots=[dev_pki.root], other_certs=[dev_pki.issuing_ca], timestamp_urls=[dead, dev_pki.tsa_url]
    )
    backend = SoftKeyBackend.from_pkcs12(dev_pki.p12_path("principal"))
    pdf = signer.sign(_pdf(), backend, SignatureRequest("sig_principal", "p", "test"))
    report = PdfVerifier([dev_pki.root]).verify(pdf)
    assert report.verdict == "valid"
    assert report.signatures[0].timestamp_time is not None


@pytest.mark.parametrize("initial", [1024, 1025])  # an odd size is rounded up: pyHanko refuses odd reservations
def test_too_small_signature_space_is_retried_not_written_broken(dev_pki: DevPki, tmp_path: Path, initial: int) -> None:
    signer = PadesSigner(
        trust_roots=[dev_pki.root],
        other_certs=[dev_pki.issuing_ca],
        timestamp_urls=[dev_pki.tsa_url],
        initial_reservation=initial,
    )
    backend = SoftKeyBackend.from_pkcs12(dev_pki.p12_path("seal"))
    path = tmp_path / "retried.pdf"
    path.write_bytes(signer.sign(_pdf(), backend, SignatureRequest("sig_seal", "s", "test", lock_document=True)))
    assert "Signature is Valid." in _pdfsig(path)


def test_a_changed_score_after_the_last_signature_is_detected(signed: Path, dev_pki: DevPki) -> None:
    writer = IncrementalPdfFileWriter(BytesIO(signed.read_bytes()))
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    stream = generic.StreamObject(stream_data=b"BT /F1 12 Tf 100 100 Td (Toan: 9.9) Tj ET")
    page["/Contents"] = (
        generic.ArrayObject([*page["/Contents"], writer.add_object(stream)])
        if isinstance(page["/Contents"], generic.ArrayObject)
        else generic.ArrayObject([page.raw_get("/Contents"), writer.add_object(stream)])
    )
    writer.update_container(page)
    out = BytesIO()
    writer.write(out)
    report = PdfVerifier([dev_pki.root]).verify(out.getvalue())
    assert report.verdict == "invalid"
    assert "MODIFIED_AFTER_SIGNING" in {r.code for r in report.reasons}


def test_an_unrelated_root_does_not_make_the_document_trusted(signed: Path, tmp_path: Path) -> None:
    from sealtrail.devpki import create_dev_pki

    stranger = create_dev_pki(tmp_path / "other", "http://127.0.0.1:9")
    report = PdfVerifier([stranger.root]).verify(signed.read_bytes())
    assert report.verdict != "valid"
    assert "NO_CERTIFICATE_CHAIN_FOUND" in {r.code for r in report.reasons}


def test_soft_keys_are_refused_in_production_mode(dev_pki: DevPki) -> None:
    from hsm_adapters.base import KeyBackendError

    with pytest.raises(KeyBackendError, match="production"):
        SoftKeyBackend.from_pkcs12(dev_pki.p12_path("seal"), mode="production")


def test_report_shows_the_pdfa_claim_and_checks_the_attached_xml(dev_pki: DevPki) -> None:
    import schemas
    from schemas.xml import to_xml
    from signer.render import Renderer

    doc = schemas.parse_document(schemas.load_sample("diploma_thpt"))
    signer = PadesSigner(trust_roots=[dev_pki.root], other_certs=[dev_pki.issuing_ca], timestamp_urls=[dev_pki.tsa_url])
    backend = SoftKeyBackend.from_pkcs12(dev_pki.p12_path("seal"))
    principal = SoftKeyBackend.from_pkcs12(dev_pki.p12_path("principal"))
    verifier = PdfVerifier(trust_roots=[dev_pki.root])
    request = SignatureRequest(field_name="sig_seal", signer_name="seal", reason="test", lock_document=True)
    results = {}
    for label, xml in (("good", to_xml(doc)), ("bad", b"<vanbang xmlns='urn:sealtrail:vanbang:1'><x/></vanbang>")):
        rendered = Renderer().render(doc, doc_id="VB-TEST", qr_payload="https://a.vn/v/x", xml=xml)
        pdf = signer.sign(rendered.pdf, principal, SignatureRequest("sig_principal", "p", "test"))  # the diploma's
        results[label] = verifier.verify(signer.sign(pdf, backend, request))  # signer policy: principal, then seal
    good, bad = results["good"], results["bad"]
    assert good.verdict == "valid" and good.pdfa == "PDF/A-3B"
    assert [(a["name"], a["relationship"], a["xsd_valid"]) for a in good.attachments] == [("vanbang.xml", "Data", True)]
    assert bad.verdict == "indeterminate" and bad.attachments[0]["xsd_valid"] is False
    assert "ATTACHMENT_NOT_VALID" in {r.code for r in bad.reasons}


def test_signing_works_again_as_soon_as_the_revocation_services_are_back(tmp_path: Path) -> None:
    """A failed signature's revocation look-ups (OCSP down) are not reused: the retry fetches afresh."""
    from sealtrail.devpki import PkiServices, create_dev_pki

    port = free_port()
    pki = create_dev_pki(tmp_path / "pki", f"http://127.0.0.1:{port}")
    signer = PadesSigner(trust_roots=[pki.root], other_certs=[pki.issuing_ca], timestamp_urls=[pki.tsa_url])
    backend = SoftKeyBackend.from_pkcs12(pki.p12_path("principal"))
    request = SignatureRequest("sig_principal", "p", "test")
    with pytest.raises(SigningError):  # nothing answers on the PKI's port yet
        signer.sign(_pdf(), backend, request)
    with PkiServices(pki, port=port):  # well within the minute a validation context is otherwise reused
        pdf = signer.sign(_pdf(), backend, request)
        report = PdfVerifier([pki.root]).verify(pdf)
    assert report.verdict == "valid", report.reasons


def test_the_stamp_cache_keeps_only_the_current_minutes_appearances(
    dev_pki: DevPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A night-long batch keeps one laid-out stamp per signer for the current minute, not one per minute it ran."""
    from pyhanko.sign.fields import SigFieldSpec, append_signature_field

    import signer.pdf as pdf_module

    out = BytesIO()
    writer = IncrementalPdfFileWriter(BytesIO(_pdf()))
    append_signature_field(writer, SigFieldSpec("sig_principal", on_page=0, box=(40, 40, 240, 110)))
    writer.write(out)
    signer = PadesSigner(trust_roots=[dev_pki.root], other_certs=[dev_pki.issuing_ca], timestamp_urls=[dev_pki.tsa_url])
    request = SignatureRequest("sig_principal", "Hiệu trưởng", "test")
    minutes = iter([f"21:{m:02d} ngày 23/11/2026" for m in range(10)])
    now = next(minutes)
    monkeypatch.setattr(pdf_module, "stamp_time_text", lambda _when: now)
    for now in minutes:  # read by the patched stamp_time_text
        for _ in range(2):  # the second signature of the minute reuses the first one's appearance
            assert signer.stamp_style(IncrementalPdfFileWriter(BytesIO(out.getvalue())), request) is not None
        assert [k[1] for k in signer._stamps] == [now]
    backend = SoftKeyBackend.from_pkcs12(dev_pki.p12_path("principal"))
    signed = signer.sign(out.getvalue(), backend, request)
    assert PdfVerifier([dev_pki.root]).verify(signed).verdict == "valid"
