"""The deployment's ledger: its signing key, origin, published-checkpoint file, and proofs for the public page."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import Engine

from ledger import publishing
from ledger.note import NoteSigner
from ledger.store import Ledger
from registry.audit import audit
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


def publish_checkpoint(dep: Deployment) -> bytes:
    """Sign a checkpoint of the log, collect witness cosignatures, and remember it outside the database."""
    s = dep.settings
    return publishing.publish(
        dep.engine, ledger_for(dep)[0], published_checkpoint_path(dep), s.witnesses, s.witness_quorum
    )


def check_not_forked(dep: Deployment) -> None:
    """Raise LedgerForkError when the database's log contradicts the last checkpoint this installation published."""
    publishing.check_not_forked(dep.engine, ledger_for(dep)[0], published_checkpoint_path(dep))


def audit_deployment(dep: Deployment) -> list[str]:
    """The ledger's own audit plus the registry cross-check (registry/audit.py)."""
    return audit(dep.engine, ledger_for(dep)[0], dep.blobs, lambda: check_not_forked(dep))


class Checkpointer(publishing.Checkpointer):
    """Signs (and gets witnessed) a new checkpoint every ``checkpoint_interval`` seconds when the log has grown."""

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        super().__init__(
            dep.engine, ledger_for(dep)[0], lambda: publish_checkpoint(dep), dep.settings.checkpoint_interval
        )
