"""Validation of signed PDFs: integrity, trust path, revocation from the document's own LT data, timestamps,
and what changed after each signature. Nothing is fetched from URLs found inside the document.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

from asn1crypto import x509
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESIndeterminate
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import (
    DocumentSecurityStore,
    EmbeddedPdfSignature,
    SignatureCoverageLevel,
    async_validate_pdf_signature,
)
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext

from verifier.reasons import Reason as Reason
from verifier.reasons import Verdict as Verdict

MAX_PDF_BYTES = 50 * 1024 * 1024
EOF_WINDOW = 1024  # the %%EOF marker must be within the last KiB


@dataclass
class SignatureReport:
    field_name: str
    signer: str
    signer_organisation: str
    signing_time: datetime | None
    timestamp_time: datetime | None
    intact: bool
    valid: bool
    trusted: bool
    revoked: bool
    covers: str
    modification_level: str | None
    reasons: list[Reason] = field(default_factory=list)

    @property
    def indication(self) -> Verdict:
        if any(r.code in _INVALID_CODES for r in self.reasons):
            return "invalid"
        if self.reasons:
            return "indeterminate"
        return "valid"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def report_json(report: Any) -> dict[str, Any]:
    """A PDF or XML report as JSON: dates as ISO 8601, the primary reason first, the document and each signature
    with its verdict and its ETSI-style indication and sub-indication (``etsi``, see verifier.wording)."""
    from verifier.wording import etsi, primary_first

    data: dict[str, Any] = _jsonable(asdict(report))
    data["reasons"] = [asdict(r) for r in primary_first(list(report.reasons), report.verdict)]
    data["etsi"] = etsi(report.verdict, report.reasons)
    for sig, obj in zip(data["signatures"], report.signatures, strict=True):
        sig["indication"] = obj.indication
        sig["etsi"] = etsi(obj.indication, obj.reasons)
    return data


@dataclass
class PdfReport:
    verdict: Verdict
    reasons: list[Reason]
    signatures: list[SignatureReport]
    pdfa: str | None = None  # the PDF/A claim in the XMP, e.g. "PDF/A-3B" (a claim, not a conformance check)
    attachments: list[dict[str, Any]] = field(default_factory=list)  # name, relationship, sha256, xsd_valid
    data: bytes | None = None  # the attached XML (XSD-valid) when the signatures are not invalid; not in the JSON

    def to_json(self) -> dict[str, Any]:
        out = report_json(self)
        out.pop("data", None)
        return out


_INVALID_CODES = {
    "HASH_FAILURE",
    "SIG_CRYPTO_FAILURE",
    "REVOKED",
    "MODIFIED_AFTER_SIGNING",
    "FORMAT_FAILURE",
    "SIGNER_POLICY_FAILURE",
}

R_NOT_PDF = ("FORMAT_FAILURE", "Tệp không phải là PDF đọc được", "The file is not a readable PDF")
R_UNCHECKED = ("GENERIC", "Không kiểm tra được tệp này", "This file could not be checked")
R_NO_SIG = ("FORMAT_FAILURE", "Tài liệu không có chữ ký số", "The document carries no digital signature")
R_TOO_BIG = ("FORMAT_FAILURE", "Tệp quá lớn để kiểm tra", "The file is too large to check")
R_HASH = (
    "HASH_FAILURE",
    "Nội dung đã bị thay đổi sau khi ký: chữ ký không còn khớp",
    "The content was changed after signing: the signature no longer matches",
)
R_CRYPTO = ("SIG_CRYPTO_FAILURE", "Chữ ký số không hợp lệ", "The digital signature is not valid")
R_UNTRUSTED = (
    "NO_CERTIFICATE_CHAIN_FOUND",
    "Chứng thư số không thuộc tổ chức chứng thực được tin cậy",
    "The certificate does not chain to a trusted certification authority",
)
R_TS_BROKEN = ("SIG_CRYPTO_FAILURE", "Dấu thời gian bị hỏng", "The timestamp token is broken")
R_TS_UNTRUSTED = (
    "TIMESTAMP_NOT_TRUSTED",
    "Dấu thời gian không do đơn vị cung cấp dịch vụ được tin cậy cấp",
    "The timestamp was not issued by a trusted timestamp authority",
)
R_REVOKED = ("REVOKED", "Chứng thư số đã bị thu hồi", "The signing certificate has been revoked")
R_EXPIRED_NO_POE = (
    "OUT_OF_BOUNDS_NO_POE",
    "Chứng thư số đã hết hạn và tài liệu không có dấu thời gian chứng minh đã ký khi chứng thư còn hiệu lực",
    "The signing certificate has expired and nothing proves the signature was made while it was valid",
)
R_NO_REVINFO = (
    "TRY_LATER",
    "Tài liệu không mang dữ liệu kiểm tra thu hồi (OCSP/CRL) cho chứng thư số; chưa xác định được",
    "The document carries no revocation data (OCSP/CRL) for the certificate; its status cannot be confirmed",
)
R_MODIFIED = (
    "MODIFIED_AFTER_SIGNING",
    "Tài liệu đã bị sửa đổi sau khi ký (ngoài những thay đổi được phép)",
    "The document was modified after signing beyond what is allowed",
)
R_NOT_COVERED = (
    "MODIFIED_AFTER_SIGNING",
    "Có nội dung được thêm vào sau chữ ký cuối cùng",
    "Content was added after the last signature",
)


R_AMBIGUOUS = ("FORMAT_FAILURE", "Cấu trúc tệp không rõ ràng", "The file's structure is ambiguous")
R_TOO_COMPLEX = ("TOO_COMPLEX", "Chưa kiểm tra được", "Not checked")  # the same code as a worker stopped at its limits


R_ATTACHMENT = (
    "ATTACHMENT_NOT_VALID",
    "Dữ liệu XML đính kèm không đúng lược đồ XSD đã công bố",
    "The attached XML data does not match the published XSD",
)


R_MISMATCH = (
    "ATTACHMENT_MISMATCH",
    "Dữ liệu XML đính kèm khác với nội dung hiển thị trên trang",
    "The attached XML data differs from what the pages show",
)
R_PAGE_TEXT = (
    "PAGE_TEXT_UNAVAILABLE",
    "Không đọc được chữ trên trang để đối chiếu với dữ liệu XML đính kèm",
    "The page text could not be read to compare it with the attached XML",
)


def _pdfa_claim(reader: PdfFileReader) -> str | None:
    try:
        xmp = reader.root["/Metadata"].get_object().data.decode("utf-8", "replace")
    except (KeyError, AttributeError, PdfError):
        return None
    part = re.search(r"pdfaid:part(?:>|=\")\s*(\d)", xmp)
    conformance = re.search(r"pdfaid:conformance(?:>|=\")\s*([ABUabu])", xmp)
    return f"PDF/A-{part.group(1)}{conformance.group(1).upper() if conformance else ''}" if part else None


MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # an attached XML larger than this is not inflated (a decompression bomb)


def _bounded_data(stream: Any, limit: int = MAX_ATTACHMENT_BYTES) -> bytes | None:
    """A stream's decoded bytes, inflating at most ``limit`` + 1 bytes; None when it is larger or uses a filter
    other than (one) FlateDecode without predictors. pyHanko's ``.data`` would inflate everything into memory."""
    raw = stream.encoded_data
    filters = stream.get("/Filter")
    if filters is None:
        return raw[: limit + 1] if len(raw) <= limit else None
    names = [str(f) for f in filters] if isinstance(filters, list) else [str(filters)]
    if names != ["/FlateDecode"] or stream.get("/DecodeParms"):
        return None
    try:
        out = zlib.decompressobj().decompress(raw, limit + 1)
    except zlib.error:
        return None
    return out if len(out) <= limit else None


