"""An in-between archived (B-LTA) version of a PDF, neither the issued nor the newest one, is found through the
log's ``archive`` entries and checked like the others, instead of answering "not in register"."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session

from ledger.entry import Entry
from registry.records import DocumentRecord, DocumentStatus
from sealtrail.deployment import Deployment
from sealtrail.settings import Settings
from signer.issue import IssuedDocument
from signer.storage import BlobStore
from tests.verifier.conftest import mark_revoked_and_superseded
from verifier.checking import check_upload, find_archived_version

EVERYTHING_DUE = 365 * 30  # days: every archive timestamp's TSA certificate expires within this


def test_an_in_between_archived_version_is_found_through_the_log(
    setup: tuple[Deployment, list[IssuedDocument]],
) -> None:
    from sealtrail.ledgerwiring import publish_checkpoint
    from sealtrail.web.app import create_app
    from signer.archiving import renew_archives

    dep, docs = setup
    mark_revoked_and_superseded(dep, docs)  # only document 0 stays issued, so only it is archived
    blobs = BlobStore(dep.settings.documents_dir)
    versions = [docs[0].pdf]
    for _ in range(2):
        report = renew_archives(dep, within_days=EVERYTHING_DUE)
        assert report.renewed == [docs[0].doc_id], report
        with Session(dep.engine) as session:
            record = session.get(DocumentRecord, docs[0].doc_id)
            assert record is not None and record.archived_sha256_pdf is not None
        versions.append(blobs.get(record.archived_sha256_pdf, "pdf"))
    original, middle, newest = versions
    assert middle != newest and newest.startswith(middle) and middle.startswith(original)
    assert hashlib.sha256(middle).hexdigest() not in (record.sha256_pdf, record.archived_sha256_pdf)

    # Before a checkpoint covers the archive entry, the middle version cannot be confirmed (fail-closed).
    unproven = check_upload(dep, middle)
    assert unproven.record is not None and unproven.record.id == docs[0].doc_id
    assert unproven.report.verdict == "indeterminate"
    assert "LOG_UNAVAILABLE" in {r.code for r in unproven.report.reasons}

    publish_checkpoint(dep)
    for pdf in versions:
        checked = check_upload(dep, pdf)
        assert checked.report.verdict == "valid", checked.report.reasons
        assert checked.record is not None and checked.record.id == docs[0].doc_id
    assert check_upload(dep, middle).archive_leaf is not None

    body = TestClient(create_app(dep.settings)).post("/api/v1/verify", files={"file": ("v1.pdf", middle)}).json()
    assert body["verdict"] == "valid" and body["document"]["id"] == docs[0].doc_id


def test_archive_entries_are_matched_on_postgresql_and_sqlite_alike(database_url: str, tmp_path: Path) -> None:
    """The log lookup filters on the entry's bytes in the database; only an archive entry of that document counts."""
    from sealtrail.ledgerwiring import ledger_for

    dep = Deployment(Settings(data_dir=tmp_path / "data", database_url=database_url))
    ledger, _ = ledger_for(dep)
    pdf = b"%PDF-1.7 an archived version"
    digest = hashlib.sha256(pdf).hexdigest()
    now = datetime.now(UTC)
    issue = Entry("issue", "VB-1", "a" * 64, "b" * 64, "", now)
    with dep.engine.begin() as conn:
        (leaf,) = ledger.append(conn, [issue])
        ledger.append(conn, [Entry("issue", "VB-2", digest, "c" * 64, "", now)])  # same hash, not an archive entry
        (archive_leaf,) = ledger.append(conn, [Entry("archive", "VB-1", digest, "", "", now, refers=leaf)])
    with Session(dep.engine) as session:
        session.add(
            DocumentRecord(
                id="VB-1",
                token="t" * 26,
                kind="diploma",
                school_code="01",
                school_name="T",
                holder_masked="N. A",
                issue_date=date(2025, 9, 5),
                status=DocumentStatus.ISSUED.value,
                leaf_index=leaf,
            )
        )
        session.commit()
    found = find_archived_version(dep, pdf)
    assert found is not None and found[0].id == "VB-1" and found[1] == archive_leaf
    assert find_archived_version(dep, b"%PDF-1.7 something else") is None
