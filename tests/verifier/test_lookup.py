"""Bulk CSV look-ups (diploma number, name, date of birth) through the real API, keyed hashes in the register,
strict CSV reading, re-indexing older documents, and progress streamed as NDJSON for ZIP and CSV uploads."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
import zipfile
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

import schemas
from registry.lookup import holder_hash, normalise_name, number_hash
from registry.records import DocumentRecord
from sealtrail.deployment import Deployment
from signer.issue import IssuedDocument
from tests.verifier.conftest import mark_revoked_and_superseded
from verifier.lookup import LookupCsvError, parse_lookup_csv
from verifier.xml import XmlVerifier


def _client(dep: Deployment) -> TestClient:
    """A verifier organisation's client: the CSV look-up needs its verify:bulk key (ZIP checks need none)."""
    from sealtrail.web.api import create_api_key
    from sealtrail.web.app import create_app

    key = create_api_key(dep, "DH-TUYENSINH", ["verify:bulk"])
    return TestClient(create_app(dep.settings), headers={"Authorization": f"Bearer {key}"})


def _holder(name: str) -> schemas.Person:
    return schemas.parse_document(schemas.load_sample(name)).holder


def _csv(rows: list[tuple[str, str, str]], header: str = "so_hieu,ho_ten,ngay_sinh") -> bytes:
    out = io.StringIO()
    out.write(header + "\r\n")
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8")


def _rows(docs: list[IssuedDocument]) -> list[tuple[str, str, str]]:
    thpt = schemas.parse_document(schemas.load_sample("diploma_thpt"))
    bachelor = schemas.parse_document(schemas.load_sample("diploma_bachelor"))
    transcript = schemas.parse_document(schemas.load_sample("transcript_thcs"))
    assert isinstance(thpt, schemas.Diploma) and isinstance(bachelor, schemas.Diploma)
    assert isinstance(transcript, schemas.Transcript)
    shouted = unicodedata.normalize("NFD", "  " + thpt.holder.full_name.upper().replace(" ", "   ") + " ")
    return [
        (f" {thpt.diploma_number} ", shouted, thpt.holder.birth_date.strftime("%d/%m/%Y")),  # valid
        (thpt.diploma_number, thpt.holder.full_name, "01/01/1990"),  # wrong birth date
        ("KHONG-CO-SO-NAY", thpt.holder.full_name, thpt.holder.birth_date.isoformat()),  # no such number
        (bachelor.diploma_number, bachelor.holder.full_name, bachelor.holder.birth_date.isoformat()),  # revoked
        (transcript.record_id, transcript.holder.full_name, transcript.holder.birth_date.isoformat()),  # superseded
    ]


def test_names_are_normalised_before_hashing() -> None:
    key = b"k" * 32
    nfd = unicodedata.normalize("NFD", "NGUYỄN  thị   Thu Hằng")
    assert normalise_name(nfd) == "nguyễn thị thu hằng"
    assert holder_hash(key, nfd, date(2008, 5, 17)) == holder_hash(key, "Nguyễn Thị Thu Hằng", date(2008, 5, 17))
    assert holder_hash(key, "Nguyễn Thị Thu Hằng", date(2008, 5, 18)) != holder_hash(
        key, "Nguyễn Thị Thu Hằng", date(2008, 5, 17)
    )
    assert number_hash(key, "a 123") == number_hash(key, "A123") != number_hash(b"x" * 32, "A123")


@pytest.mark.parametrize(
    ("data", "line", "fragment"),
    [
        (b"ma,ten,ngay\r\n1,An,01/01/2008\r\n", 1, "so_hieu"),
        ("so_hieu,ho_ten,ngay_sinh\r\nA1,Lê Văn Tám,01/01/2008\r\n".encode("cp1258"), 2, "UTF-8"),
        (b"so_hieu,ho_ten,ngay_sinh\r\nA1,An,01/01/2008\r\nA2,Binh,31/02/2008\r\n", 3, "31/02/2008"),
        (b"so_hieu,ho_ten,ngay_sinh\r\nA1,An\r\n", 2, "2 fields"),
        (b"so_hieu,ho_ten,ngay_sinh\r\n,An,01/01/2008\r\n", 2, "number is missing"),
        (b"so_hieu,ho_ten,ngay_sinh\r\n", 0, "no data rows"),
    ],
)
def test_malformed_csv_names_the_line(data: bytes, line: int, fragment: str) -> None:
    with pytest.raises(LookupCsvError) as caught:
        parse_lookup_csv(data)
    assert any(problem_line == line and fragment in msg for problem_line, msg in caught.value.problems), (
        caught.value.problems
    )