def attachments(reader: PdfFileReader, *, keep_data: bool = False) -> list[dict[str, Any]]:
    """The associated files (PDF/A-3 /AF), each XML one checked against the published XSD (with its bytes under
    ``data`` when ``keep_data``)."""
    from schemas.common import SchemaError
    from schemas.publish import validate_xml

    out: list[dict[str, Any]] = []
    try:
        specs = list(reader.root["/AF"]) if "/AF" in reader.root else []
    except PdfError:
        return out
    for ref in specs[:20]:
        try:
            spec = ref.get_object()
            name = str(spec.get("/UF") or spec.get("/F") or "")
            data = _bounded_data(spec["/EF"]["/F"].get_object())
        except (KeyError, AttributeError, PdfError, ValueError):
            continue
        if data is None:  # too large or in an odd encoding to be our attached XML: it cannot be checked
            out.append({"name": name, "relationship": "", "sha256": None, "xsd_valid": False})
            continue
        item: dict[str, Any] = {
            "name": name,
            "relationship": str(spec.get("/AFRelationship", "")).lstrip("/"),
            "sha256": hashlib.sha256(data).hexdigest(),
            "xsd_valid": None,
        }
        if name.lower().endswith(".xml"):
            try:
                validate_xml(data)
                item["xsd_valid"] = True
            except SchemaError:
                item["xsd_valid"] = False
        if keep_data:
            item["data"] = data
        out.append(item)
    return out


