"""XAdES signatures on the XML form of a document (signxml), through the same KeyBackend as the PDFs.

The signed XML is one self-contained file, laid out the way Vietnamese signed XML documents (e-invoices under
Circular 78) are: the data in an element with an Id, and each signer's ``ds:Signature`` in its own slot after it::

    <VanBanKySo xmlns="urn:sealtrail:signed:1">
      <DuLieu Id="DuLieu"> …the canonical học bạ / văn bằng XML, unchanged… </DuLieu>
      <ChuKySo>
        <ChuKy VaiTro="homeroom_teacher"><ds:Signature Id="sig-homeroom_teacher">…</ds:Signature></ChuKy>
        <ChuKy VaiTro="principal"><ds:Signature Id="sig-principal">…</ds:Signature></ChuKy>
        <ChuKy VaiTro="seal"><ds:Signature Id="sig-seal">…</ds:Signature></ChuKy>
      </ChuKySo>
    </VanBanKySo>

Every signature covers ``#DuLieu``; each later signature also covers the earlier signer's ``SignatureValue``, so
the principal attests that the teacher had signed, and the order cannot be changed afterwards. Adding a signature
never invalidates an earlier one (a plain enveloped-signature transform would: each new signature sits inside
the data the earlier ones signed). Exclusive canonicalisation keeps each signature valid wherever it sits.

Levels: XAdES B-B (SigningCertificateV2, SigningTime, ClaimedRole) and B-T (a SignatureTimeStamp over the
SignatureValue from an RFC 3161 authority, with failover).

The envelope's names and ``signed_data`` live in schemas.envelope (the verifier reads envelopes too and must not
import signer); they stay importable from here.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import cms, crl, ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes
from lxml import etree
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from signxml import DigestAlgorithm, SignatureMethod
from signxml.algorithms import CanonicalizationMethod, SignatureConstructionMethod
from signxml.xades import XAdESDataObjectFormat, XAdESSigner

from hsm_adapters.base import KeyBackend, KeyBackendError, SignatureMechanism
from schemas.envelope import DATA_ID, DS_NS, SIGNED_NS, XADES_NS, exc_c14n
from schemas.envelope import canonical_bytes as canonical_bytes
from schemas.envelope import q as _q
from schemas.envelope import signed_data as signed_data
from schemas.xml import parse_xml_securely
from signer._signxml_adapter import InteroperableXAdESSigner
from signer.fetching import signing_fetchers
from signer.pdf import REVOCATION_REUSE_SECONDS, FailoverTimeStamper, SigningError

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


class BackendKey:
    """Looks like a `cryptography` private key to signxml; hashes locally and has the KeyBackend sign the digest."""

    def __init__(self, backend: KeyBackend) -> None:
        self.backend = backend
        self._public = cx509.load_der_x509_certificate(backend.certificate.dump()).public_key()

    @property
    def key_size(self) -> int:
        return self._public.key_size  # type: ignore[union-attr]

    def public_key(self) -> Any:
        return self._public

    def sign(self, data: bytes, *args: Any, **kwargs: Any) -> bytes:
        algorithm = kwargs.get("algorithm")
        if "signature_algorithm" in kwargs:  # ECDSA: signxml passes ec.ECDSA(algorithm=…)
            algorithm = kwargs["signature_algorithm"].algorithm
        if algorithm is None or algorithm.name not in _HASHES:
            raise KeyBackendError(f"Unsupported hash for XML signing: {algorithm}")
        digest = hashlib.new(algorithm.name, data).digest()
        return self.backend.sign_digest(digest, algorithm.name)


def _method(backend: KeyBackend) -> SignatureMethod:
    if backend.mechanism is SignatureMechanism.RSA_PKCS1V15:
        return SignatureMethod.RSA_SHA256
    if backend.mechanism is SignatureMechanism.ECDSA:
        return SignatureMethod.ECDSA_SHA256
    raise SigningError(f"The key {backend.label} cannot make XML signatures (Ed25519 is not used in XAdES here)")


def envelope(canonical_xml: bytes) -> bytes:
    """Wrap a canonical document in the signed-document envelope, with no signatures yet."""
    document = parse_xml_securely(canonical_xml)
    root = etree.Element(_q("VanBanKySo"), nsmap={None: SIGNED_NS})
    data = etree.SubElement(root, _q("DuLieu"), Id=DATA_ID)
    data.append(document)
    etree.SubElement(root, _q("ChuKySo"))
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


@dataclass(frozen=True)
class XmlSignatureRequest:
    role: str
    claimed_role: str


class XadesSigner:
    """Adds one XAdES signature per call to a signed-document envelope: B-B without timestamp authorities, B-T
    with them, and B-LT when trust roots are given too (certificates and OCSP/CRL data embedded, so the XML
    verifies offline after the certificates expire)."""

    def __init__(
        self,
        *,
        timestamp_urls: Sequence[str] = (),
        timeout: float = 10,
        trust_roots: Sequence[asn1_x509.Certificate] = (),
        other_certs: Sequence[asn1_x509.Certificate] = (),
    ) -> None:
        self.timestamper = FailoverTimeStamper(timestamp_urls, timeout=timeout) if timestamp_urls else None
        self.trust_roots = list(trust_roots)
        self.other_certs = list(other_certs)
        self.revocation = RevocationCache()

    def sign(self, signed_xml: bytes, backend: KeyBackend, request: XmlSignatureRequest) -> bytes:
        """Return a new envelope with the signer's signature appended; the input is never modified."""
        root, slots, references = open_envelope(signed_xml, request.role)
        sig_id = f"sig-{request.role}"
        signer = xades_signer(request, _method(backend))
        certs = [cx509.load_der_x509_certificate(c.dump()) for c in [backend.certificate, *backend.chain]]
        try:
            signature = signer.sign(
                root,
                key=BackendKey(backend),  # type: ignore[arg-type]
                cert=certs,
                reference_uri=references,
                always_add_key_value=False,
            )
        except KeyBackendError:
            raise
        except Exception as exc:  # signxml raises several kinds; none must leave anything behind
            raise SigningError(f"The XML signature could not be made: {exc}") from exc
        _set_ids(signature, sig_id)
        if self.timestamper is not None:
            token = _add_signature_timestamp(signature, self.timestamper)
            if self.trust_roots:
                _add_validation_data(signature, backend, token, self.trust_roots, self.other_certs, self.revocation)
        slot = etree.SubElement(slots, _q("ChuKy"), VaiTro=request.role)
        slot.append(signature)
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def open_envelope(signed_xml: bytes, role: str) -> tuple[etree._Element, etree._Element, list[str]]:
    """The parsed envelope, its signature slots and what a new signature for ``role`` covers: the data, and the
    previous signature's value (so each signature also seals the ones before it)."""
    root = parse_xml_securely(signed_xml)
    slots = root.find(_q("ChuKySo"))
    if root.tag != _q("VanBanKySo") or slots is None:
        raise SigningError("The XML is not a SealTrail signed-document envelope; build it with envelope() first")
    if root.find(f".//{{{DS_NS}}}Signature[@Id='sig-{role}']") is not None:
        raise SigningError(f"The XML already carries a signature for the role {role}")
    references = [f"#{DATA_ID}"]
    previous = slots.findall(f"{_q('ChuKy')}/{{{DS_NS}}}Signature/{{{DS_NS}}}SignatureValue")
    if previous:
        references.append(f"#{previous[-1].get('Id')}")
    return root, slots, references


