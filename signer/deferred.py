"""Two-step (deferred) signing: prepare a PDF/XML signature now, embed a signature made elsewhere later.

The server holds no key for these signers: their keys live on a USB token (signed through ``sealtrail agent``)
or with a remote signing service (CSC API). Step one computes exactly what must be signed and keeps the prepared
bytes; step two checks the returned signature against the registered certificate and the digest, then embeds,
timestamps and extends it to B-LT. Nothing here touches the database; see ``workflow.signing``.

PDF: pyHanko's interrupted signing (``PdfSigner.async_digest_doc_for_signing`` with an ``ExternalSigner``). The
signed attributes are computed at preparation time and stored; the device signs SHA-256(signed attributes).
pyHanko keeps the LT data of the pre-signing check only in memory (pyHanko#438: lost when resuming in another
process), so validation data is not collected at preparation at all: after the CMS is filled in (with its
signature timestamp), the OCSP/CRL data for the signer and the TSA is fetched and written in a DSS revision.

XML: signxml builds the complete XAdES ``ds:Signature`` with a placeholder ``SignatureValue``; the device signs
SHA-256(exclusive-C14N(SignedInfo)). Finishing puts the value in and adds the timestamp and validation data.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from asn1crypto import cms, x509
from cryptography import x509 as cx509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from lxml import etree
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.signers.pdf_byterange import PreparedByteRangeDigest
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.signers.pdf_signer import PdfTBSDocument
from pyhanko.sign.validation.dss import async_add_validation_info
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from hsm_adapters.base import KeyBackendError, SignatureMechanism
from schemas.envelope import DS_NS, exc_c14n
from schemas.envelope import q as _q
from schemas.xml import parse_xml_securely
from signer._pyhanko_adapter import failure_is_transient
from signer.pdf import PadesSigner, SignatureRequest, SigningError, open_for_signing, signature_metadata
from signer.xades import (
    XadesSigner,
    XmlSignatureRequest,
    _add_signature_timestamp,
    _add_validation_data,
    _method,
    _set_ids,
    open_envelope,
    xades_signer,
)

DIGEST_ALGORITHM = "sha256"
# The CMS (with signature timestamp and certificates) must fit at finishing time, when it is too late to grow the
# container without asking the signer again; 48 KiB of hex (24 KiB of DER) is several times what it needs.
DEFERRED_RESERVATION = 48 * 1024


class StaleSignatureError(SigningError):  # permanent: prepare again
    """The returned signature does not belong to what was prepared (wrong key, wrong digest, changed document)."""


@dataclass(frozen=True)
class SignerIdentity:
    """A signer's certificate (and CA chain) as registered with the server; no key."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def cert_sha256(self) -> str:
        return hashlib.sha256(self.certificate.dump()).hexdigest()

    @property
    def mechanism(self) -> SignatureMechanism:
        algo = self.certificate.public_key.algorithm
        return SignatureMechanism.RSA_PKCS1V15 if algo == "rsa" else SignatureMechanism.ECDSA

    # Enough of KeyBackend for signxml's algorithm choice and for the XAdES B-LT path building.
    @property
    def label(self) -> str:
        return str(self.certificate.subject.native.get("common_name", "signer"))


def check_signature(identity: SignerIdentity, digest: bytes, signature: bytes) -> None:
    """Raise StaleSignatureError unless ``signature`` is the registered key's signature over ``digest``."""
    public = cx509.load_der_x509_certificate(identity.certificate.dump()).public_key()
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        else:
            raise StaleSignatureError("Khoá chưa hỗ trợ / unsupported key type")
    except InvalidSignature:
        raise StaleSignatureError(
            "Chữ ký không khớp với chứng thư số đã đăng ký hoặc với tài liệu đang chờ ký "
            "/ the signature does not match the registered certificate or the prepared digest"
        ) from None


@dataclass(frozen=True)
class PreparedPdf:
    """A PDF waiting for one external signature. ``to_sign`` is SHA-256 of the DER signed attributes."""

    prepared: bytes
    document_digest: bytes
    region_start: int
    region_end: int
    signed_attrs: bytes

    @property
    def to_sign(self) -> bytes:
        return hashlib.sha256(self.signed_attrs).digest()

    def state(self) -> dict[str, Any]:
        """What must be kept (besides the prepared bytes) to finish later, as JSON."""
        return {
            "document_digest": self.document_digest.hex(),
            "region_start": self.region_start,
            "region_end": self.region_end,
            "signed_attrs": base64.b64encode(self.signed_attrs).decode(),
        }

    @classmethod
    def from_state(cls, prepared: bytes, state: dict[str, Any]) -> PreparedPdf:
        return cls(
            prepared,
            bytes.fromhex(state["document_digest"]),
            int(state["region_start"]),
            int(state["region_end"]),
            base64.b64decode(state["signed_attrs"]),
        )