def _page_text_or_error(pdf: bytes) -> str | Exception:
    from verifier.pagetext import PageTextUnavailable, page_text

    try:
        return page_text(pdf)
    except PageTextUnavailable as exc:
        return exc


def _compare_with_pages(xml: bytes, text: str | Exception) -> tuple[Reason | None, Verdict]:
    """The attached XML's key data against the page text (pdftotext): a finding and the verdict it calls for."""
    from schemas.xml import from_xml
    from verifier.pagetext import missing_on_page

    try:
        doc = from_xml(xml)
    except Exception:  # XSD-valid but not readable as a document: already reported as not matching the schema
        return _reason(R_ATTACHMENT), "indeterminate"
    if isinstance(text, Exception):
        logging.getLogger("sealtrail.verify").warning("page text unavailable: %s", text)
        return _reason(R_PAGE_TEXT), "indeterminate"
    missing = missing_on_page(doc, text)
    if not missing:
        return None, "valid"
    shown = ", ".join(missing[:6]) + (f" (+{len(missing) - 6})" if len(missing) > 6 else "")
    return Reason(R_MISMATCH[0], f"{R_MISMATCH[1]}: {shown}", f"{R_MISMATCH[2]}: {shown}"), "invalid"


def _reason(t: tuple[str, str, str]) -> Reason:
    return Reason(*t)


def _name_part(cert: x509.Certificate, key: str) -> str:
    return str(cert.subject.native.get(key, ""))


def _expired(status: PdfSignatureStatus, moment: datetime | None) -> bool:
    """The signer's certificate had expired at the validation moment (default: now)."""
    not_after: datetime = status.signing_cert["tbs_certificate"]["validity"]["not_after"].native
    return not status.trusted and not_after < (moment or datetime.now(UTC))


def _in_validity(ts: Any, moment: datetime | None) -> bool:
    """The timestamp's TSA certificate is within its validity period at the validation moment."""
    validity = ts.signing_cert["tbs_certificate"]["validity"]
    now = moment or datetime.now(UTC)
    return bool(validity["not_before"].native <= now <= validity["not_after"].native)


def _trust_problem(status: PdfSignatureStatus, moment: datetime | None, has_revinfo: bool) -> tuple[str, str, str]:
    """Why a signer's certificate is not trusted, as an ETSI TS 119 102-1 sub-indication."""
    indic = status.trust_problem_indic
    if _expired(status, moment):
        return R_EXPIRED_NO_POE
    if indic in (AdESIndeterminate.TRY_LATER, AdESIndeterminate.REVOCATION_OUT_OF_BOUNDS_NO_POE) or (
        indic is AdESIndeterminate.CERTIFICATE_CHAIN_GENERAL_FAILURE and not has_revinfo
    ):
        return R_NO_REVINFO
    return R_UNTRUSTED