def xades_signer(request: XmlSignatureRequest, method: SignatureMethod) -> XAdESSigner:
    """signxml's detached XAdES signer as every SealTrail signature uses it (SHA-256, exclusive c14n)."""
    # SignerRole/ClaimedRoles sits inside SignedProperties: the role id first (what the verifier's signer policy
    # reads), then the title people read; the slot's VaiTro label outside the signature must agree with it.
    roles = list(dict.fromkeys([request.role, request.claimed_role]))
    return InteroperableXAdESSigner(
        claimed_roles=roles,
        data_object_format=XAdESDataObjectFormat(
            Description="Học bạ / văn bằng số (SealTrail)", MimeType="application/xml"
        ),
        method=SignatureConstructionMethod.detached,
        signature_algorithm=method,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )


def _set_ids(signature: etree._Element, sig_id: str) -> None:
    """Give the signature and its SignatureValue stable ids (signxml's own are random); nothing signed refers to
    the Signature's Id except QualifyingProperties/@Target, which is updated with it."""
    old = signature.get("Id")
    signature.set("Id", sig_id)
    signature.find(f"{{{DS_NS}}}SignatureValue").set("Id", f"{sig_id}-value")
    props = signature.find(f".//{{{XADES_NS}}}QualifyingProperties")
    if props is None or props.get("Target") != f"#{old}":
        raise SigningError("unexpected XAdES layout from signxml")
    props.set("Target", f"#{sig_id}")  # QualifyingProperties is not itself signed; only SignedProperties is


