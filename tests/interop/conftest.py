"""A deployment on the session's dev PKI (live OCSP/CRL/TSA) with a diploma and a transcript issued and logged."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session

import schemas
from registry.records import DocumentRecord, DocumentStatus
from sealtrail.deployment import Deployment
from sealtrail.settings import Settings
from signer.issue import IssuedDocument


@dataclass
class Issued:
    dep: Deployment
    diploma: IssuedDocument
    transcript: IssuedDocument

    def set_status(self, doc_id: str, status: DocumentStatus, **extra: object) -> None:
        with Session(self.dep.engine) as session:
            record = session.get(DocumentRecord, doc_id)
            assert record is not None
            record.status = status.value
            record.status_changed_at = datetime.now(UTC)
            for key, value in extra.items():
                setattr(record, key, value)
            session.add(record)
            session.commit()


def deployment_on(dev_pki, data_dir: Path, **settings: object) -> Deployment:  # type: ignore[no-untyped-def]
    """A data directory whose PKI is the session's dev PKI (already served on loopback)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "pki").symlink_to(dev_pki.directory, target_is_directory=True)
    dep = Deployment(Settings(data_dir=data_dir, dev_pki_url=dev_pki.base_url, **settings))  # type: ignore[arg-type]
    assert dep.start_dev_pki_services() is None  # the session's services answer for this PKI
    return dep


@pytest.fixture(scope="module")
def issued(dev_pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issued]:  # type: ignore[no-untyped-def]
    from sealtrail.ledgerwiring import publish_checkpoint

    dep = deployment_on(dev_pki, tmp_path_factory.mktemp("interop") / "data")
    issuer = dep.make_issuer()
    diploma = issuer.issue(schemas.parse_document(schemas.load_sample("diploma_thpt")))
    transcript = issuer.issue(schemas.parse_document(schemas.load_sample("transcript_thcs")))
    publish_checkpoint(dep)
    yield Issued(dep, diploma, transcript)
