"""Checking a signed XML document (XAdES in a SealTrail envelope) offline: signatures, order, chain, timestamps.

Nothing is fetched: certificates come from the signatures' KeyInfo and the configured trust list. The XML is
parsed with the hardened parser (no DTDs, no entities, no network). Each signature must cover the data element
(``#DuLieu``) — "see what is signed" — and every later signature must cover the one before it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from asn1crypto import cms, tsp, x509
from cryptography import x509 as cx509
from lxml import etree
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import InsufficientRevinfoError, PathBuildingError, PathValidationError, RevokedError
from signxml import InvalidDigest, InvalidInput, InvalidSignature
from signxml.xades import XAdESSignatureConfiguration, XAdESVerifier

from schemas.common import SchemaError
from schemas.envelope import DATA_ID, DS_NS, SIGNED_NS, XADES_NS, canonical_bytes, exc_c14n
from schemas.publish import validate_xml
from schemas.xml import parse_xml_securely
from verifier import policy
from verifier.pdf import (
    R_CRYPTO,
    R_NO_REVINFO,
    R_TS_BROKEN,
    R_TS_UNTRUSTED,
    R_UNCHECKED,
    R_UNTRUSTED,
    Reason,
    TrustListVerifier,
    Verdict,
    overall_verdict,
    report_json,
)

MAX_XML_BYTES = 10 * 1024 * 1024
_INVALID = {"HASH_FAILURE", "SIG_CRYPTO_FAILURE", "FORMAT_FAILURE", "REVOKED", "SIGNER_POLICY_FAILURE"}

R_NOT_XML = ("FORMAT_FAILURE", "Tệp không phải là văn bản XML ký số của SealTrail", "Not a SealTrail signed XML file")
R_XML_TOO_BIG = ("FORMAT_FAILURE", "Tệp quá lớn để kiểm tra", "The file is too large to check")
R_NO_XML_SIG = ("FORMAT_FAILURE", "Tài liệu không có chữ ký số", "The document carries no digital signature")
R_XML_HASH = (
    "HASH_FAILURE",
    "Nội dung đã bị thay đổi sau khi ký: chữ ký không còn khớp",
    "The content was changed after signing: the signature no longer matches",
)
R_NOT_DATA = (
    "FORMAT_FAILURE",
    "Chữ ký không bao trùm phần dữ liệu của văn bản",
    "The signature does not cover the document's data",
)
R_ORDER = (
    "FORMAT_FAILURE",
    "Chữ ký không xác nhận chữ ký trước đó (sai thứ tự ký)",
    "The signature does not cover the previous signature (wrong signing order)",
)
R_NO_REVOCATION = (
    "REVOCATION_OUT_OF_BOUNDS_NO_POE",
    "Dữ liệu trạng thái chứng thư đi kèm không đủ để kiểm tra",
    "The embedded certificate status data is not enough to check the certificate",
)
R_XSD = (
    "FORMAT_FAILURE",
    "Dữ liệu không đúng lược đồ XSD đã công bố",
    "The data does not match the published XSD",
)
R_XML_REVOKED = ("REVOKED", "Chứng thư số đã bị thu hồi", "The signing certificate has been revoked")


@dataclass
class XmlSignatureReport:
    role: str
    signer: str
    signer_organisation: str
    signing_time: str | None
    timestamp_time: datetime | None
    reasons: list[Reason] = field(default_factory=list)
    long_term: bool = False  # B-LT: certificates and revocation data embedded

    @property
    def indication(self) -> Verdict:
        if any(r.code in _INVALID for r in self.reasons):
            return "invalid"
        return "indeterminate" if self.reasons else "valid"


@dataclass
class XmlReport:
    verdict: Verdict
    reasons: list[Reason]
    signatures: list[XmlSignatureReport]
    data: bytes | None = None  # the signed canonical document, when the signatures cover it

    def to_json(self) -> dict[str, Any]:
        out = report_json(self)
        out.pop("data")
        out["format"] = "xml"
        return out


def looks_like_xml(data: bytes) -> bool:
    """True for what should go to the XML verifier rather than the PDF one (by content, never by file name)."""
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<")


class XmlVerifier(TrustListVerifier):
    """Checks signed XML documents offline, from their embedded validation data; called for many documents."""

    def _context(
        self,
        moment: datetime | None = None,
        embedded: tuple[list[x509.Certificate], list[bytes], list[bytes]] | None = None,
        *,
        hard: bool = True,
    ) -> ValidationContext:
        certs, crls, ocsps = embedded or ([], [], [])
        local_crls, local_ocsps = self._local_revinfo()
        return ValidationContext(
            trust_roots=self.trust_roots,
            other_certs=[*self.other_certs, *certs],
            crls=[*crls, *local_crls],
            ocsps=[*ocsps, *local_ocsps],
            allow_fetching=False,
            # The signer's status must be proven: by the B-LT data embedded, or by the CRLs/OCSP this verifier
            # holds (verifier.revocation). Without either, "not known to be revoked" is not "valid": indeterminate.
            # (The timestamp authority's certificate is still checked leniently: ``hard=False``.)
            revocation_mode="hard-fail" if hard else "soft-fail",
            # The OCSP/CRL embedded for B-LT are fetched after the signature timestamp (seconds later on a busy
            # machine): status issued after the validation moment still speaks for it, as in the PDF verifier.
            retroactive_revinfo=True,
            moment=moment,
        )

    def verify(self, data: bytes) -> XmlReport:
        try:
            return self._verify(data)
        except MemoryError:  # a worker under a memory limit reports this as "too complex" (verifier.isolation)
            raise
        except Exception:  # hostile input can reach corners of the libraries nobody lists: never a 500, never "valid"
            logging.getLogger("sealtrail.verify").warning("XML check failed unexpectedly", exc_info=True)
            return XmlReport("indeterminate", [Reason(*R_UNCHECKED)], [])

    def _verify(self, data: bytes) -> XmlReport:
        if len(data) > MAX_XML_BYTES:
            return XmlReport("invalid", [Reason(*R_XML_TOO_BIG)], [])
        try:
            root = parse_xml_securely(data)
        except Exception:  # any parse failure, DTD or entity refused: not a document we accept
            return XmlReport("invalid", [Reason(*R_NOT_XML)], [])
        body = root.find(f"{{{SIGNED_NS}}}DuLieu")
        slots = root.findall(f"{{{SIGNED_NS}}}ChuKySo/{{{SIGNED_NS}}}ChuKy")
        if root.tag != f"{{{SIGNED_NS}}}VanBanKySo" or body is None or body.get("Id") != DATA_ID or len(body) != 1:
            return XmlReport("invalid", [Reason(*R_NOT_XML)], [])
        ids = [e for e in root.iter() if e.get("Id") == DATA_ID]
        if len(ids) != 1:  # a second element with the same Id is the classic signature-wrapping attack
            return XmlReport("invalid", [Reason(*R_NOT_XML)], [])
        if not slots:
            return XmlReport("invalid", [Reason(*R_NO_XML_SIG)], [])
        reports: list[XmlSignatureReport] = []
        signed_roles: list[policy.SignedRole] = []
        previous_value_id: str | None = None
        for slot in slots:
            report, value_id, signed_role = self._one(root, body, slot, previous_value_id)
            reports.append(report)
            signed_roles.append(signed_role)
            previous_value_id = value_id
        verdict = overall_verdict(r.indication for r in reports)
        overall = list(dict.fromkeys(reason for r in reports for reason in r.reasons))
        # The signer policy for the kind the signed data names: every required role, in order, seal last, one
        # identity per role, each role read from SignedProperties and matching the VaiTro label shown.
        kind = policy.kind_of(etree.QName(body[0]).namespace)
        policy_reasons = (
            policy.check(kind, signed_roles, issuer=policy.issuer_code(body[0]), registry=self.signer_registry)
            if verdict != "invalid"  # a broken signature is the one reason; its role cannot be read anyway
            else []
        )
        if policy_reasons:
            overall.extend(policy_reasons)
            verdict = "invalid"
        covered = canonical_bytes(body[0])
        try:
            if etree.QName(body[0]).namespace == "urn:sealtrail:receipt:1":
                from verifier.bulk import validate_receipt  # a verification receipt, not a school document

                validate_receipt(covered)
            else:
                validate_xml(covered)
        except (SchemaError, ValueError) as exc:
            problem = exc.problems[0] if isinstance(exc, SchemaError) else exc
            overall.append(Reason(R_XSD[0], f"{R_XSD[1]}: {problem}", f"{R_XSD[2]}: {problem}"))
            verdict = "invalid"
        return XmlReport(verdict, overall, reports, covered if verdict != "invalid" else None)

    def _one(
        self, root: etree._Element, body: etree._Element, slot: etree._Element, previous_value_id: str | None
    ) -> tuple[XmlSignatureReport, str | None, policy.SignedRole]:
        role = slot.get("VaiTro", "")
        signature = slot.find(f"{{{DS_NS}}}Signature")
        report = XmlSignatureReport(role, "", "", None, None)
        unknown = policy.SignedRole(None, None, label=role)
        if signature is None:
            report.reasons.append(Reason(*R_NO_XML_SIG))
            return report, None, unknown
        value = signature.find(f"{{{DS_NS}}}SignatureValue")
        value_id = value.get("Id") if value is not None else None
        cert_el = signature.find(f"{{{DS_NS}}}KeyInfo/{{{DS_NS}}}X509Data/{{{DS_NS}}}X509Certificate")
        if cert_el is None or not cert_el.text:
            report.reasons.append(Reason(*R_NOT_XML))
            return report, value_id, unknown
        try:
            certs = [
                x509.Certificate.load(base64.b64decode(el.text or ""))
                for el in signature.findall(f"{{{DS_NS}}}KeyInfo/{{{DS_NS}}}X509Data/{{{DS_NS}}}X509Certificate")
            ]
        except ValueError:
            report.reasons.append(Reason(*R_NOT_XML))
            return report, value_id, unknown
        cert = certs[0]
        report.signer = str(cert.subject.native.get("common_name", ""))
        report.signer_organisation = str(cert.subject.native.get("organization_name", ""))
        signing_time = signature.find(f".//{{{XADES_NS}}}SigningTime")
        report.signing_time = signing_time.text if signing_time is not None else None

        config = XAdESSignatureConfiguration(
            location=f"./{{{SIGNED_NS}}}ChuKySo/{{{SIGNED_NS}}}ChuKy[@VaiTro='{role}']/",
            expect_references=4 if previous_value_id else 3,
        )
        try:
            results = XAdESVerifier().verify(
                root, x509_cert=cx509.load_der_x509_certificate(cert.dump()), expect_config=config
            )
        except InvalidSignature as exc:
            reason = R_XML_HASH if isinstance(exc, InvalidDigest) else R_CRYPTO
            report.reasons.append(Reason(*reason))
            return report, value_id, unknown
        except (InvalidInput, ValueError, etree.LxmlError):  # e.g. signxml's XAdES schema check: DocumentInvalid
            report.reasons.append(Reason(*R_NOT_XML))
            return report, value_id, unknown
        signed = {exc_c14n(r.signed_xml) for r in results if r.signed_xml is not None}
        if exc_c14n(body) not in signed:
            report.reasons.append(Reason(*R_NOT_DATA))
        if previous_value_id is not None:
            previous = root.find(f".//{{{DS_NS}}}SignatureValue[@Id='{previous_value_id}']")
            if previous is None or exc_c14n(previous) not in signed:
                report.reasons.append(Reason(*R_ORDER))

        report.timestamp_time = self._timestamp(signature, value, report)
        embedded = self._embedded(signature)
        report.long_term = embedded is not None
        self._chain(cert, certs[1:], report, embedded)
        # The role as signed: XAdES SignerRole/ClaimedRoles inside the SignedProperties this signature covers.
        claims = [
            el.text or ""
            for r in results
            if r.signed_xml is not None and r.signed_xml.tag == f"{{{XADES_NS}}}SignedProperties"
            for el in r.signed_xml.iter(f"{{{XADES_NS}}}ClaimedRole")
        ]
        when = report.timestamp_time
        signed_role = policy.SignedRole(policy.role_from_claims(claims), cert, when, label=role)
        return report, value_id, signed_role

    @staticmethod
    def _embedded(signature: etree._Element) -> tuple[list[x509.Certificate], list[bytes], list[bytes]] | None:
        usp = signature.find(f".//{{{XADES_NS}}}UnsignedSignatureProperties")
        if usp is None or usp.find(f"{{{XADES_NS}}}RevocationValues") is None:
            return None
        try:
            certs = [
                x509.Certificate.load(base64.b64decode(el.text or ""))
                for el in usp.iterfind(f"{{{XADES_NS}}}CertificateValues/{{{XADES_NS}}}EncapsulatedX509Certificate")
            ]
        except ValueError:
            return None
        crls = [base64.b64decode(el.text or "") for el in usp.iter(f"{{{XADES_NS}}}EncapsulatedCRLValue")]
        ocsps = [base64.b64decode(el.text or "") for el in usp.iter(f"{{{XADES_NS}}}EncapsulatedOCSPValue")]
        return certs, crls, ocsps

    def _chain(
        self,
        cert: x509.Certificate,
        extra: list[x509.Certificate],
        report: XmlSignatureReport,
        embedded: tuple[list[x509.Certificate], list[bytes], list[bytes]] | None = None,
    ) -> None:
        context = self._context(report.timestamp_time, embedded)
        validator = CertificateValidator(cert, intermediate_certs=extra, validation_context=context)
        try:
            asyncio.run(validator.async_validate_path())
        except RevokedError:
            report.reasons.append(Reason(*R_XML_REVOKED))
        except (PathBuildingError, PathValidationError) as exc:
            if isinstance(exc, InsufficientRevinfoError):  # nothing (enough) proves the signer's status
                report.reasons.append(Reason(*(R_NO_REVOCATION if embedded else R_NO_REVINFO)))
            else:
                report.reasons.append(Reason(*R_UNTRUSTED))

    def _timestamp(
        self, signature: etree._Element, value: etree._Element | None, report: XmlSignatureReport
    ) -> datetime | None:
        token_el = signature.find(f".//{{{XADES_NS}}}SignatureTimeStamp/{{{XADES_NS}}}EncapsulatedTimeStamp")
        if token_el is None or value is None:
            return None  # B-B: no timestamp; the signing time is only the signer's claim
        try:
            content = cms.ContentInfo.load(base64.b64decode(token_el.text or ""))
            signed_data = content["content"]
            info = tsp.TSTInfo.load(signed_data["encap_content_info"]["content"].parsed.dump())
        except (ValueError, TypeError, KeyError):
            report.reasons.append(Reason(*R_TS_BROKEN))
            return None
        expected = exc_c14n(value)

        def imprint(algorithm: str) -> bytes:
            return hashlib.new(algorithm, expected).digest()

        try:
            status = TimestampSignatureStatus(
                **asyncio.run(validate_tst_signed_data(signed_data, self._context(hard=False), imprint))
            )
        except Exception:  # a malformed token of any kind
            report.reasons.append(Reason(*R_TS_BROKEN))
            return None
        if not (status.intact and status.valid):
            report.reasons.append(Reason(*R_TS_BROKEN))
            return None
        if not status.trusted:
            report.reasons.append(Reason(*R_TS_UNTRUSTED))
        return info["gen_time"].native  # type: ignore[no-any-return]
