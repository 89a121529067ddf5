"""The archive job over a real installation: renew to B-LTA, log it, keep old and new versions valid."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

import schemas
from ledger.registry import DocumentRecord
from sealtrail.archiving import renew_archives
from sealtrail.deployment import Deployment
from sealtrail.ledgerwiring import audit_deployment
from sealtrail.settings import Settings
from signer.issue import IssuedDocument
from signer.storage import BlobStore
from tests.conftest import free_port


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, IssuedDocument]]:
    from sealtrail.demo import issuer_for

    dep = Deployment(Settings(data_dir=tmp_path_factory.mktemp("arch"), dev_pki_url=f"http://127.0.0.1:{free_port()}"))
    services = dep.start_dev_pki_services()
    try:
        issued = issuer_for(dep).issue(schemas.parse_document(schemas.load_sample("diploma_thpt")))
        yield dep, issued
    finally:
        if services:
            services.stop()


def _record(dep: Deployment, doc_id: str) -> DocumentRecord:
    with Session(dep.engine) as session:
        record = session.get(DocumentRecord, doc_id)
        assert record is not None
        return record


def test_due_document_is_renewed_logged_and_both_versions_verify(
    installation: tuple[Deployment, IssuedDocument], tmp_path: Path
) -> None:
    dep, issued = installation
    report = renew_archives(dep)
    assert report.renewed == [issued.doc_id] and not report.failed
    record = _record(dep, issued.doc_id)
    assert record.sha256_pdf is not None and record.archived_sha256_pdf not in (None, record.sha256_pdf)
    new_pdf = BlobStore(dep.settings.documents_dir).get(record.archived_sha256_pdf or "", "pdf")
    assert new_pdf.startswith(issued.pdf)  # an incremental update: the issued bytes are untouched inside
    path = tmp_path / "archived.pdf"
    path.write_bytes(new_pdf)
    text = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, timeout=60).stdout
    assert text.count("Signature Validation: Signature is Valid.") == 2, text
    assert dep.pdf_verifier.verify(new_pdf).verdict == "valid"
    assert dep.pdf_verifier.verify(issued.pdf).verdict == "valid"
    assert audit_deployment(dep) == []

    again = renew_archives(dep)
    assert again.renewed == [] and again.not_due == [issued.doc_id]


def test_dead_timestamp_authority_is_reported_and_nothing_changes(
    installation: tuple[Deployment, IssuedDocument],
) -> None:
    dep, issued = installation
    before = _record(dep, issued.doc_id).archived_sha256_pdf
    broken = Deployment(dep.settings.model_copy(update={"timestamp_urls": [f"http://127.0.0.1:{free_port()}/tsa"]}))
    report = renew_archives(broken, within_days=100_000)  # everything is due
    assert report.renewed == [] and [doc for doc, _ in report.failed] == [issued.doc_id]
    assert "timestamp" in report.failed[0][1]
    assert _record(dep, issued.doc_id).archived_sha256_pdf == before
    assert audit_deployment(dep) == []


def test_audit_notices_a_registry_that_disagrees_with_the_archive_entries(
    installation: tuple[Deployment, IssuedDocument],
) -> None:
    dep, issued = installation
    with Session(dep.engine) as session:
        record = session.get(DocumentRecord, issued.doc_id)
        assert record is not None
        saved = record.archived_sha256_pdf
        record.archived_sha256_pdf = record.sha256_pdf
        session.add(record)
        session.commit()
    try:
        assert any("archived version differs" in p for p in audit_deployment(dep))
    finally:
        with Session(dep.engine) as session:
            record = session.get(DocumentRecord, issued.doc_id)
            assert record is not None
            record.archived_sha256_pdf = saved
            session.add(record)
            session.commit()
