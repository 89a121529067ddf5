"""Two-step signing: prepared PDF/XML, a signature made elsewhere, B-LT output checked by pdfsig and xmlsec1."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

import schemas
from hsm_adapters.soft import SoftKeyBackend
from schemas.xml import to_xml
from sealtrail.devpki import SIGNER_ROLES, DevPki
from signer.deferred import (
    DeferredPades,
    DeferredXades,
    PreparedPdf,
    SignerIdentity,
    StaleSignatureError,
    byte_range_digest,
)
from signer.pdf import PadesSigner, SignatureRequest
from signer.xades import XadesSigner, XmlSignatureRequest, envelope
from tests.signing.test_pades import _pdf, _pdfsig
from tests.signing.test_xades import _xmlsec
from verifier.pdf import PdfVerifier
from verifier.xml import XmlVerifier


def _identity(pki: DevPki, role: str) -> SignerIdentity:
    return SignerIdentity(pki.cert(role), (pki.issuing_ca,))


@pytest.fixture(scope="module")
def pades(dev_pki: DevPki) -> PadesSigner:
    return PadesSigner(trust_roots=[dev_pki.root], other_certs=[dev_pki.issuing_ca], timestamp_urls=[dev_pki.tsa_url])


@pytest.fixture(scope="module")
def xades(dev_pki: DevPki) -> XadesSigner:
    return XadesSigner(timestamp_urls=[dev_pki.tsa_url], trust_roots=[dev_pki.root], other_certs=[dev_pki.issuing_ca])


def test_three_deferred_signatures_are_b_lt_and_valid(
    dev_pki: DevPki, pades: PadesSigner, xades: XadesSigner, tmp_path: Path
) -> None:
    pdf = _pdf()
    xml = envelope(to_xml(schemas.parse_document(schemas.load_sample("transcript_thcs"))))
    dp, dx = DeferredPades(pades), DeferredXades(xades)
    for i, role in enumerate(SIGNER_ROLES):
        key = SoftKeyBackend.from_pkcs12(dev_pki.p12_path(role))
        ident = _identity(dev_pki, role)
        request = SignatureRequest(f"sig_{role}", role, "test", lock_document=i == len(SIGNER_ROLES) - 1)
        prepared = dp.prepare(pdf, ident, request)
        # survives a restart: only the bytes and the JSON state are needed to finish
        restored = PreparedPdf.from_state(prepared.prepared, prepared.state())
        pdf = dp.finish(restored, ident, key.sign_digest(restored.to_sign, "sha256"))
        px = dx.prepare(xml, ident, XmlSignatureRequest(role, role))
        xml = dx.finish(px, ident, key.sign_digest(px.to_sign, "sha256"))
    path = tmp_path / "deferred.pdf"
    path.write_bytes(pdf)
    text = _pdfsig(path)
    assert text.count("Signature Validation: Signature is Valid.") == 3, text
    reader = PdfFileReader(path.open("rb"), strict=False)
    assert "/DSS" in reader.root  # B-LT: validation data embedded
    dss = reader.root["/DSS"]
    assert len(dss.get("/OCSPs", [])) + len(dss.get("/CRLs", [])) >= 3
    report = PdfVerifier(trust_roots=[dev_pki.root]).verify(pdf)
    assert report.verdict == "valid", report
    assert all(s.timestamp_time is not None for s in report.signatures)

    xml_path = tmp_path / "deferred.xml"
    xml_path.write_bytes(xml)
    trust = tmp_path / "root.pem", tmp_path / "ca.pem"
    from asn1crypto import pem

    trust[0].write_bytes(pem.armor("CERTIFICATE", dev_pki.root.dump()))
    trust[1].write_bytes(pem.armor("CERTIFICATE", dev_pki.issuing_ca.dump()))
    for role in SIGNER_ROLES:
        result = _xmlsec(xml_path, f"sig-{role}", trust)
        assert result.returncode == 0 and "OK" in result.stderr, (role, result.stderr)
    assert b"RevocationValues" in xml and b"EncapsulatedTimeStamp" in xml
    assert XmlVerifier([dev_pki.root], [dev_pki.issuing_ca]).verify(xml).verdict == "valid"


def test_wrong_key_wrong_digest_and_changed_document_are_refused(dev_pki: DevPki, pades: PadesSigner) -> None:
    dp = DeferredPades(pades)
    teacher = _identity(dev_pki, "homeroom_teacher")
    prepared = dp.prepare(_pdf(), teacher, SignatureRequest("sig_homeroom_teacher", "t", "test"))
    right = SoftKeyBackend.from_pkcs12(dev_pki.p12_path("homeroom_teacher"))
    wrong = SoftKeyBackend.from_pkcs12(dev_pki.p12_path("principal"))
    with pytest.raises(StaleSignatureError, match="không khớp"):
        dp.finish(prepared, teacher, wrong.sign_digest(prepared.to_sign, "sha256"))
    with pytest.raises(StaleSignatureError):
        dp.finish(prepared, teacher, right.sign_digest(hashlib.sha256(b"other").digest(), "sha256"))
    changed = bytearray(prepared.prepared)
    changed[100] ^= 1
    tampered = PreparedPdf.from_state(bytes(changed), prepared.state())
    assert byte_range_digest(tampered.prepared, tampered.region_start, tampered.region_end) != prepared.document_digest
    with pytest.raises(StaleSignatureError, match="thay đổi"):
        dp.finish(tampered, teacher, right.sign_digest(prepared.to_sign, "sha256"))
