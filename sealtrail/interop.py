"""Interoperability wiring: status lists signed on request, credentials exported from issued documents, and the
online and offline credential verifiers, built from a Deployment or a trust bundle.

A status list is signed when asked for, from the registry as it stands (ledger/statusindex.py), and cached by
content: the same bits are not signed twice within ``RESIGN_AFTER``, and any change of a document's status
(revoked, superseded) yields a newly signed list on the next request.
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
from hsm_adapters.base import KeyBackendError
from ledger import tlog
from ledger.entry import Entry
from ledger.note import NoteError, NoteVerifier, open_checkpoint
from ledger.proof import TlogProof
from ledger.registry import DocumentRecord, DocumentStatus
from ledger.statusindex import list_names, status_bits
from ledger.store import LedgerError
from schemas.xml import from_xml
from sealtrail.deployment import Deployment
from signer.vc import CredentialError, LedgerLink, document_credential, issuer_id, sign_jwt, status_list_credential
from signer.xades import signed_data
from verifier.statuslist import StatusListError, bit, decode, list_url, name_from_url, split_name
from verifier.vc import JwsError, LedgerCheck, StatusSource, VcVerifier

log = logging.getLogger(__name__)
RESIGN_AFTER = timedelta(hours=12)
STATUS_DIR = "status"
STATUS_INDEX = "index.json"
_cache: dict[tuple[str, str], tuple[bytes, str, datetime]] = {}
_lock = threading.Lock()


class ExportError(PermanentError):
    """A credential cannot be exported; the message is for the person asking (Vietnamese first)."""


class DocumentNotFoundError(ExportError):
    """No such document (or not the asking school's: the same answer, so ids of other schools are not revealed)."""


def seal_kid(dep: Deployment, school_code: str) -> str:
    return f"{issuer_id(dep.settings.public_base_url, school_code)}#seal"


def status_list_jwt(dep: Deployment, name: str) -> str:
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


def write_status_lists(dep: Deployment, directory: Path) -> list[Path]:
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
            for sha in (row.sha256_pdf, row.sha256_xml, row.archived_sha256_pdf)
            if sha
        }
    path = directory / STATUS_DIR / STATUS_INDEX
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(index, sort_keys=True, indent=0) + "\n", encoding="ascii")
    written.append(path)
    return written


def apply_offline_status(bundle_dir: Path, data: bytes, report: Any, *, digest: str | None = None) -> Any:
    """A signed file checked offline with a trust bundle: look its hash (or ``digest``, another issued file's
    SHA-256, e.g. a translation's original) up in the bundle's status index and read its bit in the signed list.
    Set → invalid; not found or no list → never valid (indeterminate)."""
    from verifier.pdf import Reason
    from verifier.vc import R_NO_STATUS, R_REVOKED

    if report.verdict == "invalid":
        return report
    reason: Reason | None = Reason(*R_NO_STATUS)
    revoked = False
    index_path = bundle_dir / STATUS_DIR / STATUS_INDEX
    try:
        index = json.loads(index_path.read_text(encoding="ascii")) if index_path.is_file() else {}
        position = index.get(digest or hashlib.sha256(data).hexdigest())
        if position is not None:
            name, _, number = str(position).rpartition("#")
            school, year = split_name(name)
            token = (bundle_dir / STATUS_DIR / school / year / "revocation.jwt").read_text(encoding="ascii").strip()
            verifier = offline_verifier(bundle_dir)
            listing = verifier.open_status_list(token, name=name)
            revoked = bit(decode(str(listing["credentialSubject"].get("encodedList", ""))), int(number))
            reason = Reason(*R_REVOKED) if revoked else None
    except (OSError, ValueError, JwsError) as exc:  # StatusListError is a ValueError
        reason = Reason(R_NO_STATUS[0], f"{R_NO_STATUS[1]} ({exc})", f"{R_NO_STATUS[2]} ({exc})")
    if reason is not None:
        report.reasons.append(reason)
        report.verdict = "invalid" if revoked else "indeterminate"
    return report


def _ledger_link(dep: Deployment, record: DocumentRecord) -> LedgerLink:
    from sealtrail.ledgerwiring import ledger_for, publish_checkpoint

    assert record.leaf_index is not None and record.sha256_pdf and record.sha256_xml
    ledger, _ = ledger_for(dep)
    with dep.engine.connect() as conn:
        entry = ledger.entry(conn, record.leaf_index)
        try:
            proof: bytes | None = ledger.tlog_proof(conn, record.leaf_index)
        except LedgerError:
            proof = None
    if proof is None:  # no checkpoint covers the entry yet: sign one now so the credential carries its proof
        publish_checkpoint(dep)
        with dep.engine.connect() as conn:
            try:
                proof = ledger.tlog_proof(conn, record.leaf_index)
            except LedgerError:
                proof = None
    return LedgerLink(record.id, ledger.origin, record.leaf_index, record.sha256_pdf, record.sha256_xml, entry, proof)


