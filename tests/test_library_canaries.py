"""Canaries for the library behaviour SealTrail relies on beyond public APIs (signer/_pyhanko_adapter.py,
signer/_signxml_adapter.py) and for the error types the verifier tells apart instead of matching texts.

Each test fails loudly when a new version of the pinned library changes what the adapter assumes; then read the
adapter's docstring, fix the adapter (or move to a public API the new version offers), and update the pin here.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from io import BytesIO
from pathlib import Path

import pytest
import weasyprint
from asn1crypto import cms
from lxml import etree
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import attributes, signers
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import InsufficientRevinfoError
from signxml import InvalidDigest
from signxml.xades import XAdESSignatureConfiguration, XAdESVerifier

import schemas
from hsm_adapters.soft import SoftKeyBackend
from schemas.envelope import DS_NS, SIGNED_NS
from schemas.xml import to_xml
from sealtrail.deployment import Deployment
from sealtrail.devpki import DevPki
from sealtrail.settings import Settings
from signer import _pyhanko_adapter as pyhanko_adapter
from signer import _signxml_adapter as signxml_adapter
from signer.pdf import BackendSigner, PadesSigner, SignatureRequest, SigningError
from signer.xades import EXC_C14N, XadesSigner, XmlSignatureRequest, envelope
from tests.conftest import free_port


def _pdf() -> bytes:
    return weasyprint.HTML(string="<h1 style='font-family: Liberation Serif'>Học bạ</h1>").write_pdf()


def _cms_of(pdf: bytes) -> cms.SignedData:
    (signature,) = PdfFileReader(BytesIO(pdf)).embedded_signatures
    return signature.signed_data


def test_the_pinned_versions_are_the_ones_the_adapters_were_written_for() -> None:
    assert version("pyhanko") == pyhanko_adapter.PYHANKO_VERSION, "pyHanko changed: re-check signer/_pyhanko_adapter.py"
    assert version("signxml") == signxml_adapter.SIGNXML_VERSION, "signxml changed: re-check signer/_signxml_adapter.py"


def test_pyhanko_takes_signed_attributes_from_the_replaced_provider(dev_pki: DevPki) -> None:
    """``Signer._signed_attr_providers`` is still where pyHanko gets the signed attributes of a PDF signature: the
    provider put in its place is asked exactly once, and its attribute is the one in the signature."""
    backend = SoftKeyBackend.from_pkcs12(dev_pki.p12_path("seal"))
    signer = BackendSigner(backend)
    real = signer.replaced_providers[attributes.SigningCertificateV2Provider]
    calls: list[bool] = []

    class Counting(attributes.CMSAttributeProvider):
        attribute_type = "signing_certificate_v2"

        async def build_attr_value(self, dry_run: bool = False) -> object:
            calls.append(dry_run)
            return (await real.get_attribute(dry_run))["values"][0]

    signer.replaced_providers = {attributes.SigningCertificateV2Provider: Counting()}
    out = BytesIO()
    signers.sign_pdf(
        IncrementalPdfFileWriter(BytesIO(_pdf())),
        signers.PdfSignatureMetadata(field_name="canary"),
        signer=signer,
        output=out,
    )
    assert calls, "pyHanko no longer asks Signer._signed_attr_providers for the signed attributes"
    attrs = _cms_of(out.getvalue())["signer_infos"][0]["signed_attrs"]
    found = [a for a in attrs if a["type"].native == "signing_certificate_v2"]
    assert len(found) == 1 and found[0].dump() == asyncio.run(real.get_attribute()).dump()


def test_pyhanko_states_the_space_a_signature_needed_in_its_message(dev_pki: DevPki) -> None:
    """PadesSigner grows a too-small reservation by the size pyHanko names in its error text."""
    signer = BackendSigner(SoftKeyBackend.from_pkcs12(dev_pki.p12_path("seal")))
    with pytest.raises(PyHankoSigningError) as raised:
        signers.sign_pdf(
            IncrementalPdfFileWriter(BytesIO(_pdf())),
            signers.PdfSignatureMetadata(field_name="canary"),
            signer=signer,
            output=BytesIO(),
            bytes_reserved=64,
        )
    needed = pyhanko_adapter.needed_space(raised.value, fallback=0)
    assert needed is not None and needed > 64, f"pyHanko's wording changed: {raised.value}"


def test_imported_pdf_bytes_renders_a_page_from_a_parsed_reader() -> None:
    """``PdfContent._ensure_writer`` still gives the writer a stamp draws into."""
    writer = IncrementalPdfFileWriter(BytesIO(_pdf()))
    content = pyhanko_adapter.ImportedPdfBytes(PdfFileReader(BytesIO(_pdf())))
    content.set_writer(writer)
    ops = content.render()
    assert ops.startswith(b"/Import") and ops.endswith(b" Do")
    assert content.box is not None and content.box.width > 100 and content.box.height > 100


def test_the_shared_tls_session_is_made_once_per_event_loop() -> None:
    made: list[object] = []

    def factory():  # type: ignore[no-untyped-def]
        import aiohttp

        made.append(session := aiohttp.ClientSession())
        return session

    lazy = pyhanko_adapter.SharedTlsSession(factory)

    async def use() -> None:
        assert lazy.get_session() is lazy.get_session()
        await lazy.close()

    asyncio.run(use())
    asyncio.run(use())
    assert len(made) == 2 and all(s.closed for s in made)  # type: ignore[attr-defined]


def test_a_revocation_outage_reaches_pades_signing_as_a_transient_error(tmp_path: Path) -> None:
    """With the OCSP responder and the TSA not answering (a dev PKI whose services were never started), pyHanko's
    "could not be validated" SigningError is raised from a certvalidator revocation error (``__cause__``): the
    adapter's only way to call it transient."""
    dep = Deployment(Settings(data_dir=tmp_path / "var", dev_pki_url=f"http://127.0.0.1:{free_port()}"))
    pki = dep.dev_pki
    signer = PadesSigner(trust_roots=[pki.root], other_certs=[pki.issuing_ca], timestamp_urls=[pki.tsa_url])
    backend = SoftKeyBackend.from_pkcs12(pki.p12_path("seal"))
    with pytest.raises(SigningError) as raised:
        signer.sign(_pdf(), backend, SignatureRequest(field_name="sig_seal", signer_name="seal", reason="canary"))
    inner = raised.value.__cause__
    assert isinstance(inner, PyHankoSigningError), repr(inner)
    assert pyhanko_adapter.signing_failure_is_transient(inner), repr(inner.__cause__)
    assert raised.value.transient


