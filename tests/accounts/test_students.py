"""The student portal: one-time code sign-in, own documents only, original PDF and XML, a certified copy that is
sealed and logged as a ``copy`` entry, and share links that show exactly what was chosen, expire and can be revoked.
"""

from __future__ import annotations

import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

import schemas
from accounts import service
from accounts.models import ShareLink
from jobs import approval
from ledger.entry import Entry
from registry.records import DocumentRecord
from sealtrail.ledgerwiring import audit_deployment, ledger_for
from signer.storage import BlobStore
from tests.accounts.conftest import SCHOOL_A, World, csrf_of, finish_batch, staff_actor, teacher_signed
from workflow import operations as wf

pytestmark = pytest.mark.slow


def issue_class(world: World, payloads: list[dict]) -> list[str]:  # type: ignore[type-arg]
    """Take documents through the whole workflow (as the school's staff would) and return their document ids."""
    ctx = world.app.state.accounts  # type: ignore[attr-defined]
    ids = teacher_signed(world, payloads)
    batch = approval.start_batch(ctx, None, staff_actor(world, "principal-a"), SCHOOL_A, ids)
    progress = finish_batch(world, batch)
    assert progress["counts"]["issued"] == len(ids) and progress["state"] == "done", progress
    return [str(wf.get_item(ctx, SCHOOL_A, i).doc_id) for i in ids]  # type: ignore[union-attr]


def student_client(world: World):  # type: ignore[no-untyped-def]
    client = world.client()
    code = service.issue_student_code(world.dep.engine, "student-a", SCHOOL_A)
    assert client.post("/hoc-sinh/dang-nhap", data={"code": code}).status_code == 303
    return client, csrf_of(world.dep, client)


def test_student_sees_downloads_copies_and_shares_only_their_own_documents(world: World, tmp_path: Path) -> None:
    klass = schemas.load_sample("class_9a1")
    mine, theirs = issue_class(world, klass[:2])
    client, csrf = student_client(world)

    home = client.get("/hoc-sinh")
    assert home.status_code == 200 and mine in home.text and theirs not in home.text

    blobs = BlobStore(world.dep.settings.documents_dir)
    with Session(world.dep.engine) as session:
        record = session.get(DocumentRecord, mine)
        assert record is not None
        session.expunge(record)
    pdf = client.get(f"/hoc-sinh/van-ban/{mine}/tai/pdf")
    xml = client.get(f"/hoc-sinh/van-ban/{mine}/tai/xml")
    assert pdf.content == blobs.get(str(record.sha256_pdf), "pdf")  # the original, byte for byte
    assert xml.content == blobs.get(str(record.sha256_xml), "xml")
    assert client.get(f"/hoc-sinh/van-ban/{theirs}/tai/pdf").status_code == 404  # a classmate's: does not exist
    assert client.post(f"/hoc-sinh/van-ban/{theirs}/ban-sao", data={"csrf_token": csrf}).status_code == 404

    # a certified copy: generated, sealed by the school, logged as a "copy" entry
    assert client.post(f"/hoc-sinh/van-ban/{mine}/ban-sao").status_code == 403  # no CSRF token
    made = client.post(f"/hoc-sinh/van-ban/{mine}/ban-sao", data={"csrf_token": csrf})
    assert made.status_code == 303
    home = client.get("/hoc-sinh")
    copy_id = re.search(r"BS-\d{4}-[0-9A-F]{12}", home.text)
    assert copy_id, home.text
    copy_pdf = tmp_path / "ban-sao.pdf"
    copy_pdf.write_bytes(client.get(f"/hoc-sinh/van-ban/{copy_id.group()}/tai/pdf").content)
    text = subprocess.run(["pdftotext", str(copy_pdf), "-"], capture_output=True, text=True, timeout=60).stdout
    assert "BẢN SAO" in text and mine in text
    sig = subprocess.run(["pdfsig", str(copy_pdf)], capture_output=True, text=True, timeout=60).stdout
    assert sig.count("Signature Validation: Signature is Valid.") == 1, sig  # the school's seal
    ledger, _ = ledger_for(world.dep)
    with world.dep.engine.connect() as conn:
        entries = [Entry.parse(ledger.entry(conn, i)) for i in range(ledger.size(conn))]
    (copy_entry,) = [e for e in entries if e.type == "copy"]
    assert copy_entry.doc_id == copy_id.group()

    # the English translation: sealed by the school, a download, made once
    assert client.post(f"/hoc-sinh/van-ban/{theirs}/ban-dich", data={"csrf_token": csrf}).status_code == 404
    assert client.post(f"/hoc-sinh/van-ban/{mine}/ban-dich").status_code == 403  # no CSRF token
    english = client.post(f"/hoc-sinh/van-ban/{mine}/ban-dich", data={"csrf_token": csrf})
    assert english.status_code == 200 and english.headers["content-type"] == "application/pdf"
    assert client.post(f"/hoc-sinh/van-ban/{mine}/ban-dich", data={"csrf_token": csrf}).content == english.content
    assert "Bản dịch tiếng Anh" in client.get("/hoc-sinh").text
    assert audit_deployment(world.dep) == []

    # a share link shows exactly what was ticked
    shared = client.post(
        "/hoc-sinh/chia-se",
        data={"doc_id": mine, "fields": ["kind", "holder_name"], "days": "3", "csrf_token": csrf},
    )
    link = shared.headers["location"].split("lien-ket=", 1)[1]
    public = world.client().get(link)
    holder = schemas.parse_document(klass[0]).holder
    assert public.status_code == 200 and holder.full_name in public.text
    assert mine not in public.text and "/v/" not in public.text  # the id and QR link only when chosen (issue 22)
    assert holder.birth_date.strftime("%d/%m/%Y") not in public.text  # birth date was not chosen
    assert "Trường cấp" not in public.text and "Tải tệp PDF" not in public.text
    assert world.client().get(link + "?tai=pdf").headers["content-type"].startswith("text/html")
    assert client.post(
        "/hoc-sinh/chia-se", data={"doc_id": theirs, "fields": ["kind"], "csrf_token": csrf}
    ).status_code == 404  # fmt: skip

    # expired and revoked links look the same as unknown ones
    with Session(world.dep.engine) as session:
        row = session.exec(select(ShareLink)).one()
        share_id = row.id
        row.expires_at = row.expires_at - timedelta(days=4)
        session.add(row)
        session.commit()
    assert world.client().get(link).status_code == 404
    with Session(world.dep.engine) as session:
        row = session.exec(select(ShareLink)).one()
        row.expires_at = row.expires_at + timedelta(days=4)
        session.add(row)
        session.commit()
    assert world.client().get(link).status_code == 200
    assert client.post(f"/hoc-sinh/chia-se/{share_id}/thu-hoi", data={"csrf_token": csrf}).status_code == 303
    assert world.client().get(link).status_code == 404
    assert world.client().get("/chia-se/khong-co-lien-ket-nay").status_code == 404
