"""W3C Verifiable Credentials 2.0 from issued documents, secured as VC-JOSE-COSE compact JWS (application/vc+jwt).

One securing mechanism for everything SealTrail publishes as a credential: the diploma (Open Badges 3.0
``AchievementCredential``), the transcript (``SealTrailTranscriptCredential``, our own type, documented in
schemas/vc/README.md) and the school's Bitstring Status Lists. Each is signed with the school's seal key through
the KeyBackend protocol: we build the JWS signing input, hash it, and let the backend sign the digest (RSA →
RS256; ECDSA P-256 → ES256, its DER signature converted to the raw r‖s JOSE wants). The header carries the seal
certificate and its chain (``x5c``) so a verifier can build the path to its trust list.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

import schemas
from errors import PermanentError
from hsm_adapters.base import KeyBackend, SignatureMechanism
from schemas.statuslist import PURPOSE, encode, list_url
from schemas.transcript import Results, SubjectYear

VC_V2 = "https://www.w3.org/ns/credentials/v2"
OB_V3 = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
OB_SCHEMA = "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential_schema.json"
CONTEXT_PATH = "/ns/credentials/v1"  # our JSON-LD context, served by each installation (schemas/vc/)
TRANSCRIPT_SCHEMA_PATH = "/ns/credentials/transcript-credential.schema.json"
MEDIA_TYPE = "application/vc+jwt"
DIPLOMA_TYPES = {
    "upper_secondary": "Diploma",
    "lower_secondary": "Diploma",
    "college": "AssociateDegree",
    "bachelor": "BachelorDegree",
    "engineer": "BachelorDegree",
    "master": "MasterDegree",
    "doctor": "DoctoralDegree",
}


class CredentialError(PermanentError):
    """A credential cannot be made; the message says why (Vietnamese first)."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _ec_raw(der: bytes, size: int) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def jose_algorithm(backend: KeyBackend) -> tuple[str, str]:
    """(JWS alg, digest) for a backend's key."""
    if backend.mechanism is SignatureMechanism.RSA_PKCS1V15:
        return "RS256", "sha256"
    if backend.mechanism is SignatureMechanism.ECDSA:
        bits = backend.certificate.public_key.bit_size
        return {256: ("ES256", "sha256"), 384: ("ES384", "sha384")}.get(bits, ("ES512", "sha512"))
    raise CredentialError(f"Khoá {backend.label} không dùng được cho JWS / no JOSE algorithm for {backend.mechanism}")


def sign_jwt(payload: Mapping[str, Any], backend: KeyBackend, kid: str) -> str:
    """A compact JWS (``typ: vc+jwt``) over ``payload``, signed by the backend; the key never leaves it."""
    alg, digest_name = jose_algorithm(backend)
    header = {
        "alg": alg,
        "typ": "vc+jwt",
        "cty": "vc",
        "kid": kid,
        "x5c": [base64.b64encode(c.dump()).decode() for c in (backend.certificate, *backend.chain)],
    }
    signing_input = f"{b64url(_json(header))}.{b64url(_json(payload))}".encode()
    digest = hashlib.new(digest_name, signing_input).digest()
    signature = backend.sign_digest(digest, digest_name)
    if alg.startswith("ES"):
        signature = _ec_raw(signature, {"ES256": 32, "ES384": 48}.get(alg, 66))
    return f"{signing_input.decode()}.{b64url(signature)}"


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def issuer_profile(base_url: str, school: schemas.School) -> dict[str, Any]:
    return {
        "id": issuer_id(base_url, school.code),
        "type": ["Profile"],
        "name": school.name,
        "address": {"type": ["Address"], "addressRegion": school.province, "addressCountry": "VN"},
    }


def issuer_id(base_url: str, school_code: str) -> str:
    return f"{base_url.rstrip('/')}/issuers/{school_code}"


def status_list_credential(
    base_url: str, name: str, issuer: Mapping[str, Any] | str, bits: bytes, now: datetime
) -> dict[str, Any]:
    """An unsigned BitstringStatusListCredential for list ``name``."""
    url = list_url(base_url, name)
    return {
        "@context": [VC_V2],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer,
        "validFrom": _z(now),
        "credentialSubject": {
            "id": f"{url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": PURPOSE,
            "encodedList": encode(bits),
        },
    }


