"""XAdES B-T on the XML form: three signers from the HSM, checked by xmlsec1, openssl ts and our own verifier."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from asn1crypto import pem
from lxml import etree

import schemas
from hsm_adapters.pkcs11 import Pkcs11KeyBackend
from hsm_adapters.soft import SoftKeyBackend
from schemas.publish import validate_xml
from schemas.xml import to_xml
from sealtrail.devpki import SIGNER_ROLES, DevPki, dev_revocation
from signer.pdf import SigningError
from signer.xades import DS_NS, XADES_NS, XadesSigner, XmlSignatureRequest, envelope, signed_data
from tests.conftest import SoftHsm, free_port
from verifier.revocation import LocalRevocation
from verifier.xml import XmlVerifier

ID_ATTRS = [
    "urn:sealtrail:signed:1:DuLieu",
    f"{XADES_NS}:SignedProperties",
    f"{DS_NS}:KeyInfo",
    f"{DS_NS}:SignatureValue",
    f"{DS_NS}:Signature",
]


@pytest.fixture(scope="module")
def canonical() -> bytes:
    return to_xml(schemas.parse_document(schemas.load_sample("transcript_thcs")))


@pytest.fixture(scope="module")
def signed(softhsm: SoftHsm, dev_pki: DevPki, canonical: bytes) -> bytes:
    signer = XadesSigner(timestamp_urls=[dev_pki.tsa_url], trust_roots=[dev_pki.root], other_certs=[dev_pki.issuing_ca])
    xml = envelope(canonical)
    for role in SIGNER_ROLES:
        backend = Pkcs11KeyBackend(softhsm.config("sealtrail-school", role))
        xml = signer.sign(xml, backend, XmlSignatureRequest(role, role))
        backend.close()
    return xml


@pytest.fixture(scope="module")
def trust(dev_pki: DevPki, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("trust")
    (d / "root.pem").write_bytes(pem.armor("CERTIFICATE", dev_pki.root.dump()))
    (d / "ca.pem").write_bytes(pem.armor("CERTIFICATE", dev_pki.issuing_ca.dump()))
    return d / "root.pem", d / "ca.pem"


def _xmlsec(path: Path, node_id: str, trust: tuple[Path, Path]) -> subprocess.CompletedProcess[str]:
    args = [
        "xmlsec1",
        "--verify",
        "--node-id",
        node_id,
        "--trusted-pem",
        str(trust[0]),
        "--untrusted-pem",
        str(trust[1]),
    ]
    for attr in ID_ATTRS:
        args += ["--id-attr:Id", attr]
    return subprocess.run([*args, str(path)], capture_output=True, text=True, timeout=60)


def test_xmlsec1_verifies_every_signature(signed: bytes, trust: tuple[Path, Path], tmp_path: Path) -> None:
    path = tmp_path / "hocba.signed.xml"
    path.write_bytes(signed)
    for role in SIGNER_ROLES:
        result = _xmlsec(path, f"sig-{role}", trust)
        assert result.returncode == 0 and "OK" in result.stderr, (role, result.stderr)


def test_xmlsec1_rejects_a_changed_score(signed: bytes, trust: tuple[Path, Path], tmp_path: Path) -> None:
    path = tmp_path / "tampered.xml"
    path.write_bytes(signed.replace(b"<average>6.8</average>", b"<average>8.6</average>", 1))
    assert b"<average>8.6</average>" in path.read_bytes()
    for role in SIGNER_ROLES:
        assert _xmlsec(path, f"sig-{role}", trust).returncode != 0


def test_our_verifier_accepts_and_sees_the_signed_data(signed: bytes, canonical: bytes, dev_pki: DevPki) -> None:
    report = XmlVerifier([dev_pki.root], [dev_pki.issuing_ca]).verify(signed)
    assert report.verdict == "valid", report
    assert [s.role for s in report.signatures] == list(SIGNER_ROLES)
    assert all(s.timestamp_time is not None and s.long_term for s in report.signatures)
    assert report.signatures[1].signer == dev_pki.cert("principal").subject.native["common_name"]
    assert report.data == signed_data(signed) == canonical
    validate_xml(signed_data(signed))


def test_openssl_ts_verifies_the_signature_timestamps(signed: bytes, trust: tuple[Path, Path], tmp_path: Path) -> None:
    root = etree.fromstring(signed)
    for i, sig in enumerate(root.iter(f"{{{DS_NS}}}Signature")):
        token = sig.find(f".//{{{XADES_NS}}}EncapsulatedTimeStamp")
        value = sig.find(f"{{{DS_NS}}}SignatureValue")
        assert token is not None and value is not None
        (tmp_path / f"{i}.tst").write_bytes(base64.b64decode(token.text or ""))
        (tmp_path / f"{i}.data").write_bytes(etree.tostring(value, method="c14n", exclusive=True))
        result = subprocess.run(
            ["openssl", "ts", "-verify", "-token_in", "-in", str(tmp_path / f"{i}.tst"),
             "-data", str(tmp_path / f"{i}.data"), "-CAfile", str(trust[0]), "-untrusted", str(trust[1])],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert "Verification: OK" in result.stdout, result.stdout + result.stderr


def test_b_lt_carries_certificates_and_ocsp_and_is_checked_against_them(signed: bytes, dev_pki: DevPki) -> None:
    root = etree.fromstring(signed)
    for sig in root.iter(f"{{{DS_NS}}}Signature"):
        assert len(sig.findall(f".//{{{XADES_NS}}}EncapsulatedX509Certificate")) >= 3
        assert sig.findall(f".//{{{XADES_NS}}}EncapsulatedOCSPValue") or sig.findall(
            f".//{{{XADES_NS}}}EncapsulatedCRLValue"
        )
    # Strip the OCSP responses of the seal's signature: the embedded data no longer proves its status.
    seal = root.find(f".//{{{DS_NS}}}Signature[@Id='sig-seal']")
    assert seal is not None
    for values in seal.findall(f".//{{{XADES_NS}}}RevocationValues"):
        for child in list(values):
            values.remove(child)
    report = XmlVerifier([dev_pki.root], [dev_pki.issuing_ca]).verify(etree.tostring(root))
    assert report.verdict == "indeterminate"
    assert [s.indication for s in report.signatures] == ["valid", "valid", "indeterminate"]


def test_a_changed_score_is_invalid(signed: bytes, dev_pki: DevPki) -> None:
    tampered = signed.replace(b"<average>6.8</average>", b"<average>8.6</average>", 1)
    report = XmlVerifier([dev_pki.root], [dev_pki.issuing_ca]).verify(tampered)
    assert report.verdict == "invalid"
    assert {r.code for r in report.reasons} == {"HASH_FAILURE"}
    assert report.data is None


def test_removing_the_teachers_signature_breaks_the_principals(signed: bytes, dev_pki: DevPki) -> None:
    root = etree.fromstring(signed)
    slots = root.find("{urn:sealtrail:signed:1}ChuKySo")
    assert slots is not None
    slots.remove(slots[0])
    report = XmlVerifier([dev_pki.root], [dev_pki.issuing_ca]).verify(etree.tostring(root))
    assert report.verdict == "invalid"
    assert report.signatures[0].role == "principal" and report.signatures[0].indication == "invalid"


def test_signature_wrapping_with_a_second_data_element_is_refused(signed: bytes, dev_pki: DevPki) -> None:
    root = etree.fromstring(signed)
    evil = etree.SubElement(root, "{urn:sealtrail:signed:1}DuLieu", Id="DuLieu")
    etree.SubElement(evil, "fake").text = "10.0"
    report = XmlVerifier([dev_pki.root], [dev_pki.issuing_ca]).verify(etree.tostring(root))
    assert report.verdict == "invalid"


def test_an_unknown_root_is_not_trusted(signed: bytes, tmp_path: Path) -> None:
    from sealtrail.devpki import create_dev_pki

    other = create_dev_pki(tmp_path / "other", "http://127.0.0.1:1")
    report = XmlVerifier([other.root]).verify(signed)
    assert report.verdict == "indeterminate"
    assert "NO_CERTIFICATE_CHAIN_FOUND" in {r.code for r in report.reasons}


@pytest.mark.parametrize(
    "payload",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "http://127.0.0.1:PORT/x">]><x>&e;</x>',
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><x>&b;</x>',
        b"not xml at all",
        b"<VanBanKySo/>",
    ],
)
def test_hostile_or_foreign_xml_is_refused_without_fetching(payload: bytes, dev_pki: DevPki) -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        report = XmlVerifier([dev_pki.root]).verify(payload.replace(b"PORT", str(port).encode()))
        assert report.verdict == "invalid"
        assert {r.code for r in report.reasons} == {"FORMAT_FAILURE"}
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody called


def test_dead_timestamp_authority_leaves_the_xml_as_it_was(dev_pki: DevPki, canonical: bytes) -> None:
    before = envelope(canonical)
    signer = XadesSigner(timestamp_urls=[f"http://127.0.0.1:{free_port()}/tsa"], timeout=2)
    backend = SoftKeyBackend.from_pkcs12(dev_pki.p12_path("principal"))
    with pytest.raises(SigningError, match="timestamp"):
        signer.sign(before, backend, XmlSignatureRequest("principal", "Hiệu trưởng"))
    assert b"Signature" not in before


def test_a_role_signs_once(dev_pki: DevPki, canonical: bytes) -> None:
    signer = XadesSigner()
    backend = SoftKeyBackend.from_pkcs12(dev_pki.p12_path("seal"))
    once = signer.sign(envelope(canonical), backend, XmlSignatureRequest("seal", "Con dấu"))
    with pytest.raises(SigningError, match="already carries"):
        signer.sign(once, backend, XmlSignatureRequest("seal", "Con dấu"))


def test_correctly_signed_data_that_breaks_the_xsd_is_invalid(dev_pki: DevPki, canonical: bytes) -> None:
    broken = canonical.replace(b"<level>lower_secondary</level>", b"<level>kindergarten</level>", 1)
    assert broken != canonical
    backend = SoftKeyBackend.from_pkcs12(dev_pki.p12_path("seal"))
    signed = XadesSigner().sign(envelope(broken), backend, XmlSignatureRequest("seal", "Con dấu"))
    verifier = XmlVerifier([dev_pki.root], [dev_pki.issuing_ca])
    verifier.local_revocation = LocalRevocation.fixed(*dev_revocation(dev_pki))  # B-B: the status from outside
    report = verifier.verify(signed)
    assert report.signatures[0].indication == "valid"  # the signature itself is fine
    assert report.verdict == "invalid" and any("XSD" in r.en for r in report.reasons)


def test_a_batch_asks_for_each_certificates_status_once_and_every_document_verifies(
    dev_pki: DevPki, canonical: bytes
) -> None:
    signer = XadesSigner(timestamp_urls=[dev_pki.tsa_url], trust_roots=[dev_pki.root], other_certs=[dev_pki.issuing_ca])
    backend = SoftKeyBackend.from_pkcs12(dev_pki.p12_path("seal"))
    documents = [signer.sign(envelope(canonical), backend, XmlSignatureRequest("seal", "Con dấu")) for _ in range(3)]
    assert signer.revocation.fetches == 2  # the seal's certificate and the TSA's, fetched for the first document
    for signed in documents:
        report = XmlVerifier([dev_pki.root], [dev_pki.issuing_ca]).verify(signed)
        assert report.signatures[0].indication == "valid" and report.signatures[0].long_term, report
        # a transcript with the seal alone: only the signer policy (teacher and principal missing) objects
        assert {r.code for r in report.reasons} == {"SIGNER_POLICY_FAILURE"}, report.reasons
        assert b"EncapsulatedOCSPValue" in signed or b"EncapsulatedCRLValue" in signed


def test_revocation_data_is_fetched_again_after_the_reuse_window(dev_pki: DevPki, canonical: bytes) -> None:
    signer = XadesSigner(timestamp_urls=[dev_pki.tsa_url], trust_roots=[dev_pki.root], other_certs=[dev_pki.issuing_ca])
    signer.revocation.reuse_seconds = 0
    backend = SoftKeyBackend.from_pkcs12(dev_pki.p12_path("seal"))
    for _ in range(2):
        signer.sign(envelope(canonical), backend, XmlSignatureRequest("seal", "Con dấu"))
    assert signer.revocation.fetches == 4