def byte_range_digest(prepared: bytes, start: int, end: int) -> bytes:
    """SHA-256 over the prepared PDF without its reserved /Contents hole (what the signed attributes commit to)."""
    return hashlib.sha256(prepared[:start] + prepared[end:]).digest()


def pdf_message_digest(signed_attrs: bytes) -> bytes:
    """The message-digest attribute inside DER signed attributes."""
    attrs = cms.CMSAttributes.load(signed_attrs)
    for attr in attrs:
        if attr["type"].native == "message_digest":
            return bytes(attr["values"][0].native)
    raise ValueError("no message-digest attribute")


class DeferredPades:
    """Interrupted PAdES signing on top of a configured PadesSigner (same TSA, trust roots, appearance)."""

    def __init__(self, pades: PadesSigner) -> None:
        self.pades = pades

    def prepare(self, pdf: bytes, identity: SignerIdentity, request: SignatureRequest) -> PreparedPdf:
        return asyncio.run(self._prepare(pdf, identity, request))

    async def _prepare(self, pdf: bytes, identity: SignerIdentity, request: SignatureRequest) -> PreparedPdf:
        writer, new_field = open_for_signing(pdf, request)
        # Validation data is added after the signature comes back (see the module docstring).
        meta = signature_metadata(request, embed_validation_info=False)
        external = _external(identity, None)
        stamp = self.pades.stamp_style(writer, request)
        pdf_signer = signers.PdfSigner(meta, signer=external, stamp_style=stamp, new_field_spec=new_field)
        prep, _tbs, output = await pdf_signer.async_digest_doc_for_signing(writer, bytes_reserved=DEFERRED_RESERVATION)
        attrs = await external.signed_attrs(
            prep.document_digest,
            DIGEST_ALGORITHM,
            PdfCMSSignedAttributes(cades_signed_attrs=meta.cades_signed_attr_spec),  # the signed role
            use_pades=True,
        )
        assert isinstance(output, BytesIO)  # pyHanko's digest step writes into a fresh in-memory buffer
        return PreparedPdf(
            output.getvalue(), prep.document_digest, prep.reserved_region_start, prep.reserved_region_end, attrs.dump()
        )

    def finish(self, prepared: PreparedPdf, identity: SignerIdentity, signature: bytes) -> bytes:
        """The signed PDF at B-LT; raises (and returns nothing) if the signature or the document does not match."""
        if (
            byte_range_digest(prepared.prepared, prepared.region_start, prepared.region_end)
            != (prepared.document_digest)
            or pdf_message_digest(prepared.signed_attrs) != prepared.document_digest
        ):
            raise StaleSignatureError("Tài liệu đã thay đổi từ khi chuẩn bị ký / the document changed since preparing")
        check_signature(identity, prepared.to_sign, signature)
        try:
            return asyncio.run(self._finish(prepared, identity, signature))
        except SigningError:
            raise
        except Exception as exc:  # TSA or OCSP unreachable, container too small: nothing is returned
            raise SigningError(
                f"Could not finish the PDF signature: {exc.__class__.__name__} {exc}",
                transient=failure_is_transient(exc),
            ) from exc

    async def _finish(self, prepared: PreparedPdf, identity: SignerIdentity, signature: bytes) -> bytes:
        external = _external(identity, signature)
        cms_obj = await external.async_sign_prescribed_attributes(
            DIGEST_ALGORITHM,
            signed_attrs=cms.CMSAttributes.load(prepared.signed_attrs),
            timestamper=self.pades.timestamper,
        )
        out = BytesIO(prepared.prepared)
        digest = PreparedByteRangeDigest(prepared.document_digest, prepared.region_start, prepared.region_end)
        await PdfTBSDocument.async_finish_signing(out, digest, cms_obj)
        if not self.pades.long_term:
            return out.getvalue()
        reader = PdfFileReader(out, strict=False)
        embedded = reader.embedded_regular_signatures[-1]
        context = ValidationContext(
            trust_roots=self.pades.trust_roots,
            other_certs=[*self.pades.other_certs, *identity.chain],
            allow_fetching=True,
            revocation_mode="require",
        )
        result = BytesIO()
        try:
            await async_add_validation_info(embedded, context, output=result)
        finally:
            await context.aclose()
        return result.getvalue()


def _external(identity: SignerIdentity, signature: bytes | None) -> signers.ExternalSigner:
    registry = SimpleCertificateStore.from_certs([identity.certificate, *identity.chain])
    size = identity.certificate.public_key.byte_size if identity.mechanism is SignatureMechanism.RSA_PKCS1V15 else 72
    return signers.ExternalSigner(
        identity.certificate, registry, signature_value=signature if signature is not None else size, embed_roots=True
    )


