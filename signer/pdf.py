"""PAdES signing of rendered PDFs through any KeyBackend (pyHanko), up to B-LT.

Each call adds exactly one signature in a new incremental revision, so earlier signatures stay valid. The
output is written to a fresh buffer: the input is never modified, and a signature that fails (dead TSA,
token gone, container too small) leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from io import BytesIO
from zoneinfo import ZoneInfo

import aiohttp
import certifi
from asn1crypto import cms, tsp, x509
from asn1crypto.x509 import GeneralName
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfReadError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import attributes, fields, signers
from pyhanko.sign.ades.api import CAdESSignedAttrSpec, SignerAttrSpec
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.general import as_signing_certificate_v2, simple_cms_attribute
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.stamp import StaticStampStyle
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.registry import SimpleCertificateStore

from errors import SealTrailError
from hsm_adapters.base import KeyBackend, KeyBackendError
from signer._pyhanko_adapter import (
    ImportedPdfBytes,
    ProviderReplacingSigner,
    SharedTlsSession,
    needed_space,
    signing_failure_is_transient,
)
from signer.metrics import TSA_ERRORS
from signer.render import AppearanceRenderer, keep_xmp

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
_FIRST_RESERVATION = 16 * 1024
_MAX_RESERVATION = 256 * 1024
REVOCATION_REUSE_SECONDS = 60.0


@cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every OCSP/CRL/TSA request: building one loads the CA bundle (~0.1-0.2 s each time)."""
    return ssl.create_default_context(cafile=certifi.where())


def _http_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=_tls_context()))


class SigningError(SealTrailError):
    """Signing failed; the document was left as it was. The message says what to do.

    Permanent unless raised with ``transient=True`` (a timestamp, OCSP or CRL service or the key's device did not
    answer); a key backend's error keeps the backend's flag.
    """


class UnreadablePdfError(SigningError):
    """The file given to be signed is not a PDF that can be read (permanent: the same file fails again)."""


class _EncodedSigningCertificateV2(attributes.SigningCertificateV2Provider):
    """The signing-certificate-v2 attribute, encoded once per certificate and then reused as DER.

    pyHanko rebuilds this attribute (ESSCertIDv2 with the issuer's GeneralNames) for every signature, and
    asn1crypto re-encodes the freshly built tree three times while the CMS is assembled; that was over half of
    the signing time in the profile (docs/performance.md). An attribute parsed from DER dumps its cached bytes.
    """

    def __init__(self, signing_cert: x509.Certificate) -> None:
        super().__init__(signing_cert)
        value = as_signing_certificate_v2(signing_cert)
        self._der = simple_cms_attribute(self.attribute_type, value).dump()

    async def get_attribute(self, dry_run: bool = False) -> cms.CMSAttribute:
        return cms.CMSAttribute.load(self._der)


class BackendSigner(ProviderReplacingSigner):
    """pyHanko signer that hashes the signed attributes itself and asks a KeyBackend to sign the digest.

    Built once per key and reused (PadesSigner keeps one per backend): the certificate registry and the
    encoded signing-certificate attribute are computed here, not per document.
    """

    def __init__(self, backend: KeyBackend) -> None:
        registry = SimpleCertificateStore.from_certs([backend.certificate, *backend.chain])
        super().__init__(signing_cert=backend.certificate, cert_registry=registry, embed_roots=True)
        self.backend = backend
        self.replaced_providers = {
            attributes.SigningCertificateV2Provider: _EncodedSigningCertificateV2(backend.certificate)
        }

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        digest = hashlib.new(digest_algorithm, data).digest()
        if dry_run:
            return bytes(512)
        # Called directly, not through a worker thread: sign_pdf runs its own event loop per signature, so
        # there is nothing else to keep responsive, and the thread hop cost ~3 ms per signature.
        return self.backend.sign_digest(digest, digest_algorithm)


