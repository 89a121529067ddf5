"""Signed English translations, end to end on SQLite and PostgreSQL: issue → translate → independent checks
(pdfsig, pdftotext, pdftoppm + zbarimg), the log entry's link to the original, refusals, and the translation
following its original's standing when the original is revoked or superseded."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlmodel import Session

import schemas
from ledger.entry import Entry
from registry.records import DocumentRecord, DocumentStatus
from sealtrail.deployment import Deployment
from signer.issue import IssuedDocument, Issuer
from signer.translation import TranslationError, translate
from tests.interop.conftest import deployment_on

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("pdfsig", "pdftotext", "pdftoppm", "zbarimg")), reason="poppler/zbar missing"
)


@dataclass
class World:
    dep: Deployment
    issuer: Issuer
    transcript: IssuedDocument
    primary: IssuedDocument
    diploma: IssuedDocument


@pytest.fixture(scope="module")
def world(dev_pki, module_database_url, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:  # type: ignore[no-untyped-def]
    extra = {"database_url": module_database_url} if module_database_url else {}
    dep = deployment_on(dev_pki, tmp_path_factory.mktemp("translation") / "data", **extra)
    issuer = dep.make_issuer()
    issue = lambda name: issuer.issue(schemas.parse_document(schemas.load_sample(name)))  # noqa: E731
    yield World(dep, issuer, issue("transcript_thpt"), issue("transcript_primary"), issue("diploma_bachelor"))


def _run(*args: str | Path, input: bytes | None = None) -> str:
    return subprocess.run([str(a) for a in args], input=input, capture_output=True, check=False).stdout.decode()


def _qr_codes(pdf: Path, tmp: Path) -> list[str]:
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(pdf), str(tmp / "page")], check=True)
    codes = []
    for page in sorted(tmp.glob("page*.png")):
        out = _run("zbarimg", "--raw", "-q", page)
        codes.append(out.strip().splitlines())
    return codes  # type: ignore[return-value]


def _record(dep: Deployment, doc_id: str) -> DocumentRecord:
    with Session(dep.engine) as session:
        record = session.get(DocumentRecord, doc_id)
        assert record is not None
        session.expunge(record)
    return record


def test_transcript_translation_is_signed_english_and_carries_both_qr_codes(world: World, tmp_path: Path) -> None:
    done = translate(world.dep, world.transcript.doc_id, issuer=world.issuer)
    assert done.created and done.record.id == world.transcript.doc_id + "-EN"
    pdf = tmp_path / "t.pdf"
    pdf.write_bytes(done.pdf)
    sig = _run("pdfsig", pdf)
    assert "Signature is Valid." in sig and sig.count("Signature #") == 1  # the school's seal only
    text = " ".join(_run("pdftotext", "-layout", pdf, "-").split())
    holder = schemas.parse_document(schemas.load_sample("transcript_thpt")).holder
    for wanted in (
        f"Translation of document {world.transcript.doc_id}",
        "the Vietnamese original prevails",
        "ACADEMIC TRANSCRIPT",
        "Mathematics",
        "Literature",
        "Academic performance",
        "Conduct",
        "Semester I",
        holder.full_name,  # the pupil's name keeps its diacritics
        f"{holder.birth_date.day} {holder.birth_date.strftime('%B')} {holder.birth_date.year}",
    ):
        assert wanted in text, wanted
    assert "Toán" not in text  # subject names are translated
    pages = _qr_codes(pdf, tmp_path)
    original_url = world.transcript.qr_payload.split("#")[0]
    for codes in pages:  # every page: this translation's QR and the original's
        assert any(c.split("#")[0].endswith("/v/" + done.record.token) for c in codes), codes
        assert any(c.split("#")[0] == original_url for c in codes), codes
    assert len(pages) >= 2


def test_translation_log_entry_refers_to_the_original_issue_entry(world: World) -> None:
    from sealtrail.ledgerwiring import audit_deployment, ledger_for

    done = translate(world.dep, world.diploma.doc_id, issuer=world.issuer)
    ledger, _ = ledger_for(world.dep)
    with world.dep.engine.connect() as conn:
        entry = Entry.parse(ledger.entry(conn, done.record.leaf_index))  # type: ignore[arg-type]
        original = Entry.parse(ledger.entry(conn, entry.refers))  # type: ignore[arg-type]
    assert entry.type == "translation" and entry.doc_id == done.record.id
    assert (original.type, original.doc_id) == ("issue", world.diploma.doc_id)
    assert done.record.translation_of == world.diploma.doc_id
    assert audit_deployment(world.dep) == []  # the registry, the log and the stored files agree
    xml = world.dep.blobs.get(done.record.sha256_xml or "", "xml")
    from schemas.xml import from_xml
    from signer.xades import signed_data

    parsed = from_xml(signed_data(xml))
    assert isinstance(parsed, schemas.Translation)
    assert parsed.original_sha256_pdf == world.diploma.record.sha256_pdf
    assert parsed.original == schemas.parse_document(schemas.load_sample("diploma_bachelor"))


def test_diploma_translation_shows_english_title_and_classification(world: World, tmp_path: Path) -> None:
    done = translate(world.dep, world.diploma.doc_id, issuer=world.issuer)
    pdf = tmp_path / "d.pdf"
    pdf.write_bytes(done.pdf)
    text = " ".join(_run("pdftotext", "-layout", pdf, "-").split())
    assert "THE DEGREE OF BACHELOR" in text and "Classification Very good" in text
    assert "Computer Science" in text and "Diploma number" in text


def test_primary_transcript_translation_uses_circular_27_wording(world: World, tmp_path: Path) -> None:
    done = translate(world.dep, world.primary.doc_id, issuer=world.issuer)
    pdf = tmp_path / "p.pdf"
    pdf.write_bytes(done.pdf)
    text = " ".join(_run("pdftotext", "-layout", pdf, "-").split())
    assert "Primary School" in text and "Vietnamese Language" in text and "Honesty" in text
    assert "Completed well" in text or "Completed with distinction" in text
    assert "Signature is Valid." in _run("pdfsig", pdf)


def test_translating_again_returns_the_same_translation(world: World) -> None:
    first = translate(world.dep, world.transcript.doc_id, issuer=world.issuer)
    again = translate(world.dep, world.transcript.doc_id, issuer=world.issuer)
    assert not again.created and again.record.id == first.record.id and again.pdf == first.pdf


def test_refuses_copies_translations_unknown_and_other_schools_documents(world: World) -> None:
    done = translate(world.dep, world.diploma.doc_id, issuer=world.issuer)
    with pytest.raises(TranslationError, match="only transcripts and diplomas"):
        translate(world.dep, done.record.id, issuer=world.issuer)
    with pytest.raises(TranslationError, match="no document"):
        translate(world.dep, "VB-2025-NOPE", issuer=world.issuer)
    with pytest.raises(TranslationError, match="no document"):
        translate(world.dep, world.diploma.doc_id, school_code="other-school", issuer=world.issuer)


@pytest.mark.parametrize("status", [DocumentStatus.PENDING, DocumentStatus.REVOKED, DocumentStatus.SUPERSEDED])
def test_refuses_an_original_that_is_not_issued(world: World, status: DocumentStatus) -> None:
    doc = world.issuer.issue(schemas.parse_document(schemas.load_sample("diploma_thpt")), doc_id=None)
    _set_status(world.dep, doc.doc_id, status, superseded_by="VB-2025-NEWER")
    with pytest.raises(TranslationError, match={"pending": "not issued yet", "revoked": "was revoked",
                                                 "superseded": "translate VB-2025-NEWER"}[status.value]):  # fmt: skip
        translate(world.dep, doc.doc_id, issuer=world.issuer)
    assert _maybe(world.dep, doc.doc_id + "-EN") is None  # nothing half-made


def _maybe(dep: Deployment, doc_id: str) -> DocumentRecord | None:
    with Session(dep.engine) as session:
        return session.get(DocumentRecord, doc_id)


def _set_status(dep: Deployment, doc_id: str, status: DocumentStatus, **extra: object) -> None:
    from datetime import UTC, datetime

    with Session(dep.engine) as session:
        record = session.get(DocumentRecord, doc_id)
        assert record is not None
        record.status = status.value
        record.status_changed_at = datetime.now(UTC)
        if status is DocumentStatus.SUPERSEDED:
            record.superseded_by = str(extra["superseded_by"])
        session.add(record)
        session.commit()


def test_upload_check_names_the_original_and_follows_its_revocation(world: World) -> None:
    from fastapi.testclient import TestClient

    from registry.statusindex import status_bits
    from schemas.statuslist import bit
    from sealtrail.ledgerwiring import publish_checkpoint
    from sealtrail.web.app import create_app
    from verifier.checking import check_upload

    original = world.issuer.issue(schemas.parse_document(schemas.load_sample("diploma_thpt")))
    done = translate(world.dep, original.doc_id, issuer=world.issuer)
    publish_checkpoint(world.dep)
    before = check_upload(world.dep, done.pdf).report
    assert before.verdict == "valid", before.reasons
    assert [r.code for r in before.reasons] == ["TRANSLATION_OF"]
    assert original.doc_id in before.reasons[0].en and "in force" in before.reasons[0].en

    position = (done.record.status_list or "", done.record.status_index or 0)
    assert not bit(status_bits(world.dep.engine, position[0]), position[1])
    _revoke(world, original)
    assert bit(status_bits(world.dep.engine, position[0]), position[1])  # its status-list bit follows too
    after = check_upload(world.dep, done.pdf).report
    assert after.verdict == "invalid" and "ORIGINAL_REVOKED" in {r.code for r in after.reasons}
    assert check_upload(world.dep, world.dep.blobs.get(done.record.sha256_xml or "", "xml")).report.verdict == "invalid"

    client = TestClient(create_app(world.dep.settings))
    page = client.get(f"/v/{done.record.token}")
    assert page.status_code == 200 and "KHÔNG HỢP LỆ" in page.text and original.doc_id in page.text
    assert "the Vietnamese original is revoked" in page.text
    api = client.post("/api/v1/verify", files={"file": ("t.pdf", done.pdf, "application/pdf")}).json()
    assert api["verdict"] == "invalid" and api["document"]["translation_of"] == original.doc_id
    with pytest.raises(TranslationError, match="was revoked"):  # and no new translation of a revoked original
        translate(world.dep, original.doc_id, issuer=world.issuer)


def test_translation_of_a_superseded_original_is_not_valid(world: World) -> None:
    from sealtrail.ledgerwiring import publish_checkpoint
    from verifier.checking import check_upload

    original = world.issuer.issue(schemas.parse_document(schemas.load_sample("diploma_thpt")))
    done = translate(world.dep, original.doc_id, issuer=world.issuer)
    publish_checkpoint(world.dep)
    _set_status(world.dep, original.doc_id, DocumentStatus.SUPERSEDED, superseded_by="VB-2025-CORRECTED")
    report = check_upload(world.dep, done.pdf).report
    assert report.verdict == "invalid" and "ORIGINAL_SUPERSEDED" in {r.code for r in report.reasons}


def _revoke(world: World, doc: IssuedDocument) -> None:
    from accounts.permissions import Actor
    from sealtrail.web.deps import AccountsContext
    from workflow.operations import revoke

    school = doc.record.school_code
    revoke(AccountsContext(world.dep), None, Actor("principal", "staff"), school, doc.doc_id, "Cấp nhầm người")


def test_cli_translates_and_verify_follows_the_original_online_and_offline(world: World, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sealtrail.cli import app
    from sealtrail.ledgerwiring import publish_checkpoint

    settings = world.dep.settings
    env = {"SEALTRAIL_DATA_DIR": str(settings.resolved_data_dir), "SEALTRAIL_DEV_PKI_URL": settings.dev_pki_url}
    if settings.database_url:
        env["SEALTRAIL_DATABASE_URL"] = settings.database_url
    runner = CliRunner()
    original = world.issuer.issue(schemas.parse_document(schemas.load_sample("diploma_thpt")))
    out = tmp_path / "en.pdf"
    made = runner.invoke(app, ["translate", original.doc_id, "--out", str(out)], env=env)
    assert made.exit_code == 0 and "translation issued" in made.output and out.exists(), made.output
    again = runner.invoke(app, ["translate", original.doc_id], env=env)
    assert again.exit_code == 0 and "already issued" in again.output
    publish_checkpoint(world.dep)
    checked = runner.invoke(app, ["verify", str(out)], env=env)
    assert checked.exit_code == 0, checked.output
    assert f"English translation of document {original.doc_id}; the Vietnamese original is in force" in checked.output

    _revoke(world, original)
    revoked = runner.invoke(app, ["verify", str(out)], env=env)
    assert revoked.exit_code == 1 and "the Vietnamese original is revoked" in revoked.output, revoked.output
    trust = tmp_path / "trust"
    assert runner.invoke(app, ["export-trust", str(trust)], env=env).exit_code == 0
    offline = runner.invoke(app, ["verify", str(out), "--trust", str(trust)], env=env)
    assert offline.exit_code == 1 and f"Original {original.doc_id}" in offline.output, offline.output
    refused = runner.invoke(app, ["translate", original.doc_id], env=env)
    assert refused.exit_code == 1 and "was revoked" in refused.output


def test_api_translates_for_the_keys_school_only(world: World) -> None:
    from fastapi.testclient import TestClient

    from sealtrail.web.api import create_api_key
    from sealtrail.web.app import create_app

    doc = world.transcript
    school = doc.record.school_code
    client = TestClient(create_app(world.dep.settings))
    url = f"/api/v1/documents/{doc.doc_id}/translation"
    own = {"Authorization": f"Bearer {create_api_key(world.dep, school)}"}
    first = client.post(url, headers=own)
    assert first.status_code in (200, 201) and first.headers["content-type"] == "application/pdf"
    assert first.headers["x-document-id"] == doc.doc_id + "-EN" and first.content.startswith(b"%PDF")
    second = client.post(url, headers=own)
    assert second.status_code == 200 and second.content == first.content
    assert client.post(url).status_code == 401
    reader = {"Authorization": f"Bearer {create_api_key(world.dep, school, ['workflow:read'])}"}
    assert client.post(url, headers=reader).status_code == 403
    foreign = {"Authorization": f"Bearer {create_api_key(world.dep, 'other-school')}"}
    assert client.post(url, headers=foreign).status_code == 404
    refused = client.post(f"/api/v1/documents/{first.headers['x-document-id']}/translation", headers=own)
    assert refused.status_code == 409 and "only transcripts and diplomas" in refused.json()["detail"]
