"""PAdES B-LTA: keeping signed PDFs verifiable after certificates expire, with document timestamps.

A B-LT document carries the revocation data its signatures need, but that data is only trustworthy while the
certificates that signed it are. ``extend_to_lta`` adds fresh validation data to the document security store
(DSS) and covers it with a document timestamp in one new incremental revision. Each later extension adds
fresh data for the newest document timestamp and another document timestamp on top (the archive chain), and
has to happen before the newest timestamp's TSA certificate expires; ``needs_renewal`` says when.

As in ``signer.pdf``, the input bytes are never modified and a failure leaves nothing half-written: the new
revision is built in a fresh buffer and only returned when everything worked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from io import BytesIO

from asn1crypto import x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers.pdf_signer import PdfTimeStamper, TimestampDSSContentSettings
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.validation import DocumentSecurityStore, EmbeddedPdfSignature, collect_validation_info
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import CRLValidationError, OCSPValidationError, PathError, ValidationError
from pyhanko_certvalidator.path import ValidationPath

from signer.pdf import FailoverTimeStamper, SigningError, UnreadablePdfError

_MD_ALGORITHM = "sha256"
_CERT_ERRORS = (PathError, ValidationError, CRLValidationError, OCSPValidationError)


def extend_to_lta(
    pdf: bytes,
    *,
    timestamp_urls: Sequence[str],
    trust_roots: Sequence[x509.Certificate],
    other_certs: Sequence[x509.Certificate] = (),
) -> bytes:
    """Return a new PDF with fresh validation data in the DSS and one more document timestamp (PAdES B-LTA).

    The first extension of a B-LT document gathers fresh revocation data for every signature and its signature
    timestamp; later extensions gather it for the newest document timestamp, as PAdES prescribes for the
    archive chain. The certificates involved must still be valid and unrevoked at that moment, so extend a
    document before its signing certificates expire. Raise ``SigningError`` on any failure.
    """
    if not timestamp_urls:
        raise SigningError("No timestamp authority is configured, so the document cannot be archived. Add one.")
    if not trust_roots:
        raise SigningError("No trusted root certificate was given, so the validation data cannot be checked.")
    reader = _read(pdf)
    if not reader.embedded_regular_signatures:
        raise SigningError("The document carries no signature, so there is nothing to preserve. Sign it first.")
    from signer.fetching import signing_fetchers

    context = ValidationContext(
        trust_roots=list(trust_roots),
        other_certs=list(other_certs),
        allow_fetching=True,
        revocation_mode="require",
        fetcher_backend=signing_fetchers([*trust_roots, *other_certs], timestamp_urls),
    )
    try:
        return asyncio.run(_extend(pdf, reader, FailoverTimeStamper(timestamp_urls), context))
    except SigningError:
        raise
    except TimestampRequestError as exc:
        raise SigningError(
            f"The timestamp service could not be reached, so the document was not archived: {exc}. "
            "Check the timestamp authority settings or try again later; the document was not changed.",
            transient=True,
        ) from exc
    except _CERT_ERRORS as exc:
        raise SigningError(
            f"Fresh validation data could not be gathered, so the document was not archived: {exc}. "
            "Check that the OCSP and CRL services are reachable and that the certificates are still valid; "
            "the document was not changed.",
            transient=True,
        ) from exc
    except (PdfError, PyHankoSigningError, ValueError, KeyError, TypeError) as exc:
        raise SigningError(f"The document could not be archived: {exc}. The document was not changed.") from exc
    except OSError as exc:
        raise SigningError(
            f"A network error stopped the archival timestamp: {exc}. Try again later; the document was not changed.",
            transient=True,
        ) from exc


async def _extend(
    pdf: bytes, reader: PdfFileReader, timestamper: FailoverTimeStamper, context: ValidationContext
) -> bytes:
    try:
        paths = await _fresh_paths(reader, context)
        writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
        if paths:
            DocumentSecurityStore.supply_dss_in_writer(writer, None, paths=paths, validation_context=context)
        out = BytesIO()
        # The DSS goes in before the timestamp, in the same revision, so the timestamp covers it. VRI entries
        # are keyed on the new signature's contents and can only be written afterwards, so they are left out;
        # PAdES no longer needs them.
        await PdfTimeStamper(timestamper, field_name=_new_field_name(reader)).async_timestamp_pdf(
            writer,
            _MD_ALGORITHM,
            validation_context=context,
            output=out,
            dss_settings=TimestampDSSContentSettings(include_vri=False, update_before_ts=True),
        )
        return out.getvalue()
    finally:
        await context.aclose()


async def _fresh_paths(reader: PdfFileReader, context: ValidationContext) -> list[ValidationPath]:
    """Validate, now, the certificates whose validation data the new document timestamp will cover."""
    timestamps = reader.embedded_timestamp_signatures
    paths: list[ValidationPath] = []
    if timestamps:
        paths.extend(await collect_validation_info(timestamps[-1], context, skip_timestamp=True))
        return paths
    for sig in reader.embedded_regular_signatures:
        paths.extend(await collect_validation_info(sig, context))
    return paths


def _new_field_name(reader: PdfFileReader) -> str:
    """``archive_timestamp_1``, ``_2``, ... in chain order, skipping any name the document already uses."""
    taken = {name for name, _value, _ref in fields.enumerate_sig_fields(reader)}
    n = len(reader.embedded_timestamp_signatures) + 1
    while f"archive_timestamp_{n}" in taken:
        n += 1
    return f"archive_timestamp_{n}"


def needs_renewal(pdf: bytes, *, within_days: int = 365, now: datetime | None = None) -> bool:
    """True when the PDF has no document timestamp yet, or when the TSA certificate of its newest document
    timestamp expires within ``within_days`` of ``now`` (default: the current time)."""
    if within_days < 0:
        raise ValueError("within_days cannot be negative")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    timestamps = _read(pdf).embedded_timestamp_signatures
    if not timestamps:
        return True
    expires = _tsa_certificate(timestamps[-1]).not_valid_after
    return bool(expires - timedelta(days=within_days) <= now)


def _tsa_certificate(timestamp: EmbeddedPdfSignature) -> x509.Certificate:
    try:
        return timestamp.signer_cert
    except (ValueError, KeyError, TypeError, PdfError) as exc:
        raise SigningError(
            f"The newest document timestamp ({timestamp.field_name}) does not carry its TSA certificate: {exc}. "
            "Extend the document again to add a readable one."
        ) from exc


def _read(pdf: bytes) -> PdfFileReader:
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=False)
        reader.embedded_signatures  # noqa: B018 -- parse the signature fields now, so broken ones fail here
    except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise UnreadablePdfError(
            "Tệp không phải PDF đọc được; kiểm tra đã chọn đúng tệp",
            f"The file is not a readable PDF: {exc}. Check that the right file was given.",
        ) from exc
    return reader
