"""Checking a W3C Verifiable Credential secured as a compact JWS (application/vc+jwt), online or offline.

Three things make the verdict, fail-closed like every other check here:
- the signature, by the certificate in the JWS ``x5c`` header, whose path must reach the trust list;
- the status: the credential's BitstringStatusListEntry looked up in the issuer's signed status list (from this
  installation when online, from the trust bundle's snapshot when offline). Set → invalid; no list → indeterminate;
- the ledger link: the issue entry named in the evidence must be the document's (same id and hashes) and must be
  proven in the public log (inclusion proof against a signed checkpoint) — else indeterminate, or invalid when it
  contradicts the credential.
A status list URL found in a credential is never fetched: it only names which list to take from a trusted source.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from asn1crypto import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509 import load_der_x509_certificate
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import PathError, RevokedError, ValidationError

from errors import PermanentError
from ledger.entry import Entry, EntryError
from schemas.statuslist import PURPOSE, StatusListError, bit, decode, name_from_url
from verifier.pdf import Reason, Verdict

MAX_JWT = 4 * 1024 * 1024
_ALGS = {
    "RS256": ("rsa", hashes.SHA256),
    "ES256": ("ec", hashes.SHA256),
    "ES384": ("ec", hashes.SHA384),
}

# (code, vi, en)
R_MALFORMED = ("FORMAT_FAILURE", "Tệp không phải chứng chỉ số (JWS) hợp lệ", "Not a well-formed credential (JWS)")
R_BAD_SIGNATURE = ("SIG_CRYPTO_FAILURE", "Chữ ký của chứng chỉ số không đúng", "The credential's signature is wrong")
R_UNTRUSTED = (
    "NO_CERTIFICATE_CHAIN_FOUND",
    "Chứng thư ký không thuộc danh sách tin cậy",
    "The signing certificate does not chain to a trusted root",
)
R_CERT_REVOKED = ("REVOKED", "Chứng thư số đã bị thu hồi", "The signing certificate has been revoked")
R_SCHEMA = ("FORMAT_FAILURE", "Chứng chỉ số sai cấu trúc: {}", "The credential does not match its schema: {}")
R_REVOKED = ("DOCUMENT_REVOKED", "Văn bản đã bị thu hồi hoặc thay thế", "The document has been revoked or superseded")
R_NO_STATUS = (
    "STATUS_UNAVAILABLE",
    "Không có danh sách trạng thái đáng tin cậy cho chứng chỉ này; chưa xác định được",
    "No trusted status list for this credential is available; its status is unknown",
)
R_BAD_STATUS_LIST = (
    "STATUS_UNAVAILABLE",
    "Danh sách trạng thái không kiểm chứng được: {}",
    "The status list could not be verified: {}",
)
R_NO_LEDGER = (
    "LOG_UNAVAILABLE",
    "Chưa kiểm chứng được mục ghi trong sổ cái công khai",
    "The public log entry could not be proven",
)
R_LEDGER_MISMATCH = (
    "LEDGER_MISMATCH",
    "Mục ghi sổ cái không khớp với chứng chỉ: {}",
    "The ledger entry does not match the credential: {}",
)


class JwsError(PermanentError, ValueError):
    """A compact JWS is malformed or its signature does not verify."""


class JwsSignatureInvalid(JwsError):
    """A well-formed compact JWS whose signature does not verify."""


def _b64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise JwsError("a JWS part is not base64url") from exc


@dataclass(frozen=True)
class OpenedJws:
    header: dict[str, Any]
    payload: dict[str, Any]
    certificate: x509.Certificate
    chain: list[x509.Certificate]


def open_jws(token: str) -> OpenedJws:
    """Parse a compact JWS and check its signature with the key of its ``x5c`` certificate (trust comes later)."""
    if len(token) > MAX_JWT:
        raise JwsError("the credential is too large")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise JwsError("a compact JWS has three dot-separated parts")
    try:
        header = json.loads(_b64url(parts[0]))
        payload = json.loads(_b64url(parts[1]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise JwsError("the JWS header or payload is not JSON") from exc
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise JwsError("the JWS header and payload must be JSON objects")
    alg = header.get("alg")
    if alg not in _ALGS:
        raise JwsError(f"unsupported JWS algorithm {alg!r}")
    if header.get("typ") not in ("vc+jwt", "application/vc+jwt") or "crit" in header:
        raise JwsError("the JWS is not typed vc+jwt")
    x5c = header.get("x5c")
    if not isinstance(x5c, list) or not x5c or not all(isinstance(c, str) for c in x5c):
        raise JwsError("the JWS header carries no x5c certificate chain")
    try:
        certs = [x509.Certificate.load(base64.b64decode(c, validate=True)) for c in x5c]
        public_key = load_der_x509_certificate(certs[0].dump()).public_key()
    except (ValueError, binascii.Error) as exc:
        raise JwsError("the x5c certificates cannot be read") from exc
    kind, digest = _ALGS[alg]
    signature = _b64url(parts[2])
    signing_input = f"{parts[0]}.{parts[1]}".encode()
    try:
        if kind == "rsa" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, signing_input, padding.PKCS1v15(), digest())
        elif kind == "ec" and isinstance(public_key, ec.EllipticCurvePublicKey):
            size = len(signature) // 2
            der = encode_dss_signature(int.from_bytes(signature[:size]), int.from_bytes(signature[size:]))
            public_key.verify(der, signing_input, ec.ECDSA(digest()))
        else:
            raise JwsError(f"the certificate's key does not match the algorithm {alg}")
    except InvalidSignature as exc:
        raise JwsSignatureInvalid("the signature does not verify") from exc
    return OpenedJws(header, payload, certs[0], certs[1:])


def _name(cert: x509.Certificate) -> str:
    return str(cert.subject.native.get("common_name", cert.subject.human_friendly))


@dataclass
class VcReport:
    verdict: Verdict
    types: list[str] = field(default_factory=list)
    document_id: str | None = None
    issuer: str | None = None
    signer: str | None = None
    signature_valid: bool = False
    trusted: bool = False
    status: str = "unknown"  # "active" | "revoked" | "unknown"
    status_list_valid_from: str | None = None
    ledger: str = "unknown"  # "proven" | "mismatch" | "unknown"
    reasons: list[Reason] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["reasons"] = [asdict(r) for r in self.reasons]
        return out


StatusSource = Callable[[str], str | None]
"""Returns the signed status list credential (compact JWS) for a list URL, or None when it is not available."""
LedgerCheck = Callable[[dict[str, Any], Entry], bool | None]
"""Given the evidence and its parsed entry: True when proven in the log, False when the log contradicts it,
None when it cannot be checked now."""
SchemaCheck = Callable[[dict[str, Any]], list[str]]


def _reason(template: tuple[str, str, str], detail: str = "") -> Reason:
    code, vi, en = template
    return Reason(code, vi.format(detail), en.format(detail))


def _types(obj: dict[str, Any]) -> list[str]:
    value = obj.get("type", [])
    return [value] if isinstance(value, str) else [str(t) for t in value] if isinstance(value, list) else []


def _issuer_id(obj: dict[str, Any]) -> str | None:
    issuer = obj.get("issuer")
    return issuer.get("id") if isinstance(issuer, dict) else issuer if isinstance(issuer, str) else None


class VcVerifier:
    """Built once from a trust list and the status/ledger sources; ``verify`` is called for many credentials."""

    def __init__(
        self,
        trust_roots: Sequence[x509.Certificate],
        intermediates: Sequence[x509.Certificate],
        status_source: StatusSource,
        ledger_check: LedgerCheck,
        schema_check: SchemaCheck | None = None,
    ) -> None:
        self.trust_roots = list(trust_roots)
        self.intermediates = list(intermediates)
        self.status_source = status_source
        self.ledger_check = ledger_check
        self.schema_check = schema_check

    def _trusted(self, opened: OpenedJws) -> Reason | None:
        context = ValidationContext(
            trust_roots=self.trust_roots,
            other_certs=[*self.intermediates, *opened.chain],
            allow_fetching=False,
            revocation_mode="soft-fail",
        )
        validator = CertificateValidator(opened.certificate, validation_context=context)
        try:
            asyncio.run(validator.async_validate_usage({"digital_signature"}))
        except RevokedError:
            return _reason(R_CERT_REVOKED)
        except (PathError, ValidationError, ValueError):
            return _reason(R_UNTRUSTED)
        return None

    def verify(self, data: bytes | str) -> VcReport:
        report = VcReport("invalid")
        try:
            token = data.decode() if isinstance(data, bytes) else data
            opened = open_jws(token)
        except (JwsError, UnicodeDecodeError) as exc:
            report.reasons.append(_reason(R_MALFORMED) if not isinstance(exc, JwsError) else self._jws_reason(exc))
            return report
        vc = opened.payload
        report.signature_valid = True
        report.signer = _name(opened.certificate)
        report.types = _types(vc)
        report.issuer = _issuer_id(vc)
        problem = self._trusted(opened)
        if problem is not None:
            report.reasons.append(problem)
            report.verdict = "invalid" if problem.code == "REVOKED" else "indeterminate"
            return report
        report.trusted = True
        if self.schema_check is not None:
            errors = self.schema_check(vc)
            if errors:
                report.reasons.append(_reason(R_SCHEMA, "; ".join(errors[:5])))
                return report
        status = self._status(vc, report)
        ledger = self._ledger(vc, report)
        if status is False or ledger is False:
            report.verdict = "invalid"
        elif status is None or ledger is None:
            report.verdict = "indeterminate"
        else:
            report.verdict = "valid"
        return report

    @staticmethod
    def _jws_reason(exc: JwsError) -> Reason:
        if isinstance(exc, JwsSignatureInvalid):
            return _reason(R_BAD_SIGNATURE)
        return Reason(R_MALFORMED[0], f"{R_MALFORMED[1]}: {exc}", f"{R_MALFORMED[2]}: {exc}")

    def _status(self, vc: dict[str, Any], report: VcReport) -> bool | None:
        """True: not revoked; False: revoked; None: unknown."""
        entries = vc.get("credentialStatus")
        entries = entries if isinstance(entries, list) else [entries] if isinstance(entries, dict) else []
        entry = next(
            (
                e
                for e in entries
                if isinstance(e, dict)
                and e.get("type") == "BitstringStatusListEntry"
                and e.get("statusPurpose") == PURPOSE
            ),
            None,
        )
        if entry is None:
            report.reasons.append(_reason(R_NO_STATUS))
            return None
        url = str(entry.get("statusListCredential", ""))
        try:
            index = int(str(entry.get("statusListIndex")))
        except ValueError:
            report.reasons.append(_reason(R_BAD_STATUS_LIST, "statusListIndex"))
            return None
        token = self.status_source(url)
        if token is None:
            report.reasons.append(_reason(R_NO_STATUS))
            return None
        try:
            listing = self.open_status_list(token, url=url, issuer=_issuer_id(vc))
            revoked = bit(decode(str(listing["credentialSubject"].get("encodedList", ""))), index)
        except (JwsError, StatusListError) as exc:
            report.reasons.append(_reason(R_BAD_STATUS_LIST, str(exc)))
            return None
        report.status_list_valid_from = str(listing.get("validFrom", "")) or None
        report.status = "revoked" if revoked else "active"
        if revoked:
            report.reasons.append(_reason(R_REVOKED))
            return False
        return True

    def open_status_list(
        self, token: str, *, url: str | None = None, name: str | None = None, issuer: str | None = None
    ) -> dict[str, Any]:
        """A status list credential whose signature and certificate path check out and which is the expected list
        (by exact URL, or by list name when the host is not known, as for a file checked offline)."""
        opened = open_jws(token)
        problem = self._trusted(opened)
        if problem is not None:
            raise StatusListError(problem.en)
        listing = opened.payload
        subject = listing.get("credentialSubject")
        if not isinstance(subject, dict) or "BitstringStatusListCredential" not in _types(listing):
            raise StatusListError("it is not a BitstringStatusListCredential")
        if subject.get("statusPurpose") != PURPOSE:
            raise StatusListError("it is not a revocation list")
        if url is not None and listing.get("id") != url:
            raise StatusListError("it is not the list the credential names")
        if name is not None and name_from_url(str(listing.get("id", ""))) != (name, PURPOSE):
            raise StatusListError(f"it is not the list {name}")
        if issuer is not None and _issuer_id(listing) != issuer:
            raise StatusListError("it is not this issuer's list")
        return listing

    def _ledger(self, vc: dict[str, Any], report: VcReport) -> bool | None:
        evidence = vc.get("evidence")
        items = evidence if isinstance(evidence, list) else [evidence]
        link = next((e for e in items if isinstance(e, dict) and "SealTrailLedgerEntry" in _types(e)), None)
        if link is None:
            report.reasons.append(_reason(R_NO_LEDGER))
            return None
        report.document_id = str(link.get("documentId", "")) or None
        try:
            entry = Entry.parse(str(link.get("ledgerEntry", "")).encode())
        except EntryError as exc:
            report.ledger = "mismatch"
            report.reasons.append(_reason(R_LEDGER_MISMATCH, str(exc)))
            return False
        expected = (link.get("documentId"), link.get("pdfSha256"), link.get("xmlSha256"))
        if entry.type != "issue" or (entry.doc_id, entry.pdf_sha256, entry.xml_sha256) != expected:
            report.ledger = "mismatch"
            report.reasons.append(_reason(R_LEDGER_MISMATCH, "document id or hashes differ"))
            return False
        proven = self.ledger_check(link, entry)
        if proven is None:
            report.reasons.append(_reason(R_NO_LEDGER))
        elif not proven:
            report.ledger = "mismatch"
            report.reasons.append(_reason(R_LEDGER_MISMATCH, "the log does not hold this entry"))
        else:
            report.ledger = "proven"
        return proven
