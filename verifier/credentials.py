"""Checking credentials: the online verifier (this installation's registry, status lists and log) and the
offline one (a trust bundle written by ``sealtrail export-trust``), and the offline status of a signed file.
Making credentials is ``signer.credentials``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from ledger import tlog
from ledger.entry import Entry
from ledger.note import NoteError, NoteVerifier, open_checkpoint
from ledger.proof import TlogProof
from schemas.statuslist import (
    STATUS_DIR,
    STATUS_INDEX,
    StatusListError,
    bit,
    decode,
    list_url,
    name_from_url,
    split_name,
)
from verifier.bundlestatus import open_manifest, status_lines_for
from verifier.host import Installation
from verifier.vc import JwsError, LedgerCheck, StatusSource, VcVerifier

log = logging.getLogger(__name__)


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
    try:
        found = offline_revoked(bundle_dir, digest or hashlib.sha256(data).hexdigest())
        revoked = found is True
        if found is not None:  # listed: revoked, or good (no reason); not listed: status unknown
            reason = Reason(*R_REVOKED) if revoked else None
    except (OSError, ValueError, JwsError) as exc:  # StatusListError, StatusManifestError are ValueErrors
        reason = Reason(R_NO_STATUS[0], f"{R_NO_STATUS[1]} ({exc})", f"{R_NO_STATUS[2]} ({exc})")
    if reason is not None:
        report.reasons.append(reason)
        report.verdict = "invalid" if revoked else "indeterminate"
    return report


def offline_revoked(bundle_dir: Path, key: str) -> bool | None:
    """The bundle's status bit for an issued file's SHA-256 or a document id: True (revoked or superseded),
    False, or None when the bundle does not list it. The index and the list are believed only as the bundle's
    signed status manifest vouches for them (verifier.bundlestatus); raises ValueError when they are not."""
    manifest = open_manifest(bundle_dir)
    index = json.loads(manifest.read(bundle_dir, f"{STATUS_DIR}/{STATUS_INDEX}").decode("ascii"))
    position = index.get(key)
    if position is None:
        return None
    name, _, number = str(position).rpartition("#")
    school, year = split_name(name)
    token = manifest.read(bundle_dir, f"{STATUS_DIR}/{school}/{year}/revocation.jwt").decode("ascii").strip()
    listing = offline_verifier(bundle_dir).open_status_list(token, name=name)
    return bit(decode(str(listing["credentialSubject"].get("encodedList", ""))), int(number))


def online_status_source(dep: Installation) -> StatusSource:
    base = dep.settings.public_base_url

    def source(url: str) -> str | None:
        try:
            name, _purpose = name_from_url(url)
        except StatusListError:
            return None
        if url != list_url(base, name):
            return None  # another installation's list: never fetched
        return dep.signed_status_list(name)  # None when the seal key is unreachable: status unknown, not valid

    return source


def online_ledger_check(dep: Installation) -> LedgerCheck:
    ledger = dep.ledger

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


def online_verifier(dep: Installation) -> VcVerifier:
    from schemas.vcschema import credential_errors

    return VcVerifier(
        dep.trust_roots, dep.intermediates, online_status_source(dep), online_ledger_check(dep), credential_errors
    )


def offline_verifier(bundle_dir: Path) -> VcVerifier:
    from schemas.vcschema import credential_errors
    from verifier.offline import TrustBundle

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


def bundle_status_lines(bundle_dir: Path, doc_id: str, max_age_days: float) -> tuple[bool, list[str]]:
    """``sealtrail verify-qr --trust BUNDLE``: (the bundle's signed status says the document stands, lines to
    print). Revoked or superseded → not valid; not listed or not vouched for by the manifest → unknown, not valid."""
    try:
        revoked = offline_revoked(bundle_dir, doc_id)
    except (OSError, ValueError) as exc:
        revoked, problem = None, str(exc)
    else:
        problem = "the bundle does not list this document"
    lines = status_lines_for(bundle_dir, max_age_days)
    if revoked is True:
        return False, [
            "KHÔNG HỢP LỆ / NOT VALID: Văn bản đã bị thu hồi hoặc thay thế / The document has been revoked or "
            "superseded",
            *lines,
        ]
    if revoked is None:
        return False, [
            f"CẢNH BÁO / WARNING: không xác định được trạng thái văn bản / the document's status is unknown "
            f"({problem})",
            *lines,
        ]
    return True, ["Trạng thái / status: chưa bị thu hồi / not revoked", *lines]