def _signed_xml(dev_pki: DevPki) -> bytes:
    backend = SoftKeyBackend.from_pkcs12(dev_pki.p12_path("homeroom_teacher"))
    doc = schemas.parse_document(schemas.load_sample("transcript_thcs"))
    return XadesSigner().sign(envelope(to_xml(doc)), backend, XmlSignatureRequest("homeroom_teacher", "GVCN"))


def test_signxml_still_calls_the_reference_hook_so_every_reference_names_its_c14n(dev_pki: DevPki) -> None:
    root = etree.fromstring(_signed_xml(dev_pki))
    references = root.findall(f".//{{{DS_NS}}}SignedInfo/{{{DS_NS}}}Reference")
    extra = [r for r in references if r.get("Type")]  # SignedProperties (and KeyInfo when referenced)
    assert extra, "signxml no longer adds the SignedProperties reference through _add_reference_to_signed_info"
    for reference in extra:
        algorithms = [t.get("Algorithm") for t in reference.findall(f"{{{DS_NS}}}Transforms/{{{DS_NS}}}Transform")]
        assert algorithms == [EXC_C14N], etree.tostring(reference)


def test_signxml_reports_changed_data_as_invalid_digest(dev_pki: DevPki) -> None:
    """verifier/xml.py tells a changed document (R_XML_HASH) from a bad signature by signxml's InvalidDigest."""
    from cryptography import x509 as cx509

    signed = _signed_xml(dev_pki)
    tampered = signed.replace(b"Nguy\xe1\xbb\x85n", b"Nguy\xe1\xbb\x87n", 1)
    assert tampered != signed
    config = XAdESSignatureConfiguration(
        location=f"./{{{SIGNED_NS}}}ChuKySo/{{{SIGNED_NS}}}ChuKy[@VaiTro='homeroom_teacher']/", expect_references=3
    )
    cert = cx509.load_der_x509_certificate(dev_pki.cert("homeroom_teacher").dump())
    XAdESVerifier().verify(etree.fromstring(signed), x509_cert=cert, expect_config=config)  # the original verifies
    with pytest.raises(InvalidDigest):
        XAdESVerifier().verify(etree.fromstring(tampered), x509_cert=cert, expect_config=config)


def test_certvalidator_reports_missing_revocation_data_as_insufficient_revinfo(dev_pki: DevPki) -> None:
    """verifier/xml.py tells "no revocation data" (R_NO_REVOCATION) from an untrusted path by this error type."""
    context = ValidationContext(
        trust_roots=[dev_pki.root], allow_fetching=False, revocation_mode="require", crls=[], ocsps=[]
    )
    validator = CertificateValidator(
        dev_pki.cert("seal"), intermediate_certs=[dev_pki.issuing_ca], validation_context=context
    )
    with pytest.raises(InsufficientRevinfoError):
        asyncio.run(validator.async_validate_path())