@dataclass(frozen=True)
class PreparedXml:
    """A signed-XML envelope carrying one signature with an empty SignatureValue; ``to_sign`` is what gets signed."""

    prepared: bytes
    role: str
    to_sign: bytes


class _CapturingKey:
    """Looks like a private key to signxml: keeps the digest of SignedInfo and returns a placeholder value."""

    def __init__(self, identity: SignerIdentity) -> None:
        self._public = cx509.load_der_x509_certificate(identity.certificate.dump()).public_key()
        self.digest: bytes | None = None

    @property
    def key_size(self) -> int:
        return self._public.key_size  # type: ignore[union-attr]

    def public_key(self) -> Any:
        return self._public

    def sign(self, data: bytes, *args: Any, **kwargs: Any) -> bytes:
        self.digest = hashlib.sha256(data).digest()
        if isinstance(self._public, rsa.RSAPublicKey):
            return bytes(self._public.key_size // 8)
        return utils.encode_dss_signature(1, 1)


def _signature(root: etree._Element, role: str) -> etree._Element:
    node = root.find(f".//{{{DS_NS}}}Signature[@Id='sig-{role}']")
    if node is None:
        raise StaleSignatureError(f"Không có chữ ký đang chờ cho vai trò {role} / no prepared signature for {role}")
    return node


class DeferredXades:
    """Interrupted XAdES signing on top of a configured XadesSigner (same TSA, trust roots)."""

    def __init__(self, xades: XadesSigner) -> None:
        self.xades = xades

    def prepare(self, signed_xml: bytes, identity: SignerIdentity, request: XmlSignatureRequest) -> PreparedXml:
        root, slots, references = open_envelope(signed_xml, request.role)
        signer = xades_signer(request, _method(identity))  # type: ignore[arg-type]
        key = _CapturingKey(identity)
        certs = [cx509.load_der_x509_certificate(c.dump()) for c in [identity.certificate, *identity.chain]]
        try:
            signature = signer.sign(root, key=key, cert=certs, reference_uri=references, always_add_key_value=False)  # type: ignore[arg-type]
        except Exception as exc:
            raise SigningError(f"The XML signature could not be prepared: {exc}") from exc
        _set_ids(signature, f"sig-{request.role}")
        slot = etree.SubElement(slots, _q("ChuKy"), VaiTro=request.role)
        slot.append(signature)
        prepared = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        to_sign = signed_info_digest(prepared, request.role)
        if to_sign != key.digest:  # what signxml signed must be what any verifier will recompute
            raise SigningError("SignedInfo canonicalises differently inside the document; refusing to prepare")
        return PreparedXml(prepared, request.role, to_sign)

    def finish(self, prepared: PreparedXml, identity: SignerIdentity, signature: bytes) -> bytes:
        if signed_info_digest(prepared.prepared, prepared.role) != prepared.to_sign:
            raise StaleSignatureError("Tài liệu XML đã thay đổi / the XML changed since preparing")
        check_signature(identity, prepared.to_sign, signature)
        root = parse_xml_securely(prepared.prepared)
        node = _signature(root, prepared.role)
        value = node.find(f"{{{DS_NS}}}SignatureValue")
        assert value is not None
        raw = signature
        if identity.mechanism is SignatureMechanism.ECDSA:  # XML-DSig wants r||s, tokens give DER
            r, s = utils.decode_dss_signature(signature)
            size = (identity.certificate.public_key.bit_size + 7) // 8
            raw = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        value.text = base64.b64encode(raw).decode()
        if self.xades.timestamper is not None:
            token = _add_signature_timestamp(node, self.xades.timestamper)
            if self.xades.trust_roots:
                _add_validation_data(
                    node,
                    _CertOnly(identity),
                    token,
                    self.xades.trust_roots,
                    self.xades.other_certs,
                    self.xades.revocation,
                )
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


class _CertOnly:
    """The certificate side of a KeyBackend, for code that only needs the certificate path."""

    def __init__(self, identity: SignerIdentity) -> None:
        self.certificate = identity.certificate
        self.chain = list(identity.chain)
        self.mechanism = identity.mechanism
        self.label = identity.label

    def sign_digest(self, digest: bytes, digest_algorithm: str) -> bytes:
        raise KeyBackendError("this signer's key is not held by the server")


def signed_info_digest(prepared_xml: bytes, role: str) -> bytes:
    """SHA-256 of the exclusive C14N of the prepared signature's SignedInfo (what the signer's key signs)."""
    root = parse_xml_securely(prepared_xml)
    signed_info = _signature(root, role).find(f"{{{DS_NS}}}SignedInfo")
    if signed_info is None:
        raise StaleSignatureError("no SignedInfo")
    return hashlib.sha256(exc_c14n(signed_info)).digest()
