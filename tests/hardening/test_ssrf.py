"""SSRF: certificates inside uploaded files carry AIA (caIssuers, OCSP) and CRL distribution point URLs that point
at a loopback server recording every request. Checking those files must never make the server fetch them.

A control test shows the certificates are built right: a validator that *is* allowed to fetch does hit the recorder.
"""

from __future__ import annotations

import asyncio
import base64
import re
from datetime import UTC, datetime, timedelta
from io import BytesIO

import pytest
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from fastapi.testclient import TestClient

from tests.hardening.conftest import Recorder, Signed, Worker


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _uri(url: str) -> x509.UniformResourceIdentifier:
    return x509.UniformResourceIdentifier(url)


def _ssrf_pki(url: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate, x509.Certificate]:
    """A CA (not trusted by SealTrail) and a signer whose certificate points AIA/OCSP/CRL-DP at ``url``."""
    now = datetime.now(UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("SSRF test CA"))
        .issuer_name(_name("SSRF test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Hiệu trưởng giả mạo"))
        .issuer_name(_name("SSRF test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, _uri(f"{url}/aia-ca.crt")),
                    x509.AccessDescription(AuthorityInformationAccessOID.OCSP, _uri(f"{url}/ocsp")),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(f"{url}/crl.crl")], None, None, None)]
            ),
            critical=False,
        )
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    return key, cert, ca


def _asn1(cert: x509.Certificate) -> ax509.Certificate:
    return ax509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _signed_pdf(signed: Signed, key: rsa.RSAPrivateKey, cert: x509.Certificate) -> bytes:
    """A real SealTrail PDF re-signed (one more signature) with the hostile certificate; its CA is not embedded,
    so a validator would have to fetch it from the AIA URL to build a path."""
    from pyhanko.keys import load_private_key_from_pemder_data
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    signer = signers.SimpleSigner(
        signing_cert=_asn1(cert),
        signing_key=load_private_key_from_pemder_data(pem, None),
        cert_registry=SimpleCertificateStore.from_certs([_asn1(cert)]),
    )
    # An unsigned field is added first: the seal's lock forbids new fields, but this is about fetching, not MDP.
    w = IncrementalPdfFileWriter(BytesIO(signed.pdf), strict=False)
    out = signers.sign_pdf(w, signers.PdfSignatureMetadata(field_name="Ke_gia_mao"), signer=signer)
    return out.getvalue()


def _xml_with_cert(signed: Signed, cert: x509.Certificate) -> bytes:
    """The real signed XML with each signer's certificate swapped for the hostile one (in KeyInfo)."""
    b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER))
    tag = b"ds:X509Certificate"
    return re.sub(rb"<ds:X509Certificate>[^<]*</ds:X509Certificate>", b"<%s>%s</%s>" % (tag, b64, tag), signed.xml)


@pytest.fixture
def hostile(signed: Signed, recorder: Recorder) -> tuple[bytes, bytes, x509.Certificate]:
    key, cert, _ca = _ssrf_pki(recorder.url)
    return _signed_pdf(signed, key, cert), _xml_with_cert(signed, cert), cert


def test_control_a_fetching_validator_would_hit_the_recorder(recorder: Recorder, signed: Signed) -> None:
    from pyhanko_certvalidator import CertificateValidator, ValidationContext

    _key, cert, _ca = _ssrf_pki(recorder.url)
    context = ValidationContext(trust_roots=signed.dep.trust_roots, allow_fetching=True)
    with pytest.raises(Exception):  # noqa: B017 - no path: the CA is not trusted; what matters is the fetch
        asyncio.run(CertificateValidator(_asn1(cert), validation_context=context).async_validate_path())
    assert any("aia-ca.crt" in hit for hit in recorder.hits), recorder.hits


def test_verifier_never_fetches_urls_from_uploaded_certificates(
    worker: Worker, hostile: tuple[bytes, bytes, x509.Certificate], recorder: Recorder
) -> None:
    pdf, xml, _cert = hostile
    for kind, data in (("pdf", pdf), ("xml", xml), ("auto", pdf), ("auto", xml)):
        result = worker.check(kind, data)
        assert result["error"] is None, result
        assert result["verdict"] in ("invalid", "indeterminate"), result
    assert recorder.hits == []


def test_upload_api_and_bulk_never_fetch(
    signed: Signed, hostile: tuple[bytes, bytes, x509.Certificate], recorder: Recorder
) -> None:
    from sealtrail.web.app import create_app
    from tests.hardening.hostile import make_zip

    pdf, xml, _cert = hostile
    client = TestClient(create_app(signed.dep.settings))
    for name, data in (("a.pdf", pdf), ("a.xml", xml)):
        response = client.post("/api/v1/verify", files={"file": (name, data)})
        assert response.status_code == 200, response.text
        assert response.json()["verdict"] != "valid"
        page = client.post("/kiem-tra", files={"file": (name, data)})
        assert page.status_code == 200
    bulk = client.post("/api/v1/verify/bulk", files={"file": ("z.zip", make_zip([("a.pdf", pdf), ("a.xml", xml)]))})
    assert bulk.status_code == 200, bulk.text
    assert [i["verdict"] for i in bulk.json()["items"]] != ["valid", "valid"]
    assert recorder.hits == []


def test_signing_fetches_only_from_allow_listed_hosts(recorder: Recorder, signed: Signed) -> None:
    """The one online path (revocation data while signing) refuses URLs whose host is not on the allow-list,
    and still fetches from allowed ones (the dev PKI's own responders, named by our CA certificates)."""
    from pyhanko_certvalidator import CertificateValidator, ValidationContext

    from signer.fetching import allowed_hosts, signing_fetchers

    trust = [*signed.dep.trust_roots, *signed.dep.intermediates]
    assert allowed_hosts(trust) == {"127.0.0.1"}  # the dev PKI's host, from the CA certificates themselves
    _key, cert, ca = _ssrf_pki(recorder.url.replace("127.0.0.1", "localhost"))
    context = ValidationContext(
        trust_roots=[_asn1(ca)], allow_fetching=True, revocation_mode="require", fetcher_backend=signing_fetchers(trust)
    )
    with pytest.raises(Exception):  # noqa: B017 - revocation cannot be fetched: that is the point
        asyncio.run(CertificateValidator(_asn1(cert), validation_context=context).async_validate_path())
    assert recorder.hits == []
    # The same validation with the host allowed does fetch, so the refusal above came from the allow-list.
    allowed = ValidationContext(
        trust_roots=[_asn1(ca)],
        allow_fetching=True,
        revocation_mode="require",
        fetcher_backend=signing_fetchers(trust, extra_hosts=["localhost"]),
    )
    with pytest.raises(Exception):  # noqa: B017 - the recorder's answers are not OCSP/CRL
        asyncio.run(CertificateValidator(_asn1(cert), validation_context=allowed).async_validate_path())
    assert recorder.hits
