"""Credentials out of issued documents: W3C Bitstring Status Lists signed on request from the registry, and
each issued document as a signed Verifiable Credential (VC 2.0 / Open Badges 3.0, compact JWS by the school's seal).

A status list is signed when asked for, from the registry as it stands (registry/statusindex.py), and cached by
content: the same bits are not signed twice within ``RESIGN_AFTER``, and any change of a document's status
(revoked, superseded) yields a newly signed list on the next request. Checking credentials is
``verifier.credentials``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from errors import PermanentError
from ledger.store import LedgerError
from registry.records import DocumentRecord, DocumentStatus
from registry.statusindex import list_names, status_bits
from schemas.statuslist import STATUS_DIR, STATUS_INDEX, split_name
from schemas.xml import from_xml
from signer.host import Installation
from signer.vc import CredentialError, LedgerLink, document_credential, issuer_id, sign_jwt, status_list_credential
from signer.xades import signed_data

log = logging.getLogger(__name__)
RESIGN_AFTER = timedelta(hours=12)
_cache: dict[tuple[str, str], tuple[bytes, str, datetime]] = {}
_lock = threading.Lock()


class ExportError(PermanentError):
    """A credential cannot be exported; the message is for the person asking (Vietnamese first)."""


class DocumentNotFoundError(ExportError):
    """No such document (or not the asking school's: the same answer, so ids of other schools are not revealed)."""


def seal_kid(dep: Installation, school_code: str) -> str:
    return f"{issuer_id(dep.settings.public_base_url, school_code)}#seal"


def status_list_jwt(dep: Installation, name: str) -> str:
    """The signed BitstringStatusListCredential for list ``name`` (school/year), as the registry stands now."""
    school, _year = split_name(name)
    bits = status_bits(dep.engine, name)
    digest = hashlib.sha256(bits).digest()
    key = (str(dep.settings.resolved_data_dir), name)
    now = datetime.now(UTC)
    with _lock:
        cached = _cache.get(key)
        if cached and cached[0] == digest and now - cached[2] < RESIGN_AFTER:
            return cached[1]
    with Session(dep.engine) as session:
        school_name = session.exec(
            select(DocumentRecord.school_name).where(DocumentRecord.status_list == name).limit(1)
        ).first()
    base = dep.settings.public_base_url
    issuer = {"id": issuer_id(base, school), "type": ["Profile"], "name": school_name or school}
    credential = status_list_credential(base, name, issuer, bits, now)
    token = sign_jwt(credential, dep.signing_keys["seal"], seal_kid(dep, school))
    with _lock:
        _cache[key] = (digest, token, now)
    return token


def write_status_lists(dep: Installation, directory: Path) -> list[Path]:
    """Write every school-year list under ``directory/status/<school>/<year>/revocation.jwt``, and
    ``status/index.json`` mapping each issued file's SHA-256 (signed PDF, signed XML, newest archived PDF) to its
    list position, so a file can be checked offline. The hashes are already public in the log; no personal data."""
    written = []
    for name in list_names(dep.engine):
        school, year = split_name(name)
        path = directory / STATUS_DIR / school / year / "revocation.jwt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(status_list_jwt(dep, name) + "\n", encoding="ascii")
        written.append(path)
    with Session(dep.engine) as session:
        rows = session.exec(
            select(DocumentRecord).where(
                DocumentRecord.status_list.is_not(None),  # type: ignore[union-attr]
                DocumentRecord.status != DocumentStatus.PENDING.value,
            )
        ).all()
        index = {
            sha: f"{row.status_list}#{row.status_index}"
            for row in rows
            for sha in (row.sha256_pdf, row.sha256_xml, row.archived_sha256_pdf, row.id)  # id: for verify-qr
            if sha
        }
    path = directory / STATUS_DIR / STATUS_INDEX
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(index, sort_keys=True, indent=0) + "\n", encoding="ascii")
    written.append(path)
    return written


def _ledger_link(dep: Installation, record: DocumentRecord) -> LedgerLink:
    assert record.leaf_index is not None and record.sha256_pdf and record.sha256_xml
    ledger = dep.ledger
    with dep.engine.connect() as conn:
        entry = ledger.entry(conn, record.leaf_index)
        try:
            proof: bytes | None = ledger.tlog_proof(conn, record.leaf_index)
        except LedgerError:
            proof = None
    if proof is None:  # no checkpoint covers the entry yet: sign one now so the credential carries its proof
        dep.publish_checkpoint()
        with dep.engine.connect() as conn:
            try:
                proof = ledger.tlog_proof(conn, record.leaf_index)
            except LedgerError:
                proof = None
    return LedgerLink(record.id, ledger.origin, record.leaf_index, record.sha256_pdf, record.sha256_xml, entry, proof)


def credential_for(dep: Installation, doc_id: str, school_code: str | None = None) -> dict[str, Any]:
    """The unsigned credential of an issued document (``school_code`` limits it to that school's documents)."""
    with Session(dep.engine) as session:
        record = session.get(DocumentRecord, doc_id)
        if record is not None:
            session.expunge(record)
    if record is None or (school_code is not None and record.school_code != school_code):
        raise DocumentNotFoundError(f"Không có văn bản {doc_id} / no document {doc_id}")
    if record.status == DocumentStatus.PENDING.value or record.sha256_xml is None or record.leaf_index is None:
        raise ExportError(f"Văn bản {doc_id} chưa được cấp xong / document {doc_id} has not been issued")
    if record.status_list is None or record.status_index is None:
        raise ExportError(f"Văn bản {doc_id} chưa có vị trí trong danh sách trạng thái / no status list position")
    doc = from_xml(signed_data(dep.blobs.get(record.sha256_xml, "xml")))
    issued_at = record.issued_at or datetime.combine(record.issue_date, datetime.min.time(), UTC)
    link = _ledger_link(dep, record)
    try:
        return document_credential(
            doc, dep.settings.public_base_url, issued_at, (record.status_list, record.status_index), link
        )
    except CredentialError as exc:
        raise ExportError(str(exc)) from None


def export_vc(dep: Installation, doc_id: str, school_code: str | None = None) -> str:
    """The document as a signed credential (compact JWS, application/vc+jwt), checked against its schemas."""
    from schemas.vcschema import credential_errors

    credential = credential_for(dep, doc_id, school_code)
    errors = credential_errors(credential)
    if errors:
        raise ExportError("Chứng chỉ số sai cấu trúc / the credential fails its schema: " + "; ".join(errors[:5]))
    school = str(credential["issuer"]["id"]).rsplit("/", 1)[-1]
    return sign_jwt(credential, dep.signing_keys["seal"], seal_kid(dep, school))


def write_credential(path: Path, token: str) -> None:
    """``.json``: the decoded credential beside its compact JWS (``jwt``); anything else: the JWS alone."""
    if path.suffix.lower() == ".json":
        import base64
        import json

        body = token.split(".")[1]
        credential = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        text = json.dumps({"jwt": token, "credential": credential}, ensure_ascii=False, indent=2)
        path.write_text(text + "\n", encoding="utf-8")
    else:
        path.write_text(token + "\n", encoding="ascii")