@dataclass(frozen=True)
class LedgerLink:
    """Where the document's issue entry sits in the public log, and the proof of it (if a checkpoint covers it)."""

    doc_id: str
    origin: str
    leaf_index: int
    pdf_sha256: str
    xml_sha256: str
    entry: bytes
    tlog_proof: bytes | None


def _evidence(base_url: str, link: LedgerLink) -> dict[str, Any]:
    evidence: dict[str, Any] = {
        "type": ["Evidence", "SealTrailLedgerEntry"],
        "name": "Mục ghi trong sổ cái công khai / public ledger entry",
        "documentId": link.doc_id,
        "logOrigin": link.origin,
        "leafIndex": link.leaf_index,
        "pdfSha256": link.pdf_sha256,
        "xmlSha256": link.xml_sha256,
        "ledgerEntry": link.entry.decode(),
    }
    if link.tlog_proof is not None:
        evidence["tlogProof"] = link.tlog_proof.decode()
    return evidence


def _status_entry(base_url: str, status_list: str, index: int) -> dict[str, Any]:
    url = list_url(base_url, status_list)
    return {
        "id": f"{url}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": PURPOSE,
        "statusListIndex": str(index),
        "statusListCredential": url,
    }


def _credential_id(base_url: str, doc_id: str) -> str:
    base = base_url.rstrip("/")
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{base}/documents/{doc_id}')}"


def _identifiers(holder: schemas.Person) -> list[dict[str, Any]]:
    # The shipped OB 3.0 schema's IdentifierTypeEnum has no person name or birth date: extension types ("ext:").
    ids = [
        {"type": "IdentityObject", "hashed": False, "identityHash": holder.full_name, "identityType": "ext:name"},
        {
            "type": "IdentityObject",
            "hashed": False,
            "identityHash": holder.birth_date.isoformat(),
            "identityType": "ext:birthDate",
        },
    ]
    if holder.learner_code:
        ids.append(
            {
                "type": "IdentityObject",
                "hashed": False,
                "identityHash": holder.learner_code,
                "identityType": "sisSourcedId",
            }
        )
    return ids


def diploma_credential(
    doc: schemas.Diploma, base_url: str, issued_at: datetime, status: tuple[str, int], link: LedgerLink
) -> dict[str, Any]:
    """An Open Badges 3.0 AchievementCredential for a diploma (unsigned)."""
    english = doc.english
    description = f"{doc.title} — {doc.major}".strip(" —") if doc.major else doc.title
    major = b64url(doc.major.encode()) or "general"
    achievement: dict[str, Any] = {
        "id": f"{issuer_id(base_url, doc.issuer.code)}/achievements/{doc.level}/{major}",
        "type": ["Achievement"],
        "achievementType": DIPLOMA_TYPES[doc.level],
        "name": doc.title,
        "description": description + (f" ({english.title})" if english else ""),
        "criteria": {"narrative": f"Cấp theo Thông tư 21/2019/TT-BGDĐT; {doc.signer_title}"},
        "inLanguage": "vi",
    }
    if doc.major:
        achievement["fieldOfStudy"] = doc.major
    subject: dict[str, Any] = {
        "type": ["AchievementSubject"],
        "identifier": _identifiers(doc.holder),
        "achievement": achievement,
        "licenseNumber": doc.diploma_number,
        "term": str(doc.graduation_year),
    }
    if doc.classification:
        subject["result"] = [{"type": ["Result"], "value": doc.classification}]
        achievement["resultDescription"] = [
            {
                "id": f"{achievement['id']}#classification",
                "type": ["ResultDescription"],
                "name": "Xếp loại / classification",
                "resultType": "LetterGrade",
            }
        ]
        subject["result"][0]["resultDescription"] = f"{achievement['id']}#classification"
    return {
        "@context": [VC_V2, OB_V3, base_url.rstrip("/") + CONTEXT_PATH],
        "id": _credential_id(base_url, link.doc_id),
        "type": ["VerifiableCredential", "AchievementCredential"],
        "name": doc.title,
        "description": f"{doc.title}, số hiệu {doc.diploma_number}, số vào sổ {doc.register_number}",
        "issuer": issuer_profile(base_url, doc.issuer),
        "validFrom": _z(issued_at),
        "credentialSubject": subject,
        "credentialStatus": _status_entry(base_url, *status),
        "evidence": [_evidence(base_url, link)],
        "credentialSchema": [{"id": OB_SCHEMA, "type": "1EdTechJsonSchemaValidator2019"}],
    }