class FailoverTimeStamper(TimeStamper):
    """Asks each RFC 3161 timestamp authority in turn until one answers."""

    def __init__(self, urls: Sequence[str], timeout: float = 10) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # pyHanko's TimeStamper.__init__ is unannotated
        if not urls:
            raise ValueError("at least one timestamp authority URL is needed")
        self.urls = list(urls)
        self.timeout = timeout

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        failures: list[str] = []
        # One HTTP session per request, in the running event loop, on the shared TLS context.
        async with _http_session() as session:
            for url in self.urls:
                client = HTTPTimeStamper(url, timeout=self.timeout, session=session)
                try:
                    return await client.async_request_tsa_response(req)
                except Exception as exc:  # any failure of one TSA means: try the next one
                    TSA_ERRORS.labels(url=url).inc()
                    failures.append(f"{url}: {exc.__class__.__name__} {exc}".strip())
        raise TimestampRequestError("no timestamp authority answered (" + "; ".join(failures) + ")")


@dataclass(frozen=True)
class SignatureRequest:
    """What one signer adds to the document."""

    field_name: str
    signer_name: str
    reason: str
    location: str = ""
    lock_document: bool = False
    role: str = ""  # the signer's role (homeroom_teacher, principal, seal); default: from a field named sig_<role>

    @property
    def signed_role(self) -> str:
        """The role this signature claims in its signed attributes (see ``role_attributes``)."""
        return self.role or self.field_name.removeprefix("sig_")


def _field_box(writer: IncrementalPdfFileWriter, field_name: str) -> tuple[float, float] | None:
    """Width and height of an existing empty signature field's widget, if it is visible."""
    for name, _value, ref in fields.enumerate_sig_fields(writer, filled_status=False):
        if name == field_name:
            rect = [float(v) for v in ref.get_object().get("/Rect", [0, 0, 0, 0])]
            w, h = abs(rect[2] - rect[0]), abs(rect[3] - rect[1])
            return (w, h) if w > 1 and h > 1 else None
    return None


def _lock_field(writer: IncrementalPdfFileWriter, field_name: str) -> bool:
    """Make sure an existing empty field locks the document when signed; False when there is no such field.

    A field that already has a lock is left alone. Adding one after other signatures would itself count as a
    suspicious change to those signatures, so a lock is only added to a document nobody has signed yet.
    """
    signed = any(True for _ in fields.enumerate_sig_fields(writer, filled_status=True))
    for name, _value, ref in fields.enumerate_sig_fields(writer, filled_status=False):
        if name == field_name:
            field = ref.get_object()
            if "/Lock" in field or signed:
                return True
            field["/Lock"] = generic.DictionaryObject(
                {
                    generic.NameObject("/Type"): generic.NameObject("/SigFieldLock"),
                    generic.NameObject("/Action"): generic.NameObject("/All"),
                    generic.NameObject("/P"): generic.NumberObject(1),
                }
            )
            writer.update_container(field)
            return True
    return False


def open_for_signing(
    pdf: bytes, request: SignatureRequest
) -> tuple[IncrementalPdfFileWriter, fields.SigFieldSpec | None]:
    """A writer for the next revision of ``pdf`` and, when the request locks the document and the PDF has no such
    field yet, the spec of a new locking field (None otherwise)."""
    try:
        writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    except (PdfReadError, ValueError) as exc:
        raise UnreadablePdfError("Tệp không phải PDF đọc được", f"The file is not a readable PDF: {exc}") from exc
    keep_xmp(writer)
    if not request.lock_document or _lock_field(writer, request.field_name):
        return writer, None
    return writer, fields.SigFieldSpec(
        request.field_name,
        field_mdp_spec=fields.FieldMDPSpec(fields.FieldMDPAction.ALL),
        doc_mdp_update_value=fields.MDPPerm.NO_CHANGES,
    )


ROLE_URI_PREFIX = "urn:sealtrail:role:"


def role_attributes(role: str) -> CAdESSignedAttrSpec:
    """The CAdES ``signer-attributes-v2`` signed attribute claiming ``role`` (an X.509 ``role`` attribute whose
    name is the URI ``urn:sealtrail:role:<role>``). The verifier's signer policy reads the role from here: it is
    covered by the signature, unlike the field name an incremental update could change."""
    value = cms.RoleSyntax({"role_name": GeneralName("uniform_resource_identifier", ROLE_URI_PREFIX + role)})
    claimed = cms.AttCertAttribute({"type": "role", "values": [value]})
    return CAdESSignedAttrSpec(signer_attributes=SignerAttrSpec(claimed_attrs=[claimed], certified_attrs=[]))