def overall_verdict(indications: Iterable[Verdict]) -> Verdict:
    """One document's verdict from its signatures': any invalid → invalid, else any indeterminate → indeterminate."""
    seen = set(indications)
    return "invalid" if "invalid" in seen else "indeterminate" if "indeterminate" in seen else "valid"


def structure_problem(pdf: bytes) -> Reason | None:
    """Why the file's structure cannot be trusted (verifier.pdfstructure), or what changed after signing beyond
    what is allowed (verifier.pdfpolicy); None when neither."""
    from verifier.pdfpolicy import PolicyViolation, check_after_signatures
    from verifier.pdfstructure import AmbiguousStructure, TooComplex, read_structure

    try:
        check_after_signatures(read_structure(pdf))
    except TooComplex as exc:
        return Reason(R_TOO_COMPLEX[0], f"{R_TOO_COMPLEX[1]}: {exc.vi}", f"{R_TOO_COMPLEX[2]}: {exc.en}")
    except AmbiguousStructure as exc:
        return Reason(R_AMBIGUOUS[0], f"{R_AMBIGUOUS[1]}: {exc.vi}", f"{R_AMBIGUOUS[2]}: {exc.en}")
    except PolicyViolation as exc:
        return Reason(R_MODIFIED[0], f"{R_MODIFIED[1]}: {exc.vi}", f"{R_MODIFIED[2]}: {exc.en}")
    except (TypeError, KeyError, IndexError, AttributeError, ValueError, RecursionError, OverflowError) as exc:
        # a shape the strict reading does not expect (a number where a dictionary belongs, …): not a clean file
        detail = f"{exc.__class__.__name__}"
        return Reason(R_AMBIGUOUS[0], f"{R_AMBIGUOUS[1]} ({detail})", f"{R_AMBIGUOUS[2]} ({detail})")
    return None


class TrustListVerifier:
    """Built once from a trust list (roots are anchors, other certificates only help build paths)."""

    signer_registry: Any = None  # verifier.policy.SignerRegistry, supplied by the deployment (issue #21)
    local_revocation: Any = None  # verifier.revocation.LocalRevocation: CRLs/OCSP known besides the document's

    def _local_revinfo(self) -> tuple[list[Any], list[Any]]:
        return self.local_revocation.get() if self.local_revocation is not None else ([], [])

    def __init__(self, trust_roots: Sequence[x509.Certificate], other_certs: Sequence[x509.Certificate] = ()) -> None:
        if not trust_roots:
            raise ValueError("a verifier needs at least one trusted root certificate")
        self.trust_roots = list(trust_roots)
        self.other_certs = list(other_certs)