def _results(results: Results) -> dict[str, str]:
    return {k: v for k, v in {"hk1": results.hk1, "hk2": results.hk2, "year": results.year}.items() if v}


def _number(value: Any) -> str | None:
    return None if value is None else str(value)


def _subject_year(s: SubjectYear) -> dict[str, Any]:
    row: dict[str, Any] = {"subject": s.subject, "assessment": s.assessment}
    if s.assessment == "scored":
        row |= {
            "hk1Average": _number(s.hk1.average if s.hk1 else None),
            "hk2Average": _number(s.hk2.average if s.hk2 else None),
            "yearAverage": _number(s.year_average),
        }
    else:
        row |= {"hk1Level": s.hk1_level, "hk2Level": s.hk2_level, "yearLevel": s.year_level}
    return {k: v for k, v in row.items() if v is not None}


def transcript_credential(
    doc: schemas.Transcript, base_url: str, issued_at: datetime, status: tuple[str, int], link: LedgerLink
) -> dict[str, Any]:
    """A transcript credential (type SealTrailTranscriptCredential, unsigned) carrying every year's results."""
    subject: dict[str, Any] = {
        "type": ["TranscriptSubject"],
        "name": doc.holder.full_name,
        "birthDate": doc.holder.birth_date.isoformat(),
        "recordId": doc.record_id,
        "studentCode": doc.student_code,
        "level": doc.level,
    }
    if doc.years:
        subject["schoolYears"] = [
            {
                "schoolYear": y.school_year,
                "grade": y.grade,
                "className": y.class_name,
                "subjects": [_subject_year(s) for s in y.subjects],
                "learning": _results(y.learning),
                "conduct": _results(y.conduct),
                **({"promoted": y.promoted} if y.promoted is not None else {}),
                **({"sessionsAbsent": y.sessions_absent} if y.sessions_absent is not None else {}),
                **({"daysAbsent": y.days_absent} if y.days_absent is not None else {}),
            }
            for y in doc.years
        ]
    if doc.primary_years:
        subject["primaryYears"] = [
            {
                "schoolYear": y.school_year,
                "grade": y.grade,
                "className": y.class_name,
                "subjects": [
                    {
                        k: v
                        for k, v in {
                            "subject": s.subject,
                            "midLevel": s.mid_level,
                            "yearLevel": s.year_level,
                            "midScore": s.mid_score,
                            "yearScore": s.year_score,
                        }.items()
                        if v is not None
                    }
                    for s in y.subjects
                ],
                "qualities": [{"name": t.name, "level": t.level} for t in y.qualities],
                "competences": [{"name": t.name, "level": t.level} for t in y.competences],
            }
            for y in doc.primary_years
        ]
    return {
        "@context": [VC_V2, OB_V3, base_url.rstrip("/") + CONTEXT_PATH],  # OB 3.0 terms for the issuer Profile
        "id": _credential_id(base_url, link.doc_id),
        "type": ["VerifiableCredential", "SealTrailTranscriptCredential"],
        "name": f"Học bạ số / school record — {doc.holder.full_name}",
        "issuer": issuer_profile(base_url, doc.school),
        "validFrom": _z(issued_at),
        "credentialSubject": subject,
        "credentialStatus": _status_entry(base_url, *status),
        "evidence": [_evidence(base_url, link)],
        "credentialSchema": [{"id": base_url.rstrip("/") + TRANSCRIPT_SCHEMA_PATH, "type": "JsonSchema"}],
    }


def document_credential(
    doc: schemas.Document, base_url: str, issued_at: datetime, status: tuple[str, int], link: LedgerLink
) -> dict[str, Any]:
    if isinstance(doc, schemas.Diploma):
        return diploma_credential(doc, base_url, issued_at, status, link)
    if isinstance(doc, schemas.Transcript):
        return transcript_credential(doc, base_url, issued_at, status, link)
    raise CredentialError(
        "Chỉ xuất được văn bằng và học bạ thành chứng chỉ số / only diplomas and transcripts export as credentials"
    )
