"""Signing identities per issuer: an organisation's seal or a person's certificate, where its key lives, the role it
may sign in, for which organisation, and from/until when.

Verification binds signatures to the issuer through :func:`identity_registry` (the ``SignerRegistry`` hook of
``verifier.policy``): a certificate registered for school A that seals a document of school B is *not* registered
for that issuer, and the document is invalid. An issuer with no identities registered at all gives no answer
(``None``): documents from elsewhere, or from before the registry, are judged on the other checks alone.

Before signing, :func:`refusal_before_signing` says why a certificate must not sign a document (expired, not yet
valid, retired, not registered for the role and issuer, not naming the organisation or the printed signer), in
Vietnamese with English beside it; chaining to the trust list and revocation are checked by the caller
(``signer.precheck``), which has the trust list.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime

from asn1crypto import pem, x509
from sqlalchemy import Column, DateTime, Engine, Text
from sqlmodel import Field, Session, SQLModel, select

from errors import PermanentError

ROLES = ("homeroom_teacher", "principal", "seal")
LOCATION_KINDS = ("hsm", "agent", "remote")
UID = "0.9.2342.19200300.100.1.1"  # userID: Vietnamese CAs put "MST:<tax code>" or "CCCD:<citizen id>" here


def utcnow() -> datetime:
    return datetime.now(UTC)


class IdentityError(PermanentError):
    """A signing identity cannot be registered or used; the message is for the school's IT person (vi / en)."""