def signature_metadata(
    request: SignatureRequest,
    *,
    embed_validation_info: bool,
    validation_context: ValidationContext | None = None,
) -> signers.PdfSignatureMetadata:
    """pyHanko's settings for one PAdES signature (SHA-256) as the request describes it."""
    return signers.PdfSignatureMetadata(
        field_name=request.field_name,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=request.reason,
        location=request.location or None,
        name=request.signer_name,
        embed_validation_info=embed_validation_info,
        validation_context=validation_context,
        docmdp_permissions=fields.MDPPerm.NO_CHANGES if request.lock_document else fields.MDPPerm.FILL_FORMS,
        cades_signed_attr_spec=role_attributes(request.signed_role),
    )


class PadesSigner:
    """Adds PAdES signatures (B-T with a timestamp, B-LT with revocation data in the DSS) to PDFs."""

    def __init__(
        self,
        *,
        trust_roots: Sequence[x509.Certificate],
        timestamp_urls: Sequence[str],
        other_certs: Sequence[x509.Certificate] = (),
        long_term: bool = True,
        initial_reservation: int = _FIRST_RESERVATION,
        revocation_reuse_seconds: float = REVOCATION_REUSE_SECONDS,
    ) -> None:
        self.trust_roots = list(trust_roots)
        self.other_certs = list(other_certs)
        self.timestamper = FailoverTimeStamper(timestamp_urls) if timestamp_urls else None
        self.long_term = long_term
        self.initial_reservation = signature_space(initial_reservation)
        self.revocation_reuse_seconds = revocation_reuse_seconds
        self._local = threading.local()
        self._appearances = AppearanceRenderer()
        self._signers: dict[int, BackendSigner] = {}
        self._stamps: dict[tuple[str, str, float, float], PdfFileReader] = {}

    def _signer_for(self, backend: KeyBackend) -> BackendSigner:
        """One pyHanko signer per key backend, built on first use (the backend object is the key's identity)."""
        signer = self._signers.get(id(backend))
        if signer is None or signer.backend is not backend:
            signer = self._signers[id(backend)] = BackendSigner(backend)
        return signer

    def _validation_context(self) -> ValidationContext:
        """The validation context for B-LT, reused for up to a minute per thread.

        A fresh context per signature fetched the same CRLs and OCSP responses again for every signature and
        opened new HTTP sessions each time (docs/performance.md); within a minute the answers are the same.
        A context is bound to no event loop (its sessions are released after each signature), but it is kept
        per thread, since signatures on different threads run concurrently.
        """
        now = time.monotonic()
        cached = getattr(self._local, "context", None)
        if cached is not None and now - cached[0] < self.revocation_reuse_seconds:
            reused: ValidationContext = cached[1]
            return reused
        from signer.fetching import signing_fetchers

        tsa_urls = self.timestamper.urls if self.timestamper is not None else ()
        context = ValidationContext(
            trust_roots=self.trust_roots,
            other_certs=self.other_certs,
            allow_fetching=True,
            revocation_mode="require",
            fetcher_backend=signing_fetchers(
                [*self.trust_roots, *self.other_certs],
                tsa_urls,
                # pyHanko annotates `session` as a ClientSession, but takes a LazySession too (one per event loop).
                inner=AIOHttpFetcherBackend(session=SharedTlsSession(_http_session)),  # type: ignore[arg-type]
            ),
        )
        self._local.context = (now, context)
        return context

    def sign(self, pdf: bytes, backend: KeyBackend, request: SignatureRequest) -> bytes:
        """Return a new PDF with one more signature; raise SigningError and return nothing on failure.

        A failure drops this thread's reused validation context: it may hold the failed OCSP/CRL fetches of a
        service that was down, and the retry after the service is back must fetch afresh, not wait out the reuse.
        """
        reserved = self.initial_reservation
        while True:
            try:
                return self._sign_once(pdf, backend, request, reserved)
            except PyHankoSigningError as exc:
                needed = needed_space(exc, fallback=2 * _FIRST_RESERVATION)
                if needed is not None and reserved < _MAX_RESERVATION:
                    reserved = signature_space(min(_MAX_RESERVATION, max(reserved * 2, needed + needed // 4)))
                    continue
                self._local.context = None
                raise SigningError(
                    f"Không ký được văn bản ở ô chữ ký {request.field_name}",
                    f"Could not sign the document in field {request.field_name}: {exc}",
                    transient=signing_failure_is_transient(exc),
                ) from exc
            except Exception:
                self._local.context = None
                raise

    def _sign_once(self, pdf: bytes, backend: KeyBackend, request: SignatureRequest, reserved: int) -> bytes:
        writer, new_field = open_for_signing(pdf, request)
        meta = signature_metadata(
            request,
            embed_validation_info=self.long_term,
            validation_context=self._validation_context() if self.long_term else None,
        )
        pdf_signer = signers.PdfSigner(
            meta,
            signer=self._signer_for(backend),
            timestamper=self.timestamper,
            stamp_style=self.stamp_style(writer, request),
            new_field_spec=new_field,
        )
        return self._run(pdf_signer, writer, reserved)

    def stamp_style(self, writer: IncrementalPdfFileWriter, request: SignatureRequest) -> StaticStampStyle | None:
        size = _field_box(writer, request.field_name)
        if size is None:
            return None
        key = (request.signer_name, stamp_time_text(datetime.now(VN_TZ)), *size)
        appearance = self._stamps.get(key)
        if appearance is None:
            # Laying out a stamp with WeasyPrint costs more than the rest of a signature; in a batch the same
            # signer signs many documents within the same minute, and the stamp says nothing finer than that.
            # Only the current minute's stamps are kept, so the cache (and the batch's memory) stays flat.
            for stale in [k for k in self._stamps if k[1] != key[1]]:
                del self._stamps[stale]
            if len(self._stamps) >= 64:
                self._stamps.clear()
            pdf = self._appearances.render(request.signer_name, key[1], *size)
            appearance = self._stamps[key] = PdfFileReader(BytesIO(pdf))
        return StaticStampStyle(background=ImportedPdfBytes(appearance), border_width=0)

    @staticmethod
    def _run(pdf_signer: signers.PdfSigner, writer: IncrementalPdfFileWriter, reserved: int) -> bytes:
        out = BytesIO()
        try:
            pdf_signer.sign_pdf(writer, output=out, bytes_reserved=reserved)
        except KeyBackendError as exc:
            raise SigningError(
                f"{exc} Văn bản không bị thay đổi / the document was not changed.",
                transient=exc.transient,
            ) from exc
        except TimestampRequestError as exc:
            raise SigningError(
                "Không kết nối được dịch vụ cấp dấu thời gian nên văn bản chưa được ký; thử lại sau.",
                f"The timestamp service could not be reached, so the document was not signed: {exc}. "
                "Check the timestamp authority settings or try again later.",
                transient=True,
            ) from exc
        except OSError as exc:
            raise SigningError(
                "Lỗi mạng hoặc thiết bị đã làm dừng việc ký",
                f"A network or device error stopped the signature: {exc}",
                transient=True,
            ) from exc
        return out.getvalue()


def signature_space(size: int) -> int:
    """``size`` rounded up to an even number of bytes: pyHanko reserves the signature container as hex digits in
    pairs and refuses an odd reservation, which a computed retry size (``needed + needed // 4``) can be."""
    return size + size % 2


def stamp_time_text(when: datetime) -> str:
    """'17:06 ngày 23/11/2026' in Vietnam time, as the visible stamp (and the QR page) print it."""
    local = when.astimezone(VN_TZ)
    return f"{local:%H:%M} ngày {local:%d/%m/%Y}"


def signing_time_text(when: datetime) -> str:
    """ISO 8601 in Vietnam time, as printed on electronic copies."""
    return when.astimezone(VN_TZ).isoformat(timespec="seconds")
