"""PAdES signing of rendered PDFs through any KeyBackend (pyHanko), up to B-LT.

Each call adds exactly one signature in a new incremental revision, so earlier signatures stay valid. The
output is written to a fresh buffer: the input is never modified, and a signature that fails (dead TSA,
token gone, container too small) leaves nothing half-written.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from asn1crypto import tsp, x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfReadError
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.stamp import StaticStampStyle
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from hsm_adapters.base import KeyBackend, KeyBackendError
from signer.render import AppearanceRenderer, keep_xmp

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
_FIRST_RESERVATION = 16 * 1024
_MAX_RESERVATION = 256 * 1024


class SigningError(Exception):
    """Signing failed; the document was left as it was. The message says what to do."""


class BackendSigner(signers.Signer):
    """pyHanko signer that hashes the signed attributes itself and asks a KeyBackend to sign the digest."""

    def __init__(self, backend: KeyBackend) -> None:
        registry = SimpleCertificateStore.from_certs([backend.certificate, *backend.chain])
        super().__init__(signing_cert=backend.certificate, cert_registry=registry, embed_roots=True)
        self.backend = backend

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        import hashlib

        digest = hashlib.new(digest_algorithm, data).digest()
        if dry_run:
            return bytes(512)
        return await asyncio.to_thread(self.backend.sign_digest, digest, digest_algorithm)


class FailoverTimeStamper(TimeStamper):
    """Asks each RFC 3161 timestamp authority in turn until one answers."""

    def __init__(self, urls: Sequence[str], timeout: float = 10) -> None:
        super().__init__()
        if not urls:
            raise ValueError("at least one timestamp authority URL is needed")
        self.urls = list(urls)
        self._clients = [HTTPTimeStamper(url, timeout=timeout) for url in self.urls]

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        failures: list[str] = []
        for url, client in zip(self.urls, self._clients, strict=True):
            try:
                return await client.async_request_tsa_response(req)
            except Exception as exc:  # any failure of one TSA means: try the next one
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


def _needed_space(message: str) -> int | None:
    """The size pyHanko says a signature container needed, when it did not fit the space reserved for it."""
    match = re.search(r"contents required (\d+) bytes", message)
    if match:
        return int(match.group(1))
    return 2 * _FIRST_RESERVATION if "not enough space" in message.lower() else None


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
    ) -> None:
        self.trust_roots = list(trust_roots)
        self.other_certs = list(other_certs)
        self.timestamper = FailoverTimeStamper(timestamp_urls) if timestamp_urls else None
        self.long_term = long_term
        self.initial_reservation = initial_reservation
        self._appearances = AppearanceRenderer()

    def _validation_context(self) -> ValidationContext:
        from signer.fetching import signing_fetchers

        tsa_urls = self.timestamper.urls if self.timestamper is not None else ()
        return ValidationContext(
            trust_roots=self.trust_roots,
            other_certs=self.other_certs,
            allow_fetching=True,
            revocation_mode="require",
            fetcher_backend=signing_fetchers([*self.trust_roots, *self.other_certs], tsa_urls),
        )

    def sign(self, pdf: bytes, backend: KeyBackend, request: SignatureRequest) -> bytes:
        """Return a new PDF with one more signature; raise SigningError and return nothing on failure."""
        reserved = self.initial_reservation
        while True:
            try:
                return self._sign_once(pdf, backend, request, reserved)
            except PyHankoSigningError as exc:
                needed = _needed_space(str(exc))
                if needed is not None and reserved < _MAX_RESERVATION:
                    reserved = min(_MAX_RESERVATION, max(reserved * 2, needed + needed // 4))
                    continue
                raise SigningError(f"Could not sign the document in field {request.field_name}: {exc}") from exc

    def _sign_once(self, pdf: bytes, backend: KeyBackend, request: SignatureRequest, reserved: int) -> bytes:
        try:
            writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
        except (PdfReadError, ValueError) as exc:
            raise SigningError(f"The file is not a readable PDF: {exc}") from exc
        keep_xmp(writer)
        new_field = None
        if request.lock_document and not _lock_field(writer, request.field_name):
            new_field = fields.SigFieldSpec(
                request.field_name,
                field_mdp_spec=fields.FieldMDPSpec(fields.FieldMDPAction.ALL),
                doc_mdp_update_value=fields.MDPPerm.NO_CHANGES,
            )
        meta = signers.PdfSignatureMetadata(
            field_name=request.field_name,
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
            reason=request.reason,
            location=request.location or None,
            name=request.signer_name,
            embed_validation_info=self.long_term,
            validation_context=self._validation_context() if self.long_term else None,
            docmdp_permissions=fields.MDPPerm.NO_CHANGES if request.lock_document else fields.MDPPerm.FILL_FORMS,
        )
        with tempfile.TemporaryDirectory(prefix="sealtrail-stamp-") as tmp:
            stamp = self._stamp(writer, request, Path(tmp))
            pdf_signer = signers.PdfSigner(
                meta,
                signer=BackendSigner(backend),
                timestamper=self.timestamper,
                stamp_style=stamp,
                new_field_spec=new_field,
            )
            return self._run(pdf_signer, writer, reserved)

    def _stamp(self, writer: IncrementalPdfFileWriter, request: SignatureRequest, tmp: Path) -> StaticStampStyle | None:
        size = _field_box(writer, request.field_name)
        if size is None:
            return None
        when = signing_time_text(datetime.now(VN_TZ))
        path = tmp / "appearance.pdf"
        path.write_bytes(self._appearances.render(request.signer_name, when, *size))
        return StaticStampStyle.from_pdf_file(str(path), border_width=0)

    @staticmethod
    def _run(pdf_signer: signers.PdfSigner, writer: IncrementalPdfFileWriter, reserved: int) -> bytes:
        out = BytesIO()
        try:
            pdf_signer.sign_pdf(writer, output=out, bytes_reserved=reserved)
        except KeyBackendError as exc:
            raise SigningError(f"{exc} The document was not changed.") from exc
        except TimestampRequestError as exc:
            raise SigningError(
                f"The timestamp service could not be reached, so the document was not signed: {exc}. "
                "Check the timestamp authority settings or try again later."
            ) from exc
        except OSError as exc:
            raise SigningError(f"A network or device error stopped the signature: {exc}") from exc
        return out.getvalue()


def signing_time_text(when: datetime) -> str:
    """ISO 8601 in Vietnam time, as printed on electronic copies."""
    return when.astimezone(VN_TZ).isoformat(timespec="seconds")