def _add_signature_timestamp(signature: etree._Element, timestamper: FailoverTimeStamper) -> cms.ContentInfo:
    value = signature.find(f"{{{DS_NS}}}SignatureValue")
    assert value is not None
    imprint = hashlib.sha256(exc_c14n(value)).digest()
    try:
        token = asyncio.run(timestamper.async_timestamp(imprint, "sha256"))
    except Exception as exc:  # any failure of every TSA: nothing is added, the caller keeps the old document
        raise SigningError(
            f"No timestamp authority answered, so the XML was not signed: {exc}. Try again later.",
            transient=True,
        ) from exc
    props = signature.find(f".//{{{XADES_NS}}}QualifyingProperties")
    assert props is not None
    unsigned = etree.SubElement(props, f"{{{XADES_NS}}}UnsignedProperties")
    usp = etree.SubElement(unsigned, f"{{{XADES_NS}}}UnsignedSignatureProperties")
    sts = etree.SubElement(usp, f"{{{XADES_NS}}}SignatureTimeStamp", Id=f"{signature.get('Id')}-ts")
    etree.SubElement(sts, f"{{{DS_NS}}}CanonicalizationMethod", Algorithm=EXC_C14N)
    encapsulated = etree.SubElement(sts, f"{{{XADES_NS}}}EncapsulatedTimeStamp")
    encapsulated.text = base64.b64encode(token.dump()).decode()
    return token


@dataclass(frozen=True)
class _Revocation:
    """One certificate's path to a trust root with the CRLs and OCSP responses that vouch for it."""

    path: tuple[asn1_x509.Certificate, ...]
    crls: tuple[crl.CertificateList, ...]
    ocsps: tuple[ocsp.OCSPResponse, ...]
    fetched: float  # time.monotonic() when fetched
    expires: datetime  # the earliest nextUpdate among the answers (or fetched + the reuse window)


class RevocationCache:
    """Certificate paths and their OCSP/CRL answers, reused for every signature of a batch within a short window.

    A B-LT signature needs the status of the signer's and the timestamp authority's certificates. In a batch the
    same three signers and one TSA sign every document, so fetching per signature asked the responders the same
    question thousands of times (docs/performance.md). An answer is reused for at most ``reuse_seconds`` and
    never after its own nextUpdate; the signature still embeds the answer it relied on.
    """

    def __init__(self, reuse_seconds: float = REVOCATION_REUSE_SECONDS) -> None:
        self.reuse_seconds = reuse_seconds
        self.fetches = 0
        self._entries: dict[tuple[bytes, ...], _Revocation] = {}
        self._lock = threading.Lock()

    def lookup(
        self,
        cert: asn1_x509.Certificate,
        trust_roots: Sequence[asn1_x509.Certificate],
        other_certs: Sequence[asn1_x509.Certificate],
        fetch_hosts: Sequence[asn1_x509.Certificate],
    ) -> _Revocation:
        key = (cert.sha256, *(root.sha256 for root in trust_roots))
        with self._lock:
            cached = self._entries.get(key)
        if cached is not None and self._fresh(cached):
            return cached
        context = ValidationContext(
            trust_roots=list(trust_roots),
            other_certs=list(other_certs),
            allow_fetching=True,  # our own signers' certificates, from our own CA's responders; never uploaded files
            revocation_mode="require",
            fetcher_backend=signing_fetchers(list(fetch_hosts)),  # hosts on the allow-list
        )
        found = asyncio.run(self._fetch(cert, context))
        with self._lock:
            self.fetches += 1
            self._entries = {k: v for k, v in self._entries.items() if self._fresh(v)}
            self._entries[key] = found
        return found

    def _fresh(self, entry: _Revocation) -> bool:
        return time.monotonic() - entry.fetched < self.reuse_seconds and datetime.now(UTC) < entry.expires

    async def _fetch(self, cert: asn1_x509.Certificate, context: ValidationContext) -> _Revocation:
        fetched, now = time.monotonic(), datetime.now(UTC)
        try:
            path = await CertificateValidator(cert, validation_context=context).async_validate_path()
        finally:
            await context.aclose()
        updates = [c["tbs_cert_list"]["next_update"].native for c in context.crls]
        for response in context.ocsps:
            basic = response["response_bytes"]["response"].parsed
            updates += [r["next_update"].native for r in basic["tbs_response_data"]["responses"]]
        window = now + timedelta(seconds=self.reuse_seconds)
        expires = min([u for u in updates if u is not None] + [window])
        return _Revocation(tuple(path), tuple(context.crls), tuple(context.ocsps), fetched, expires)