def test_csv_with_bom_utf16_semicolons_and_vietnamese_headers_is_read() -> None:
    text_ = "Số hiệu;Họ và tên;Ngày sinh\r\nA 1;Lê Văn Tám;2008-01-02\r\n"
    for data in (b"\xef\xbb\xbf" + text_.encode(), text_.encode("utf-16")):
        (row,) = parse_lookup_csv(data)
        assert (row.line, row.number, row.name, row.birth_date) == (2, "A 1", "Lê Văn Tám", date(2008, 1, 2))


def test_register_holds_only_keyed_hashes(setup: tuple[Deployment, list[IssuedDocument]]) -> None:
    dep, docs = setup
    holder = _holder("diploma_thpt")
    diploma = schemas.parse_document(schemas.load_sample("diploma_thpt"))
    with dep.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM documents WHERE id = :id"), {"id": docs[0].doc_id}).mappings().one()
    assert row["lookup_number"] == number_hash(dep.lookup_key, diploma.diploma_number)  # type: ignore[attr-defined]
    assert row["lookup_holder"] == holder_hash(dep.lookup_key, holder.full_name, holder.birth_date)
    flat = " ".join(str(v) for v in row.values())
    assert holder.full_name not in flat and diploma.diploma_number not in flat  # type: ignore[attr-defined]
    key_file = dep.settings.pki_dir / "keys" / "lookup-hmac.key"
    assert key_file.stat().st_mode & 0o077 == 0