class PdfVerifier(TrustListVerifier):
    """Checks signed PDFs offline, from the document's own validation data; called for many documents."""

    def verify(self, pdf: bytes, *, at: datetime | None = None, compare_pages: bool = True) -> PdfReport:
        """Check ``pdf`` as of ``at`` (default: now). A signature whose certificate has expired since is still
        valid when a trusted timestamp proves it was made while the certificate was good (from the LT data).

        ``compare_pages=False`` skips comparing the attached XML with the page text (a pdftotext run), for a file
        the caller already knows to be exactly one it issued."""
        if len(pdf) > MAX_PDF_BYTES:
            return PdfReport("invalid", [_reason(R_TOO_BIG)], [])
        if b"%%EOF" not in pdf[-EOF_WINDOW:]:
            # pyHanko looks for the end marker byte by byte backwards (about 1 s per MB): refuse a file without one
            # near its end (as Acrobat does) instead of letting trailing junk cost minutes of CPU.
            return PdfReport("invalid", [_reason(R_NOT_PDF)], [])
        problem = structure_problem(pdf)
        if problem is not None and problem.code == R_AMBIGUOUS[0]:  # no reading of it can be trusted
            return PdfReport("invalid", [problem], [])
        if problem is not None and problem.code == R_TOO_COMPLEX[0]:  # beyond the bounds: not proven either way
            return PdfReport("indeterminate", [problem], [])
        report = self._verify_readable(pdf, at, compare_pages)
        if problem is not None:  # changed after signing beyond what is allowed: the signatures are still listed
            report.verdict = "invalid"
            report.reasons = [problem, *(r for r in report.reasons if r != problem)]
        return report

    def _verify_readable(self, pdf: bytes, at: datetime | None, compare_pages: bool = True) -> PdfReport:
        try:
            return asyncio.run(self._verify(pdf, at, compare_pages))
        except (PdfError, ValueError, KeyError, TypeError, IndexError, AttributeError):
            # The library's exception names and messages mean nothing to the person who uploaded the file.
            logging.getLogger("sealtrail.verify").info("PDF not readable", exc_info=True)
            return PdfReport("invalid", [_reason(R_NOT_PDF)], [])
        except MemoryError:  # a worker under a memory limit reports this as "too complex" (verifier.isolation)
            raise
        except Exception:  # hostile input can reach corners of the parser nobody lists: never a 500, never "valid"
            logging.getLogger("sealtrail.verify").warning("PDF check failed unexpectedly", exc_info=True)
            return PdfReport("indeterminate", [_reason(R_UNCHECKED)], [])

    async def _verify(self, pdf: bytes, at: datetime | None = None, compare_pages: bool = True) -> PdfReport:
        reader = PdfFileReader(BytesIO(pdf), strict=False)
        sigs = list(reader.embedded_regular_signatures)
        if not sigs:
            return PdfReport("invalid", [_reason(R_NO_SIG)], [])
        kwargs: dict[str, Any] = {
            "trust_roots": self.trust_roots,
            "other_certs": self.other_certs,
            "allow_fetching": False,
            "revocation_mode": "hard-fail",
            "retroactive_revinfo": True,
        }
        if at is not None:
            kwargs["moment"] = at
        kwargs["crls"], kwargs["ocsps"] = self._local_revinfo()  # what the installation or trust bundle knows
        dss = DocumentSecurityStore.read_dss(reader) if "/DSS" in reader.root else None

        def context(moment: datetime | None = None) -> ValidationContext:
            args = dict(kwargs, moment=moment) if moment is not None else kwargs
            return dss.as_validation_context(args) if dss is not None else ValidationContext(**args)

        reports = []
        for index, sig in enumerate(sigs):
            vc = context()
            status = await async_validate_pdf_signature(sig, signer_validation_context=vc, ts_validation_context=vc)
            ts = status.timestamp_validity
            untrusted_now = status.intact and status.valid and not status.trusted and not status.revoked
            if untrusted_now and ts is not None and ts.intact and ts.valid and _in_validity(ts, at):
                # The embedded OCSP responses and CRLs go stale (the dev PKI's OCSP after 10 minutes, real ones
                # after days) and certificates expire, so a B-LT signature cannot be judged "now". The signature
                # timestamp is proof of existence: check the signer's certificate as it stood then, against the
                # revocation data embedded at signing time (ETSI EN 319 102-1, validation with time). The timestamp
                # is judged at its own time too (its TSA certificate must still be in its validity period now);
                # what keeps it checkable for decades is the archive timestamp (B-LTA).
                at_signing = context(ts.timestamp)
                status = await async_validate_pdf_signature(
                    sig, signer_validation_context=at_signing, ts_validation_context=at_signing
                )
            problem = _trust_problem(status, at, dss is not None)
            reports.append(self._report(sig, status, last=index == len(sigs) - 1, trust_problem=problem))
        overall: list[Reason] = []
        verdict = overall_verdict(r.indication for r in reports)
        for r in reports:
            overall.extend(r.reasons)
        pdfa = _pdfa_claim(reader)
        if verdict == "invalid":  # nothing after an invalid verdict: the attachments cannot change it
            return PdfReport(verdict, list(dict.fromkeys(overall)), reports, pdfa)
        attached = attachments(reader, keep_data=True)
        data = [a.pop("data") for a in attached]
        if any(a["xsd_valid"] is False for a in attached):
            overall.append(_reason(R_ATTACHMENT))
            if verdict == "valid":
                verdict = "indeterminate"
        xmls = [d for a, d in zip(attached, data, strict=True) if a["xsd_valid"]]
        # a broken signature is the one reason; the signer policy speaks only about sound signatures
        policy_reasons = self._policy(sigs, reports, xmls[0] if xmls else None)
        if policy_reasons:
            overall.extend(policy_reasons)
            verdict = "invalid"
        if xmls and compare_pages and verdict != "invalid":
            # The page text (a pdftotext subprocess, the costliest step) only once the signatures are known not to
            # be invalid, and only when the caller does not already know the file to be exactly one it issued.
            finding, worst = _compare_with_pages(xmls[0], _page_text_or_error(pdf))
            if finding is not None:
                overall.append(finding)
                verdict = worst if worst == "invalid" or verdict == "valid" else verdict
        keep = xmls[0] if xmls and verdict != "invalid" else None
        return PdfReport(verdict, list(dict.fromkeys(overall)), reports, pdfa, attached, keep)

    def _policy(
        self, sigs: Sequence[EmbeddedPdfSignature], reports: Sequence[SignatureReport], xml: bytes | None
    ) -> list[Reason]:
        """The signer policy (verifier.policy) for the document kind its attached XML names: roles from the
        signed CAdES attribute (or, for older documents, the field name of the signed revision), identities."""
        from verifier import policy

        kind, issuer = policy.kind_and_issuer(xml) if xml is not None else (None, None)
        signed: list[policy.SignedRole] = []
        for sig, report in zip(sigs, reports, strict=True):
            field_role = sig.field_name.removeprefix("sig_") if sig.field_name.startswith("sig_") else None
            claimed = policy.role_from_claims(policy.cades_claimed_roles(sig.signer_info))
            when = report.timestamp_time or report.signing_time
            if claimed is not None:
                signed.append(policy.SignedRole(claimed, sig.signer_cert, when, label=field_role))
            else:
                role = field_role if field_role in policy.ROLE_NAMES else None
                signed.append(policy.SignedRole(role, sig.signer_cert, when, role_from_field_name=role is not None))
        return policy.check(kind, signed, issuer=issuer, registry=self.signer_registry)

    def _report(
        self, sig: EmbeddedPdfSignature, status: PdfSignatureStatus, *, last: bool, trust_problem: tuple[str, str, str]
    ) -> SignatureReport:
        cert = status.signing_cert
        reasons: list[Reason] = []
        if not status.intact:
            reasons.append(_reason(R_HASH))
        elif not status.valid:
            reasons.append(_reason(R_CRYPTO))
        if status.revoked:
            reasons.append(_reason(R_REVOKED))
        elif not status.trusted:
            reasons.append(_reason(trust_problem))
        level = status.modification_level
        allowed = ModificationLevel.LTA_UPDATES if last else ModificationLevel.FORM_FILLING
        if (level is not None and level > allowed) or (not status.docmdp_ok and level is not None):
            reasons.append(_reason(R_MODIFIED))
        if last and status.coverage < SignatureCoverageLevel.ENTIRE_REVISION:
            reasons.append(_reason(R_NOT_COVERED))
        ts = status.timestamp_validity
        if ts is not None and not (ts.intact and ts.valid):
            reasons.append(_reason(R_TS_BROKEN))
        elif ts is not None and not ts.trusted:
            reasons.append(_reason(R_TS_UNTRUSTED))
        return SignatureReport(
            field_name=sig.field_name,
            signer=_name_part(cert, "common_name"),
            signer_organisation=_name_part(cert, "organization_name"),
            signing_time=status.signer_reported_dt,
            timestamp_time=ts.timestamp if ts is not None else None,
            intact=bool(status.intact),
            valid=bool(status.valid),
            trusted=bool(status.trusted),
            revoked=bool(status.revoked),
            covers=status.coverage.name if status.coverage is not None else "UNCLEAR",
            modification_level=level.name if level is not None else None,
            reasons=list(dict.fromkeys(reasons)),
        )
