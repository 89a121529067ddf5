"""The signer policy: which roles must sign each kind of document, in which order, and who may hold them.

Rules are data (``RULES``), one per document kind and period (by the date the first signature was made, from its
timestamp when it has one). A rule says which roles sign, in which order (the seal always last: it locks the
document), that every role is held by a distinct identity (another certificate *and* another subject: "all
three fields signed by one person's key" is not three signers), and where the role must be read from: only from
*signed* properties —

* PDF: the CAdES ``signer-attributes-v2`` claimed role (``urn:sealtrail:role:<role>``, signer.pdf.role_attributes);
  documents signed before ``RoleSource.pdf_field_name_until`` may instead carry it only in the field name
  ``sig_<role>`` of the signed revision (what SealTrail wrote before the attribute existed). When both are there
  they must agree.
* XML: XAdES ``SignerRole/ClaimedRoles`` inside ``SignedProperties`` (the role id, or a known title); the slot's
  ``VaiTro`` label, which no signature covers, must say the same.

Whether a certificate is *registered* for a role and an issuer comes with the issuer registry (issue #21): the
deployment supplies a ``SignerRegistry`` (``Verifier.signer_registry``); without one, that step is not checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

from asn1crypto import cms, x509

from verifier.reasons import Reason

ROLE_URI_PREFIX = "urn:sealtrail:role:"
SEAL = "seal"

# Titles earlier documents (and people) put in the XAdES ClaimedRole, mapped to the role they name.
ROLE_TITLES = {
    "giáo viên chủ nhiệm": "homeroom_teacher",
    "hiệu trưởng": "principal",
    "con dấu của đơn vị": SEAL,
    "con dấu": SEAL,
    "dịch vụ xác thực sealtrail": SEAL,  # the verification service's signed receipts
}
ROLE_NAMES = {
    "homeroom_teacher": ("giáo viên chủ nhiệm", "homeroom teacher"),
    "principal": ("hiệu trưởng / người có thẩm quyền", "principal / competent signer"),
    SEAL: ("con dấu của đơn vị", "the institution's seal"),
}


@dataclass(frozen=True)
class PolicyRule:
    """What one kind of document needs, for documents first signed within [valid_from, valid_until)."""

    kind: str
    roles: tuple[str, ...]  # every role that must sign, in signing order
    valid_from: date = date(2020, 1, 1)
    valid_until: date | None = None
    seal_last: bool = True
    distinct_identities: bool = True
    pdf_field_name_until: date | None = date(2027, 1, 1)  # PDFs signed before may carry the role in the field name


RULES: tuple[PolicyRule, ...] = (
    PolicyRule("transcript", ("homeroom_teacher", "principal", SEAL)),  # Circular 22/2021: teacher, principal, seal
    PolicyRule("diploma", ("principal", SEAL)),  # the competent signer, then the seal
    PolicyRule("copy", (SEAL,)),  # certified copies: the school's seal
    PolicyRule("translation", (SEAL,)),
    PolicyRule("receipt", (SEAL,)),  # verification receipts (verifier.bulk)
    PolicyRule("revocation", (SEAL,)),  # signed revocation statements
)

# The root element's namespace of the signed data → the document kind.
KINDS_BY_NAMESPACE = {
    "urn:sealtrail:hocba:1": "transcript",
    "urn:sealtrail:vanbang:1": "diploma",
    "urn:sealtrail:bansao:1": "copy",
    "urn:sealtrail:bandich:1": "translation",
    "urn:sealtrail:receipt:1": "receipt",
    "urn:sealtrail:revocation:1": "revocation",
}


@dataclass(frozen=True)
class SignedRole:
    """One signature as the policy sees it: its role (from a signed property, or None) and its identity."""

    role: str | None
    certificate: x509.Certificate | None
    signed_at: datetime | None = None  # the signature timestamp, else the signer's claimed time
    label: str | None = None  # the role as shown outside the signature (XML VaiTro, PDF field name), if any
    role_from_field_name: bool = False  # PDF: the role came from the field name only (no signed attribute)


class SignerRegistry(Protocol):
    """Supplied by the deployment once the issuer registry knows signing identities (issue #21): True when the
    certificate is registered for ``role`` at ``issuer`` at ``when``, False when it is not, None when unknown."""

    def __call__(
        self, role: str, issuer: str | None, certificate: x509.Certificate, when: datetime | None
    ) -> bool | None: ...


R_POLICY = "SIGNER_POLICY_FAILURE"  # ETSI: the signature does not meet the validation (signer) policy


def _r(vi: str, en: str) -> Reason:
    return Reason(R_POLICY, vi, en)


def rule_for(kind: str | None, when: datetime | None) -> PolicyRule | None:
    if kind is None:
        return None
    day = (when or datetime.now(UTC)).date()
    for rule in RULES:
        if rule.kind == kind and rule.valid_from <= day and (rule.valid_until is None or day < rule.valid_until):
            return rule
    return None


def role_from_claims(claims: Sequence[str]) -> str | None:
    """The role a list of claimed roles names: a role id or a known title (case-insensitive), first match."""
    for claim in claims:
        text = claim.strip()
        if text in ROLE_NAMES:
            return text
        if text.removeprefix(ROLE_URI_PREFIX) in ROLE_NAMES and text.startswith(ROLE_URI_PREFIX):
            return text.removeprefix(ROLE_URI_PREFIX)
        mapped = ROLE_TITLES.get(text.lower())
        if mapped is not None:
            return mapped
    return None


def cades_claimed_roles(signer_info: cms.SignerInfo) -> list[str]:
    """The role names claimed in a CMS signature's *signed* ``signer-attributes-v2`` attribute."""
    roles: list[str] = []
    attrs = signer_info["signed_attrs"]
    if attrs.native is None:
        return roles
    for attr in attrs:
        if attr["type"].dotted != "0.4.0.19122.1.1":  # signer-attributes-v2 (ETSI EN 319 122-1)
            continue
        for value in attr["values"]:
            try:
                parsed = value.parsed if hasattr(value, "parsed") else value
                claimed = parsed["claimed_attributes"]
                for item in claimed if claimed.native is not None else []:
                    if item["type"].native != "role":
                        continue
                    for role in item["values"]:
                        roles.append(str(role["role_name"].native))
            except (KeyError, ValueError, TypeError):
                continue
    return roles


def _name(role: str) -> tuple[str, str]:
    return ROLE_NAMES.get(role, (role, role))


def _identity(cert: x509.Certificate) -> tuple[bytes, bytes]:
    return cert.sha256, cert.subject.dump()


def check(
    kind: str | None,
    signatures: Sequence[SignedRole],
    *,
    issuer: str | None = None,
    registry: SignerRegistry | None = None,
) -> list[Reason]:
    """Why ``signatures`` (in document order) do not meet the policy for ``kind``; empty when they do.

    A document of no known kind gets the checks that hold for every document: each role from a signed property
    agrees with its label, and no identity holds two roles."""
    reasons: list[Reason] = []
    first = next((s.signed_at for s in signatures if s.signed_at is not None), None)
    rule = rule_for(kind, first)
    for sig in signatures:
        if sig.role is None:
            reasons.append(
                _r(
                    "Chữ ký không mang vai trò người ký trong phần được ký",
                    "A signature does not name its signer's role in a signed property",
                )
            )
        elif sig.label is not None and sig.label != sig.role:
            reasons.append(
                _r(
                    f"Vai trò hiển thị «{sig.label}» khác vai trò được ký «{sig.role}»",
                    f"The role shown ({sig.label}) is not the role the signature covers ({sig.role})",
                )
            )
        if (
            rule is not None
            and sig.role_from_field_name
            and rule.pdf_field_name_until is not None
            and (sig.signed_at is None or sig.signed_at.date() >= rule.pdf_field_name_until)
        ):
            reasons.append(
                _r(
                    "Chữ ký không mang vai trò người ký trong thuộc tính được ký (CAdES signer-attributes-v2)",
                    "The signature does not carry its role in a signed attribute (CAdES signer-attributes-v2)",
                )
            )
    roles = [s.role for s in signatures if s.role is not None]
    # One identity, one role: a certificate or a subject that signs under two roles is one signer, not two.
    seen: dict[tuple[str, bytes], str] = {}
    for sig in signatures:
        if sig.certificate is None or sig.role is None:
            continue
        cert_id, subject = _identity(sig.certificate)
        for key in (("cert", cert_id), ("subject", subject)):
            other = seen.get(key)
            if other is not None and other != sig.role:
                a, b = _name(other), _name(sig.role)
                reasons.append(
                    _r(
                        f"Cùng một người ký giữ hai vai trò ({a[0]}, {b[0]}): mỗi vai trò phải do một người khác ký",
                        f"One signer holds two roles ({a[1]}, {b[1]}): each role must be signed by a different person",
                    )
                )
                break
            seen.setdefault(key, sig.role)
    if len(set(roles)) != len(roles):
        reasons.append(_r("Một vai trò ký nhiều lần", "A role signed more than once"))
    if rule is not None:
        missing = [r for r in rule.roles if r not in roles]
        if missing:
            vi = ", ".join(_name(r)[0] for r in missing)
            en = ", ".join(_name(r)[1] for r in missing)
            reasons.append(
                _r(
                    f"Thiếu chữ ký bắt buộc: {vi}",
                    f"A required signature is missing: {en}",
                )
            )
        extra = [r for r in roles if r not in rule.roles]
        if extra:
            reasons.append(
                _r(
                    f"Có chữ ký với vai trò không thuộc loại văn bản này: {', '.join(extra)}",
                    f"A signature has a role this kind of document does not have: {', '.join(extra)}",
                )
            )
        expected = [r for r in rule.roles if r in roles]
        if not missing and not extra and roles != expected:
            reasons.append(
                _r(
                    "Các chữ ký không theo đúng thứ tự quy định",
                    "The signatures are not in the required order",
                )
            )
        if rule.seal_last and SEAL in rule.roles and roles and roles[-1] != SEAL and SEAL in roles:
            reasons.append(
                _r("Con dấu của đơn vị phải là chữ ký cuối cùng", "The institution's seal must be the last signature")
            )
    if registry is not None:
        for sig in signatures:
            if sig.role is None or sig.certificate is None:
                continue
            if registry(sig.role, issuer, sig.certificate, sig.signed_at) is False:
                a = _name(sig.role)
                reasons.append(
                    _r(
                        f"Chứng thư số không được đăng ký cho vai trò {a[0]} của đơn vị cấp",
                        f"The certificate is not registered for the role {a[1]} at the issuer",
                    )
                )
    return list(dict.fromkeys(reasons))


def kind_of(xml_root_namespace: str | None) -> str | None:
    return KINDS_BY_NAMESPACE.get(xml_root_namespace or "")


def kind_and_issuer(xml: bytes) -> tuple[str | None, str | None]:
    """The document kind of a canonical XML document (by its root namespace) and its issuer's code, if readable."""
    from lxml import etree

    from schemas.xml import parse_xml_securely

    try:
        root = parse_xml_securely(xml)
    except Exception:  # not readable: no kind, so only the checks every document gets
        return None, None
    return kind_of(etree.QName(root).namespace), issuer_code(root)


def issuer_code(root: object) -> str | None:
    """The issuing school's or authority's code in a canonical document (transcript: school, others: issuer)."""
    from lxml import etree

    if not isinstance(root, etree._Element):
        return None
    ns = etree.QName(root).namespace
    for path in ("school/code", "issuer/code"):
        found = root.find("/".join(f"{{{ns}}}{part}" for part in path.split("/")))
        if found is not None and found.text:
            return str(found.text).strip()
    return None