def _add_validation_data(
    signature: etree._Element,
    backend: KeyBackend,
    token: cms.ContentInfo,
    trust_roots: list[asn1_x509.Certificate],
    other_certs: list[asn1_x509.Certificate],
    revocation: RevocationCache,
) -> None:
    """XAdES B-LT: CertificateValues and RevocationValues for the signer's and the TSA's certificate paths."""
    tsa_certs = [c.chosen for c in token["content"]["certificates"]]
    known = [*backend.chain, *other_certs, *tsa_certs]
    hosts = [*trust_roots, *other_certs, *backend.chain]
    try:
        signers = (backend.certificate, _tst_signer(token))
        found = [revocation.lookup(cert, trust_roots, known, hosts) for cert in signers]
    except Exception as exc:  # revocation data is required for B-LT: without it nothing is added
        raise SigningError(
            f"The certificate status (OCSP/CRL) could not be obtained, so the XML was not signed: {exc}",
            transient=True,
        ) from exc
    usp = signature.find(f".//{{{XADES_NS}}}UnsignedSignatureProperties")
    assert usp is not None
    _encapsulate(usp, "CertificateValues", "EncapsulatedX509Certificate", _unique(c for f in found for c in f.path))
    revocation_values = etree.SubElement(usp, f"{{{XADES_NS}}}RevocationValues")
    crls = _unique(c for f in found for c in f.crls)
    ocsps = _unique(o for f in found for o in f.ocsps)
    if crls:
        _encapsulate(revocation_values, "CRLValues", "EncapsulatedCRLValue", crls)
    if ocsps:
        _encapsulate(revocation_values, "OCSPValues", "EncapsulatedOCSPValue", ocsps)


def _unique(values: Iterable[Any]) -> list[Any]:
    """DER objects without repeats, in first-seen order."""
    return list({value.dump(): value for value in values}.values())


def _encapsulate(parent: etree._Element, container: str, item: str, values: Sequence[Any]) -> None:
    """<xades:container><xades:item>base64 DER</xades:item>…</xades:container> under ``parent``."""
    holder = etree.SubElement(parent, f"{{{XADES_NS}}}{container}")
    for value in values:
        etree.SubElement(holder, f"{{{XADES_NS}}}{item}").text = base64.b64encode(value.dump()).decode()


def _tst_signer(token: cms.ContentInfo) -> asn1_x509.Certificate:
    signed = token["content"]
    sid = signed["signer_infos"][0]["sid"]
    for choice in signed["certificates"]:
        cert = choice.chosen
        if (
            sid.name == "issuer_and_serial_number"
            and cert.issuer == sid.chosen["issuer"]
            and (cert.serial_number == sid.chosen["serial_number"].native)
        ):
            return cert
    raise SigningError("The timestamp token does not carry its signer's certificate")
