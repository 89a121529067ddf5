"""The deployment's ledger: its signing key, origin, published-checkpoint file, and proofs for the public page."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from ledger import tlog
from ledger.entry import Entry
from ledger.note import NoteSigner, open_checkpoint
from ledger.registry import DocumentRecord
from ledger.store import Ledger
from sealtrail.deployment import Deployment


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
    if record.leaf_index is None:
        return False
    ledger, _ = ledger_for(dep)
    with dep.engine.connect() as conn:
        note = ledger.latest_checkpoint(conn)
        if note is None:
            return False
        checkpoint = open_checkpoint(note, ledger.verifier, ledger.origin)
        if record.leaf_index >= checkpoint.size:
            return False
        proof = ledger.prove_inclusion(conn, record.leaf_index, checkpoint.size)
        data = ledger.entry(conn, record.leaf_index)
    entry = Entry.parse(data)
    if entry.doc_id != record.id or entry.pdf_sha256 != record.sha256_pdf or entry.xml_sha256 != record.sha256_xml:
        return False
    tlog.verify_inclusion(record.leaf_index, checkpoint.size, tlog.leaf_hash(data), proof, checkpoint.root)
    return True


def publish_checkpoint(dep: Deployment) -> bytes:
    """Sign a checkpoint of the log and remember it outside the database (for the fork check)."""
    ledger, _ = ledger_for(dep)
    with dep.engine.begin() as conn:
        note = ledger.checkpoint(conn)
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
