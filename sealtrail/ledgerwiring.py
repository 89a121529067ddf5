"""The deployment's ledger: its signing key, origin, published-checkpoint file, and proofs for the public page."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Protocol

import httpx
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import Engine

from ledger.entry import Entry
from ledger.note import NoteSigner, open_checkpoint
from ledger.store import Ledger, LedgerError, LedgerForkError
from ledger.witness import CosignatureVerifier, add_checkpoint_body
from registry.records import DocumentRecord
from sealtrail.settings import Settings
from signer.storage import Blobs

log = logging.getLogger(__name__)


class Deployment(Protocol):
    """What the ledger's wiring uses of ``sealtrail.deployment.Deployment`` (which calls into this module)."""

    settings: Settings

    @property
    def engine(self) -> Engine: ...

    @property
    def blobs(self) -> Blobs: ...

    @property
    def log_private_key(self) -> object: ...


def ledger_for(dep: Deployment) -> tuple[Ledger, str]:
    key = dep.log_private_key
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise TypeError("the log key must be Ed25519")
    ledger = Ledger(dep.settings.log_origin, NoteSigner(dep.settings.log_origin, key))
    return ledger, ledger.verifier.vkey


def published_checkpoint_path(dep: Deployment) -> Path:
    """The last checkpoint this installation published, kept outside the database to detect restored backups."""
    return dep.settings.resolved_data_dir / "published-checkpoint"


def prove_record(dep: Deployment, record: DocumentRecord) -> bool:
    """Prove the record's issue entry against the latest signed checkpoint; False when it cannot be proven."""
    from verifier.proofcache import prove_record as prove

    return prove(dep.engine, ledger_for(dep)[0], record)


def _witness_state(dep: Deployment) -> dict[str, int]:
    path = dep.settings.resolved_data_dir / "witness-sizes.json"
    return {k: int(v) for k, v in json.loads(path.read_text()).items()} if path.exists() else {}


def _cosign(dep: Deployment, ledger: Ledger, note: bytes) -> list[str]:
    """Submit the checkpoint to each configured witness; return the cosignature lines that came back."""
    checkpoint = open_checkpoint(note, ledger.verifier, ledger.origin)
    sizes = _witness_state(dep)
    lines: list[str] = []
    for spec in dep.settings.witnesses:
        url, vkey = spec.split()
        verifier = CosignatureVerifier.from_vkey(vkey)
        old = sizes.get(vkey, 0)
        for _attempt in range(2):
            with dep.engine.connect() as conn:
                proof = ledger.prove_consistency(conn, old, checkpoint.size) if 0 < old < checkpoint.size else []
            try:
                response = httpx.post(
                    url.rstrip("/") + "/add-checkpoint", content=add_checkpoint_body(old, proof, note), timeout=10
                )
            except httpx.HTTPError as exc:
                log.warning("witness %s unreachable: %s", url, exc)
                break
            if response.status_code == 409:
                old = int(response.text.strip())
                if old > checkpoint.size:
                    raise LedgerForkError(f"witness {url} has seen {old} entries, more than this log has")
                continue
            if response.status_code == 200:
                got = [ln for ln in response.text.splitlines() if ln.startswith(f"\u2014 {verifier.name} ")]
                lines.extend(ln + "\n" for ln in got)
                sizes[vkey] = checkpoint.size
            else:
                log.warning("witness %s refused the checkpoint: %s %s", url, response.status_code, response.text[:200])
            break
    path = dep.settings.resolved_data_dir / "witness-sizes.json"
    path.write_text(json.dumps(sizes))
    return lines


def publish_checkpoint(dep: Deployment) -> bytes:
    """Sign a checkpoint of the log, collect witness cosignatures, and remember it outside the database."""
    ledger, _ = ledger_for(dep)
    with dep.engine.begin() as conn:
        note = ledger.checkpoint(conn)
    if dep.settings.witnesses:
        lines = _cosign(dep, ledger, note)
        if len(lines) < dep.settings.witness_quorum:
            raise LedgerError(
                f"only {len(lines)} of {dep.settings.witness_quorum} required witnesses cosigned; not publishing"
            )
        if lines:
            with dep.engine.begin() as conn:
                note = ledger.add_cosignatures(conn, note, lines)
    path = published_checkpoint_path(dep)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(note)
    tmp.replace(path)
    return note