class SigningIdentity(SQLModel, table=True):
    __tablename__ = "signing_identities"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # "seal" (an organisation's) or "person"
    role: str = Field(max_length=32, index=True)
    organisation: str = Field(max_length=32, index=True)  # the issuer's code (mã trường)
    holder: str = Field(max_length=255)  # the certificate's CN: the organisation's or the person's name
    key_location: str = Field(max_length=255)  # hsm:<key label> | agent:<signer id> | remote:<credential id>
    cert_sha256: str = Field(max_length=64, index=True)
    chain_pem: str = Field(sa_column=Column(Text, nullable=False))  # the certificate, then its issuing CAs
    valid_from: datetime = Field(sa_type=DateTime(timezone=True))
    valid_until: datetime = Field(sa_type=DateTime(timezone=True))
    retired_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))

    @property
    def certificates(self) -> list[x509.Certificate]:
        return [x509.Certificate.load(der) for _, _, der in pem.unarmor(self.chain_pem.encode(), multiple=True)]

    def digest(self) -> str:
        """SHA-256 of the row's public facts (what the public log carries for a change; no personal data)."""
        facts = "|".join(
            str(v)
            for v in (
                self.id, self.kind, self.role, self.organisation, self.cert_sha256, self.key_location,
                _aware(self.valid_from).isoformat(), _aware(self.valid_until).isoformat(),
                _aware(self.retired_at).isoformat() if self.retired_at else "",
            )
        )  # fmt: skip
        return hashlib.sha256(facts.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def subject_values(cert: x509.Certificate) -> dict[str, list[str]]:
    """The subject's attributes by short name (CN, O, OU, L, ST, C, UID), every value kept."""
    short = {
        "common_name": "CN",
        "organization_name": "O",
        "organizational_unit_name": "OU",
        "locality_name": "L",
        "state_or_province_name": "ST",
        "country_name": "C",
        "user_id": "UID",
    }
    out: dict[str, list[str]] = {}
    for rdn in cert.subject.chosen:
        for attr in rdn:
            name = attr["type"].native
            key = short.get(name, UID if attr["type"].dotted == UID else name)
            if attr["type"].dotted == UID:
                key = "UID"
            out.setdefault(key, []).append(str(attr["value"].native))
    return out


def names_organisation(cert: x509.Certificate, name: str, tax_code: str | None = None) -> bool:
    """The certificate's subject names the organisation: O (or CN) is its name, or a UID is ``MST:<tax code>``."""
    values = subject_values(cert)
    if tax_code and any(_norm(u).replace(" ", "") == f"mst:{_norm(tax_code)}" for u in values.get("UID", [])):
        return True
    return any(_norm(v) == _norm(name) for v in values.get("O", []) + values.get("CN", []))


def names_person(cert: x509.Certificate, name: str) -> bool:
    return any(_norm(v) == _norm(name) for v in subject_values(cert).get("CN", []))


def parse_chain(data: bytes) -> list[x509.Certificate]:
    if pem.detect(data):
        return [
            x509.Certificate.load(der) for kind, _, der in pem.unarmor(data, multiple=True) if kind == "CERTIFICATE"
        ]
    return [x509.Certificate.load(data)]


def add_identity(
    engine: Engine,
    *,
    role: str,
    organisation: str,
    organisation_name: str,
    key_location: str,
    chain: Sequence[x509.Certificate],
    tax_code: str | None = None,
    holder: str | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
) -> SigningIdentity:
    """Register an identity. The certificate must name the organisation (seal) or the person ``holder`` (others);
    its validity bounds the registration's."""
    if role not in ROLES:
        raise IdentityError(f"Vai trò không hợp lệ / unknown role {role!r} (use {', '.join(ROLES)})")
    kind_of_location = key_location.split(":", 1)[0]
    if kind_of_location not in LOCATION_KINDS or ":" not in key_location or not key_location.split(":", 1)[1]:
        raise IdentityError(
            f"Vị trí khoá phải là hsm:<nhãn>, agent:<mã> hoặc remote:<mã> / the key location must be hsm:<label>, "
            f"agent:<signer id> or remote:<credential id>, not {key_location!r}"
        )
    if not chain:
        raise IdentityError("Thiếu chứng thư số / no certificate given")
    cert = chain[0]
    kind = "seal" if role == "seal" else "person"
    if kind == "seal" and not names_organisation(cert, organisation_name, tax_code):
        raise IdentityError(
            f"Chứng thư số của «{cert.subject.human_friendly}» không ghi tên đơn vị «{organisation_name}» (O) hay "
            f"mã số thuế (UID MST:…) / the certificate does not name the organisation {organisation_name!r} in O or "
            "as UID MST:<tax code>"
        )
    if kind == "person":
        if not holder:
            raise IdentityError("Cần họ tên người ký (--holder) / the signer's name is needed (--holder)")
        if not names_person(cert, holder):
            raise IdentityError(
                f"Chứng thư số mang tên «{subject_values(cert).get('CN', ['?'])[0]}», không phải «{holder}» / "
                f"the certificate's CN is not {holder!r}"
            )
    validity = cert["tbs_certificate"]["validity"]
    not_before, not_after = validity["not_before"].native, validity["not_after"].native
    start = max(valid_from or not_before, not_before)
    end = min(valid_until or not_after, not_after)
    if end <= start:
        raise IdentityError("Khoảng hiệu lực trống / the validity period is empty")
    row = SigningIdentity(
        kind=kind,
        role=role,
        organisation=organisation,
        holder=holder or subject_values(cert).get("CN", [organisation_name])[0],
        key_location=key_location,
        cert_sha256=cert.sha256.hex(),
        chain_pem=b"".join(pem.armor("CERTIFICATE", c.dump()) for c in chain).decode("ascii"),
        valid_from=start,
        valid_until=end,
    )
    with Session(engine) as session:
        session.add(row)
        session.commit()
        session.refresh(row)
        session.expunge(row)
    return row


def retire_identity(engine: Engine, identity_id: int, when: datetime | None = None) -> SigningIdentity:
    """Stop an identity from signing from ``when`` on (documents it signed before stay bound to it)."""
    with Session(engine) as session:
        row = session.get(SigningIdentity, identity_id)
        if row is None:
            raise IdentityError(f"Không có danh tính ký số {identity_id} / no signing identity {identity_id}")
        row.retired_at = when or utcnow()
        session.add(row)
        session.commit()
        session.refresh(row)
        session.expunge(row)
    return row


def list_identities(engine: Engine, organisation: str | None = None) -> list[SigningIdentity]:
    with Session(engine) as session:
        query = select(SigningIdentity).order_by(SigningIdentity.organisation, SigningIdentity.id)  # type: ignore[arg-type]
        if organisation is not None:
            query = query.where(SigningIdentity.organisation == organisation)
        rows = list(session.exec(query).all())
        for row in rows:
            session.expunge(row)
    return rows


def _active(row: SigningIdentity, when: datetime) -> bool:
    if _aware(row.valid_from) > when or when >= _aware(row.valid_until):
        return False
    return row.retired_at is None or when < _aware(row.retired_at)


class IdentityRegistry:
    """The ``verifier.policy.SignerRegistry`` for this database (read-only)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(
        self, role: str, issuer: str | None, certificate: x509.Certificate, when: datetime | None
    ) -> bool | None:
        sha = certificate.sha256.hex()
        at = _aware(when) if when else utcnow()
        with Session(self.engine) as session:
            by_cert = list(session.exec(select(SigningIdentity).where(SigningIdentity.cert_sha256 == sha)).all())
            at_issuer = (
                list(session.exec(select(SigningIdentity).where(SigningIdentity.organisation == issuer)).all())
                if issuer
                else []
            )
        if not by_cert and not at_issuer:
            return None  # neither the certificate nor the issuer is known here: not this registry's to judge
        return any(r.role == role and r.organisation == issuer and _active(r, at) for r in by_cert)


def identity_registry(engine: Engine) -> IdentityRegistry:
    return IdentityRegistry(engine)


def refusal_before_signing(
    engine: Engine,
    *,
    role: str,
    organisation: str,
    organisation_name: str,
    printed_signer: str | None,
    certificate: x509.Certificate,
    now: datetime | None = None,
) -> str | None:
    """Why ``certificate`` must not sign in ``role`` for ``organisation`` now (None: it may)."""
    now = now or utcnow()
    validity = certificate["tbs_certificate"]["validity"]
    not_before, not_after = validity["not_before"].native, validity["not_after"].native
    who = subject_values(certificate).get("CN", ["?"])[0]
    if now < not_before:
        return f"Chứng thư số của {who} chưa có hiệu lực (từ {not_before:%d/%m/%Y}) / the certificate is not valid yet"
    if now >= not_after:
        return (
            f"Chứng thư số của {who} đã hết hạn ngày {not_after:%d/%m/%Y}; hãy gia hạn với nhà cung cấp chứng thư "
            "số / the certificate has expired; renew it with the CA"
        )
    rows = [
        r for r in list_identities(engine, organisation) if r.cert_sha256 == certificate.sha256.hex() and r.role == role
    ]
    if not rows:
        return (
            f"Chứng thư số của {who} chưa được đăng ký cho vai trò {role} của đơn vị {organisation} "
            f"(sealtrail identity add) / the certificate is not registered for role {role} at {organisation}"
        )
    if not any(_active(r, now) for r in rows):
        return f"Đăng ký chứng thư số của {who} đã hết hiệu lực hoặc bị thu hồi / the registration has ended"
    if role == "seal":
        uids = subject_values(certificate).get("UID", [])
        if not names_organisation(certificate, organisation_name) and not any(
            u.upper().startswith("MST:") for u in uids
        ):
            return (
                f"Chứng thư số con dấu «{who}» không mang tên đơn vị «{organisation_name}» / the seal certificate "
                "does not name the issuing organisation"
            )
    elif printed_signer and not names_person(certificate, printed_signer):
        return (
            f"Văn bản ghi người ký «{printed_signer}» nhưng chứng thư số mang tên «{who}» / the document names "
            f"{printed_signer!r} as signer but the certificate is {who!r}'s"
        )
    return None