def test_csv_lookup_answers_each_row_as_json_and_csv(setup: tuple[Deployment, list[IssuedDocument]]) -> None:
    dep, docs = setup
    mark_revoked_and_superseded(dep, docs)
    upload = _csv(_rows(docs))
    client = _client(dep)
    response = client.post("/api/v1/verify/bulk", files={"file": ("tra-cuu.csv", upload, "text/csv")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "csv" and body["count"] == 5
    results = [(i["line"], i["result"], i["verdict"]) for i in body["items"]]
    assert results == [
        (2, "valid", "valid"),
        (3, "no_match", "invalid"),
        (4, "no_match", "invalid"),
        (5, "revoked", "invalid"),
        (6, "superseded", "invalid"),
    ]
    assert body["items"][0]["document_id"] == docs[0].doc_id
    assert body["items"][1]["document_id"] is None  # a wrong birth date learns nothing about the document
    assert body["items"][4]["superseded_by"] == docs[0].doc_id
    codes = [{r["code"] for r in i["reasons"]} for i in body["items"]]
    assert codes[1:] == [{"NO_MATCH"}, {"NO_MATCH"}, {"DOCUMENT_REVOKED"}, {"DOCUMENT_SUPERSEDED"}]
    receipt = body["receipt_xml"].encode()
    assert XmlVerifier(dep.trust_roots, dep.intermediates).verify(receipt).verdict == "valid"
    assert b"<format>csv-row</format>" in receipt and _holder("diploma_thpt").full_name.encode() not in receipt

    as_csv = client.post("/api/v1/verify/bulk?format=csv", files={"file": ("tra-cuu.csv", upload, "text/csv")})
    lines = list(csv.reader(io.StringIO(as_csv.text)))
    assert lines[0][:4] == ["line", "so_hieu", "result", "verdict"]
    assert [ln[2] for ln in lines[1:]] == ["valid", "no_match", "no_match", "revoked", "superseded"]


def test_a_malformed_csv_is_refused_with_its_lines(setup: tuple[Deployment, list[IssuedDocument]]) -> None:
    dep, _docs = setup
    bad = b"so_hieu,ho_ten,ngay_sinh\r\nA1,An,01/01/2008\r\nA2,Binh,hom qua\r\nA3,Chi\r\n"
    response = _client(dep).post("/api/v1/verify/bulk", files={"file": ("x.csv", bad, "text/csv")})
    assert response.status_code == 400
    problems = response.json()["detail"]["problems"]
    assert [p["line"] for p in problems] == [3, 4]


def _ndjson(response: object) -> list[dict[str, object]]:
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]  # type: ignore[attr-defined]


def test_progress_streams_one_line_per_item_for_csv_and_zip(setup: tuple[Deployment, list[IssuedDocument]]) -> None:
    dep, docs = setup
    mark_revoked_and_superseded(dep, docs)
    client = _client(dep)
    headers = {"Accept": "application/x-ndjson"}
    streamed = client.post(
        "/api/v1/verify/bulk", files={"file": ("t.csv", _csv(_rows(docs)), "text/csv")}, headers=headers
    )
    assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("application/x-ndjson")
    lines = _ndjson(streamed)
    assert lines[0] == {"type": "start", "kind": "csv", "total": 5}
    assert [(ln["type"], ln["done"]) for ln in lines[1:-1]] == [("item", i) for i in range(1, 6)]
    summary = lines[-1]
    assert summary["type"] == "summary" and summary["count"] == 5
    assert summary["verdicts"] == {"valid": 1, "invalid": 4}
    receipt = str(summary["receipt_xml"]).encode()
    assert XmlVerifier(dep.trust_roots, dep.intermediates).verify(receipt).verdict == "valid"

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.pdf", docs[0].pdf)
        z.writestr("b.xml", docs[0].xml)
        z.writestr("c.txt", b"junk")
    zipped = client.post("/api/v1/verify/bulk", files={"file": ("z.zip", buf.getvalue())}, headers=headers)
    lines = _ndjson(zipped)
    assert lines[0] == {"type": "start", "kind": "zip", "total": 3}
    assert [(ln["file"], ln["verdict"], ln["done"]) for ln in lines[1:-1]] == [
        ("a.pdf", "valid", 1),
        ("b.xml", "valid", 2),
        ("c.txt", "invalid", 3),
    ]
    assert lines[-1]["type"] == "summary" and lines[-1]["receipt_xml"]


def test_a_zip_bomb_found_half_way_ends_the_stream_with_an_error(
    setup: tuple[Deployment, list[IssuedDocument]],
) -> None:
    dep, docs = setup
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.pdf", docs[0].pdf)
        z.writestr("bomb.pdf", b"\0" * (60 * 1024 * 1024))
    response = _client(dep).post(
        "/api/v1/verify/bulk", files={"file": ("z.zip", buf.getvalue())}, headers={"Accept": "application/x-ndjson"}
    )
    lines = _ndjson(response)
    assert [ln["type"] for ln in lines] == ["start", "item", "error"]
    assert "ZIP bomb" in str(lines[-1]["message"])


def test_reindex_fills_documents_issued_before_the_lookup_columns(
    setup: tuple[Deployment, list[IssuedDocument]],
) -> None:
    from signer.reindex import reindex

    dep, docs = setup
    with Session(dep.engine) as session:
        record = session.get(DocumentRecord, docs[0].doc_id)
        assert record is not None
        expected = (record.lookup_number, record.lookup_holder)
        record.lookup_number = record.lookup_holder = None
        session.add(record)
        session.commit()
    report = reindex(dep)
    assert report.updated == [docs[0].doc_id] and not report.failed
    with Session(dep.engine) as session:
        record = session.get(DocumentRecord, docs[0].doc_id)
        assert record is not None and (record.lookup_number, record.lookup_holder) == expected
    assert reindex(dep).updated == []


def test_migration_keeps_rows_and_adds_the_lookup_index(database_url: str, tmp_path: Path) -> None:
    import sqlalchemy
    from alembic import command

    from sealtrail.db import alembic_config, make_engine

    command.upgrade(alembic_config(database_url), "0003_archives")
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO documents (id, token, kind, school_code, school_name, holder_masked, issue_date, status,"
                " signers, created_at) VALUES ('VB-1', 'tok', 'diploma', '01', 'T', 'N. A', '2025-09-05', 'issued',"
                " '[]', '2025-09-05 00:00:00')"
            )
        )
    command.upgrade(alembic_config(database_url), "0004_lookup")
    inspector = sqlalchemy.inspect(engine)
    assert {"lookup_number", "lookup_holder"} <= {c["name"] for c in inspector.get_columns("documents")}
    assert "ix_documents_lookup_number" in {i["name"] for i in inspector.get_indexes("documents")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, lookup_number FROM documents")).all() == [("VB-1", None)]
    command.downgrade(alembic_config(database_url), "0003_archives")
    command.upgrade(alembic_config(database_url), "head")