def credential_for(dep: Deployment, doc_id: str, school_code: str | None = None) -> dict[str, Any]:
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


def export_vc(dep: Deployment, doc_id: str, school_code: str | None = None) -> str:
    """The document as a signed credential (compact JWS, application/vc+jwt), checked against its schemas."""
    from schemas.vcschema import credential_errors

    credential = credential_for(dep, doc_id, school_code)
    errors = credential_errors(credential)
    if errors:
        raise ExportError("Chứng chỉ số sai cấu trúc / the credential fails its schema: " + "; ".join(errors[:5]))
    school = str(credential["issuer"]["id"]).rsplit("/", 1)[-1]
    return sign_jwt(credential, dep.signing_keys["seal"], seal_kid(dep, school))


def online_status_source(dep: Deployment) -> StatusSource:
    base = dep.settings.public_base_url

    def source(url: str) -> str | None:
        try:
            name, _purpose = name_from_url(url)
        except StatusListError:
            return None
        if url != list_url(base, name):
            return None  # another installation's list: never fetched
        try:
            return status_list_jwt(dep, name)
        except (KeyBackendError, StatusListError) as exc:  # the seal key is unreachable: status unknown, not valid
            log.warning("status list %s could not be signed: %s", name, exc)
            return None

    return source


def online_ledger_check(dep: Deployment) -> LedgerCheck:
    from sealtrail.ledgerwiring import ledger_for

    ledger, _ = ledger_for(dep)

    def check(link: dict[str, Any], entry: Entry) -> bool | None:
        if link.get("logOrigin") != ledger.origin or not isinstance(link.get("leafIndex"), int):
            return None
        leaf = int(link["leafIndex"])
        with dep.engine.connect() as conn:
            note = ledger.latest_checkpoint(conn)
            if note is None:
                return None
            checkpoint = open_checkpoint(note, ledger.verifier, ledger.origin)
            if leaf >= checkpoint.size:
                return None
            data = ledger.entry(conn, leaf)
            proof = ledger.prove_inclusion(conn, leaf, checkpoint.size)
        if data != entry.canonical():
            return False
        try:
            tlog.verify_inclusion(leaf, checkpoint.size, tlog.leaf_hash(data), proof, checkpoint.root)
        except tlog.ProofError:
            return False
        return True

    return check


def offline_status_source(bundle_dir: Path) -> StatusSource:
    def source(url: str) -> str | None:
        try:
            name, purpose = name_from_url(url)
        except StatusListError:
            return None
        school, year = split_name(name)
        path = bundle_dir / STATUS_DIR / school / year / f"{purpose}.jwt"
        if ".." in Path(school).parts or not path.is_file():
            return None
        return path.read_text(encoding="ascii").strip()

    return source


def offline_ledger_check(log_vkey: str | None) -> LedgerCheck:
    """Checks the tlog proof the credential carries against the bundle's log key (no network)."""

    def check(link: dict[str, Any], entry: Entry) -> bool | None:
        proof_text = link.get("tlogProof")
        if not log_vkey or not isinstance(proof_text, str):
            return None
        verifier = NoteVerifier.from_vkey(log_vkey)
        if link.get("logOrigin") != verifier.name:
            return None
        try:
            proof = TlogProof.parse(proof_text.encode())
            if proof.index != link.get("leafIndex"):
                return False
            proof.verify(entry.canonical(), verifier, verifier.name)
        except NoteError:
            return False
        return True

    return check


def online_verifier(dep: Deployment) -> VcVerifier:
    from schemas.vcschema import credential_errors

    return VcVerifier(
        dep.trust_roots, dep.intermediates, online_status_source(dep), online_ledger_check(dep), credential_errors
    )


def offline_verifier(bundle_dir: Path) -> VcVerifier:
    from schemas.vcschema import credential_errors
    from sealtrail.offline import TrustBundle

    bundle = TrustBundle.load(bundle_dir)
    return VcVerifier(
        bundle.roots,
        bundle.intermediates,
        offline_status_source(bundle_dir),
        offline_ledger_check(bundle.log_vkey),
        credential_errors,
    )


def looks_like_credential(path: Path, data: bytes) -> bool:
    """A compact JWS (.jwt) or our JSON wrapper of one (.json)."""
    head = data[:64].lstrip()
    return path.suffix.lower() in (".jwt", ".json") or head.startswith((b"eyJ", b'{"jwt"', b'{\n  "jwt"'))


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


def credential_token(data: bytes) -> str:
    """The compact JWS in a file written by :func:`write_credential` (the decoded copy there is never trusted)."""
    import json

    text = data.decode("utf-8", errors="replace").strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            return text
        return str(obj.get("jwt", "")) if isinstance(obj, dict) else text
    return text