def check_not_forked(dep: Deployment) -> None:
    """Raise LedgerForkError when the database's log contradicts the last checkpoint this installation published."""
    path = published_checkpoint_path(dep)
    if not path.exists():
        return
    ledger, _ = ledger_for(dep)
    with dep.engine.connect() as conn:
        ledger.check_consistent_with(conn, path.read_bytes())


def audit_deployment(dep: Deployment) -> list[str]:
    """The ledger's own audit plus the registry cross-check: every issued document has its entry, every entry's
    hashes match the stored files, and the published checkpoint is consistent with the database."""
    from sqlmodel import Session, select

    from registry.records import DocumentStatus

    ledger, _ = ledger_for(dep)
    blobs = dep.blobs
    with dep.engine.connect() as conn:
        report = ledger.audit(conn)
        problems = list(report.problems)
        size = report.size
        entries = {i: Entry.parse(ledger.entry(conn, i)) for i in range(size)}
    try:
        check_not_forked(dep)
    except Exception as exc:
        problems.append(str(exc))
    documents = ("issue", "copy", "translation")  # a copy and a translation are documents of their own
    by_doc = {e.doc_id: (i, e) for i, e in entries.items() if e.type in documents}
    with Session(dep.engine) as session:
        records = session.exec(select(DocumentRecord)).all()
    leaves = {r.id: r.leaf_index for r in records}
    for record in records:
        if record.status == DocumentStatus.PENDING.value:
            if record.id in by_doc:
                problems.append(f"{record.id} is pending but the log already has its issue entry")
            continue
        found = by_doc.get(record.id)
        if found is None or found[0] != record.leaf_index:
            problems.append(f"{record.id} is {record.status} but has no matching issue entry in the log")
            continue
        entry = found[1]
        if (entry.pdf_sha256, entry.xml_sha256) != (record.sha256_pdf, record.sha256_xml):
            problems.append(f"{record.id}: the registry's hashes differ from its log entry")
        if record.translation_of is not None and entry.refers != leaves.get(record.translation_of):
            problems.append(f"{record.id}: its log entry does not refer to its original's issue entry")
        for digest, ext in ((entry.pdf_sha256, "pdf"), (entry.xml_sha256, "xml")):
            try:
                blobs.get(digest, ext)
            except OSError as exc:
                problems.append(f"{record.id}: stored {ext.upper()} is missing or damaged ({exc})")
    archived: dict[str, Entry] = {}
    for _i, e in sorted(entries.items()):
        if e.type == "archive":
            archived[e.doc_id] = e  # the newest archive entry wins
            issue = by_doc.get(e.doc_id)
            if issue is None or e.refers != issue[0]:
                problems.append(f"archive entry {_i} for {e.doc_id} does not refer to that document's issue entry")
    for record in records:
        newest = archived.get(record.id)
        if (newest.pdf_sha256 if newest else None) != record.archived_sha256_pdf:
            problems.append(f"{record.id}: the registry's archived version differs from the log's newest archive entry")
        elif newest is not None:
            try:
                blobs.get(newest.pdf_sha256, "pdf")
            except OSError as exc:
                problems.append(f"{record.id}: stored archived PDF is missing or damaged ({exc})")
    known = {r.id for r in records}
    problems.extend(f"log entry for unknown document {doc_id}" for doc_id in by_doc if doc_id not in known)
    return problems


class Checkpointer:
    """Signs (and gets witnessed) a new checkpoint every ``checkpoint_interval`` seconds when the log has grown."""

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpointer", daemon=True)

    def start(self) -> Checkpointer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def tick(self) -> bool:
        ledger, _ = ledger_for(self.dep)
        with self.dep.engine.connect() as conn:
            size = ledger.size(conn)
            latest = ledger.latest_checkpoint(conn)
        published = open_checkpoint(latest, ledger.verifier, ledger.origin).size if latest else -1
        if size == published:
            return False
        publish_checkpoint(self.dep)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.dep.settings.checkpoint_interval):
            try:
                self.tick()
            except Exception:
                log.exception("could not publish a checkpoint; will retry")
