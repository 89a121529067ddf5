"""An installation with three issued documents (two diplomas, one transcript), shared by the verifier tests.

Its dev PKI's OCSP/CRL/TSA stay up for the whole session. Tests may mark documents 1 (revoked) and 2 (superseded
by document 0); document 0 always stays valid."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

import schemas
from registry.records import DocumentRecord, DocumentStatus
from sealtrail.deployment import Deployment
from sealtrail.settings import Settings
from signer.issue import IssuedDocument
from tests.conftest import free_port

SAMPLES = ("diploma_thpt", "diploma_bachelor", "transcript_thcs")


@contextmanager
def installation(
    data_dir: Path, database_url: str | None = None, **settings: Any
) -> Iterator[tuple[Deployment, list[IssuedDocument]]]:
    """A deployment with the SAMPLES issued and a checkpoint published; its dev PKI's services up meanwhile."""
    from sealtrail.ledgerwiring import publish_checkpoint

    dep = Deployment(
        Settings(
            data_dir=data_dir, database_url=database_url, dev_pki_url=f"http://127.0.0.1:{free_port()}", **settings
        )
    )
    services = dep.start_dev_pki_services()
    try:
        issuer = dep.make_issuer()
        docs = [issuer.issue(schemas.parse_document(schemas.load_sample(name))) for name in SAMPLES]
        publish_checkpoint(dep)
        yield dep, docs
    finally:
        if services:
            services.stop()


@pytest.fixture(scope="session")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, list[IssuedDocument]]]:
    with installation(tmp_path_factory.mktemp("verdicts")) as installed:
        yield installed


def set_status(dep: Deployment, doc_id: str, status: DocumentStatus, **extra: object) -> None:
    with Session(dep.engine) as session:
        record = session.get(DocumentRecord, doc_id)
        assert record is not None
        record.status = status.value
        record.status_changed_at = datetime(2026, 3, 2, tzinfo=UTC)
        for k, v in extra.items():
            setattr(record, k, v)
        session.add(record)
        session.commit()


def mark_revoked_and_superseded(dep: Deployment, docs: list[IssuedDocument]) -> None:
    set_status(dep, docs[1].doc_id, DocumentStatus.REVOKED, status_reason="Cấp sai thông tin")
    set_status(dep, docs[2].doc_id, DocumentStatus.SUPERSEDED, superseded_by=docs[0].doc_id)
