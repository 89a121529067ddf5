"""The archive job over a real installation: renew to B-LTA, log it, keep the old and new versions valid.

The tests share one installation (a transcript and a diploma, issued once) and run in file order: the first
archives both documents, the later ones build on that.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlmodel import Session

import schemas
from ledger.entry import Entry
from registry.records import DocumentRecord
from sealtrail.deployment import Deployment
from sealtrail.ledgerwiring import audit_deployment, ledger_for, publish_checkpoint
from sealtrail.settings import Settings
from signer import archiving
from signer.archiving import renew_archives
from signer.issue import IssuedDocument
from signer.storage import BlobStore
from tests.conftest import free_port

pytestmark = pytest.mark.slow
SEALTRAIL = [sys.executable, "-m", "sealtrail"]
EVERYTHING_DUE = 100_000  # days: every document timestamp's TSA certificate expires within this


class Installation:
    def __init__(self, dep: Deployment, transcript: IssuedDocument, diploma: IssuedDocument) -> None:
        self.dep, self.transcript, self.diploma = dep, transcript, diploma
        self.blobs = BlobStore(dep.settings.documents_dir)

    def record(self, doc_id: str) -> DocumentRecord:
        with Session(self.dep.engine) as session:
            record = session.get(DocumentRecord, doc_id)
            assert record is not None
            return record

    def current_pdf(self, doc_id: str) -> bytes:
        record = self.record(doc_id)
        return self.blobs.get(record.archived_sha256_pdf or record.sha256_pdf or "", "pdf")

    def log(self) -> list[Entry]:
        ledger, _ = ledger_for(self.dep)
        with self.dep.engine.connect() as conn:
            return [Entry.parse(ledger.entry(conn, i)) for i in range(ledger.size(conn))]

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environ = {
            **os.environ,
            "SEALTRAIL_DATA_DIR": str(self.dep.settings.data_dir),
            "SEALTRAIL_DEV_PKI_URL": self.dep.settings.dev_pki_url,
            "SEALTRAIL_DATABASE_URL": self.dep.settings.effective_database_url,
            **env,
        }
        return subprocess.run([*SEALTRAIL, *args], env=environ, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def inst(tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None) -> Iterator[Installation]:
    dep = Deployment(
        Settings(
            data_dir=tmp_path_factory.mktemp("arch"),
            dev_pki_url=f"http://127.0.0.1:{free_port()}",
            database_url=module_database_url,
        )
    )
    services = dep.start_dev_pki_services()
    try:
        issuer = dep.make_issuer()
        transcript = issuer.issue(schemas.parse_document(schemas.load_sample("transcript_thcs")))
        diploma = issuer.issue(schemas.parse_document(schemas.load_sample("diploma_thpt")))
        yield Installation(dep, transcript, diploma)
    finally:
        if services:
            services.stop()


def _pdfsig_valid(pdf: bytes, tmp_path: Path) -> int:
    path = tmp_path / "check.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, timeout=60).stdout
    return text.count("Signature Validation: Signature is Valid.")


def _document_timestamps(pdf: bytes) -> list[str]:
    return [ts.field_name for ts in PdfFileReader(BytesIO(pdf), strict=False).embedded_timestamp_signatures]


def _api_verdict(client: TestClient, pdf: bytes, doc_id: str) -> str:
    response = client.post("/api/v1/verify", files={"file": ("hocba.pdf", pdf, "application/pdf")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.get("document", {"id": doc_id})["id"] == doc_id, body  # matched to its record, when reported
    return str(body["verdict"])


def test_due_documents_are_renewed_logged_and_both_versions_verify(inst: Installation, tmp_path: Path) -> None:
    dep, t = inst.dep, inst.transcript
    log_before = inst.log()
    report = renew_archives(dep)
    assert report.renewed == [t.doc_id, inst.diploma.doc_id] and not report.failed and not report.not_due

    record = inst.record(t.doc_id)
    assert record.sha256_pdf == t.record.sha256_pdf  # the issued PDF's hash stays on the record
    assert record.archived_sha256_pdf not in (None, record.sha256_pdf) and record.archived_at is not None
    assert inst.blobs.get(record.sha256_pdf or "", "pdf") == t.pdf  # the old file is still there, unchanged
    new_pdf = inst.blobs.get(record.archived_sha256_pdf or "", "pdf")
    assert new_pdf.startswith(t.pdf)  # an incremental update: the issued bytes are untouched inside
    assert _document_timestamps(new_pdf) == ["archive_timestamp_1"]
    assert _pdfsig_valid(new_pdf, tmp_path) == 3  # teacher, principal, seal; pdfsig skips document timestamps

    # One 'archive' entry per document, naming its issue entry and the new version.
    added = inst.log()[len(log_before) :]
    assert [(e.type, e.doc_id, e.refers) for e in added] == [
        ("archive", t.doc_id, t.leaf_index),
        ("archive", inst.diploma.doc_id, inst.diploma.leaf_index),
    ]
    assert added[0].pdf_sha256 == record.archived_sha256_pdf

    # Both the PDF the student downloaded and the archived one verify, offline and through the public API.
    assert dep.pdf_verifier.verify(t.pdf).verdict == "valid"
    assert dep.pdf_verifier.verify(new_pdf).verdict == "valid"
    from sealtrail.web.app import create_app

    publish_checkpoint(dep)  # what the running service's Checkpointer does: the log now proves the issue entry
    client = TestClient(create_app(dep.settings))
    assert _api_verdict(client, t.pdf, t.doc_id) == "valid"
    assert _api_verdict(client, new_pdf, t.doc_id) == "valid"
    assert client.get(urlsplit(t.qr_payload).path).status_code == 200  # the QR page still proves the issue entry
    assert audit_deployment(dep) == []

    again = renew_archives(dep)
    assert again.renewed == [] and again.failed == []
    assert again.not_due == [t.doc_id, inst.diploma.doc_id]
    assert len(inst.log()) == len(log_before) + 2


def test_a_due_archive_gets_the_next_timestamp_in_the_chain(inst: Installation, tmp_path: Path) -> None:
    dep, t = inst.dep, inst.transcript
    first = inst.current_pdf(t.doc_id)
    report = renew_archives(dep, within_days=EVERYTHING_DUE)
    assert report.renewed == [t.doc_id, inst.diploma.doc_id]
    second = inst.current_pdf(t.doc_id)
    assert second != first and second.startswith(first)
    assert _document_timestamps(second) == ["archive_timestamp_1", "archive_timestamp_2"]
    assert inst.blobs.get(inst.record(t.doc_id).sha256_pdf or "", "pdf") == t.pdf
    for pdf in (t.pdf, first, second):
        assert dep.pdf_verifier.verify(pdf).verdict == "valid"
    assert _pdfsig_valid(second, tmp_path) == 3
    assert audit_deployment(dep) == []


def test_dead_timestamp_authority_is_reported_and_nothing_changes(inst: Installation) -> None:
    dep = inst.dep
    before = {d: inst.record(d).archived_sha256_pdf for d in (inst.transcript.doc_id, inst.diploma.doc_id)}
    log_size = len(inst.log())
    broken = Deployment(dep.settings.model_copy(update={"timestamp_urls": [f"http://127.0.0.1:{free_port()}/tsa"]}))
    report = renew_archives(broken, within_days=EVERYTHING_DUE)
    assert report.renewed == [] and [doc for doc, _ in report.failed] == list(before)
    assert all("timestamp" in why for _, why in report.failed), report.failed
    assert {d: inst.record(d).archived_sha256_pdf for d in before} == before  # still the old version
    assert len(inst.log()) == log_size
    assert audit_deployment(dep) == []


def test_one_failing_document_does_not_stop_the_others(inst: Installation) -> None:
    t, d = inst.transcript, inst.diploma
    path = inst.blobs.path(inst.record(d.doc_id).archived_sha256_pdf or "", "pdf")
    hidden = path.with_suffix(".hidden")
    path.rename(hidden)
    try:
        report = renew_archives(inst.dep, within_days=EVERYTHING_DUE)
    finally:
        hidden.rename(path)
    assert report.renewed == [t.doc_id]
    assert [doc for doc, _ in report.failed] == [d.doc_id] and "cannot be read" in report.failed[0][1]
    assert audit_deployment(inst.dep) == []


def test_a_record_changed_meanwhile_is_not_overwritten(inst: Installation, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another archive run finishes while this one is timestamping: this one backs off and logs nothing
    (it read both records before the other run changed them)."""
    real = archiving.extend_to_lta
    calls: list[int] = []

    def racing(pdf: bytes, **kwargs: object) -> bytes:
        calls.append(1)
        if len(calls) == 1:
            with monkeypatch.context() as m:
                m.setattr(archiving, "extend_to_lta", real)
                assert len(renew_archives(inst.dep, within_days=EVERYTHING_DUE).renewed) == 2
        return real(pdf, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(archiving, "extend_to_lta", racing)
    log_size = len(inst.log())
    report = renew_archives(inst.dep, within_days=EVERYTHING_DUE)
    assert report.renewed == [] and [doc for doc, _ in report.failed] == [inst.transcript.doc_id, inst.diploma.doc_id]
    assert all("changed while" in why for _, why in report.failed)
    assert len(inst.log()) == log_size + 2  # only the other run's entries
    assert audit_deployment(inst.dep) == []


def test_command_line(inst: Installation) -> None:
    ok = inst.cli("archive")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "0 đã gia hạn / renewed, 2 chưa đến hạn / not due, 0 lỗi / failed" in ok.stdout

    before = inst.record(inst.transcript.doc_id).archived_sha256_pdf
    dead = f'["http://127.0.0.1:{free_port()}/tsa"]'
    failed = inst.cli("archive", "--within-days", str(EVERYTHING_DUE), SEALTRAIL_TIMESTAMP_URLS=dead)
    assert failed.returncode == 1
    assert "2 lỗi / failed" in failed.stdout
    assert inst.transcript.doc_id in failed.stderr and "not archived" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert inst.record(inst.transcript.doc_id).archived_sha256_pdf == before

    negative = inst.cli("archive", "--within-days", "-1")
    assert negative.returncode == 2 and "Traceback" not in negative.stderr

    audit = inst.cli("ledger", "audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_audit_refuses_an_archive_entry_that_points_at_the_wrong_issue_entry(tmp_path: Path, database_url: str) -> None:
    from datetime import UTC, datetime

    from ledger.entry import Entry

    dep = Deployment(
        Settings(data_dir=tmp_path, dev_pki_url=f"http://127.0.0.1:{free_port()}", database_url=database_url)
    )
    ledger, _ = ledger_for(dep)
    stray = Entry(
        type="archive", doc_id="HB-2099-NOPE", pdf_sha256="", xml_sha256="", signer_cert_sha256="",
        time=datetime.now(UTC), refers=0,
    )  # fmt: skip
    with dep.engine.begin() as conn:
        ledger.append(conn, [stray])
    assert any("does not refer to that document's issue entry" in p for p in audit_deployment(dep))
