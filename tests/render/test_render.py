"""Rendered PDFs checked with poppler and zbar: text, fonts, the attached XML, QR codes, pagination, fields."""

from __future__ import annotations

import re
import subprocess
from datetime import date
from io import BytesIO
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import enumerate_sig_fields

import schemas
from schemas.publish import validate_xml
from schemas.xml import to_xml
from signer.render import RenderedDocument, Renderer, date_line

QR = "https://xacthuc.truong.edu.vn/v/GZBGIN62AOEODWRMZ3CBBPAWVY#ST1:6BFOXN*TS0BI$ZDFRH%20JCK"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.fixture(scope="module")
def transcript(renderer: Renderer, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RenderedDocument, bytes]:
    doc = schemas.parse_document(schemas.load_sample("transcript_thcs"))
    xml = to_xml(doc)
    rendered = renderer.render(doc, doc_id="HB-2025-TEST", qr_payload=QR, xml=xml)
    path = tmp_path_factory.mktemp("render") / "hocba.pdf"
    path.write_bytes(rendered.pdf)
    return path, rendered, xml


def _run(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=120).stdout


def _pages(path: Path, n: int) -> list[str]:
    return [_run("pdftotext", "-layout", "-f", str(i), "-l", str(i), str(path), "-") for i in range(1, n + 1)]


def test_text_has_names_and_headings_with_correct_diacritics(transcript) -> None:  # type: ignore[no-untyped-def]
    path, _, _ = transcript
    text = _run("pdftotext", str(path), "-")
    for phrase in (
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "Nguyễn Thị Thu Hằng",
        "HỌC BẠ",
        "Hà Nội, ngày 05 tháng 6 năm 2025",
        "Khoa học tự nhiên",
    ):
        assert phrase in text


def test_every_font_is_embedded_and_subset(transcript) -> None:  # type: ignore[no-untyped-def]
    path, _, _ = transcript
    rows = _run("pdffonts", str(path)).splitlines()[2:]
    assert rows
    for row in rows:
        emb, sub = row.split()[-5], row.split()[-4]
        assert (emb, sub) == ("yes", "yes"), row


def test_the_attached_xml_is_the_input_and_valid(transcript, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, _, xml = transcript
    assert "hocba.xml" in _run("pdfdetach", "-list", str(path))
    _run("pdfdetach", "-save", "1", "-o", str(tmp_path / "x.xml"), str(path))
    data = (tmp_path / "x.xml").read_bytes()
    assert data == xml
    validate_xml(data)
    reader = PdfFileReader(BytesIO(path.read_bytes()))
    (af,) = reader.root["/AF"]
    assert af.get_object()["/AFRelationship"] == "/Data"


def test_pdf_claims_pdfa3b(transcript) -> None:  # type: ignore[no-untyped-def]
    path, _, _ = transcript
    meta = _run("pdfinfo", "-meta", str(path))
    # WeasyPrint writes the claim as elements; pyHanko's XMP writer (after signing) as attributes. Both are valid XMP.
    assert re.search(r"pdfaid:part(>|=\")3", meta), meta
    assert re.search(r"pdfaid:conformance(>|=\")B", meta), meta


def test_every_page_carries_the_qr(transcript, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, rendered, _ = transcript
    assert rendered.page_count >= 4
    _run("pdftoppm", "-r", "150", "-png", str(path), str(tmp_path / "p"))
    pngs = sorted(tmp_path.glob("p*.png"))
    assert len(pngs) == rendered.page_count
    for png in pngs:
        assert _run("zbarimg", "--raw", "-q", str(png)).strip() == QR, png.name


def test_no_row_is_split_and_headers_repeat(transcript) -> None:  # type: ignore[no-untyped-def]
    path, rendered, _ = transcript
    pages = _pages(path, rendered.page_count)
    doc = schemas.parse_document(schemas.load_sample("transcript_thcs"))
    for year in doc.years:
        page = next(p for p in pages if f"Năm học {year.school_year}" in p)
        assert "Môn học / Hoạt động" in page
        for s in year.subjects:
            if s.assessment == "scored":
                line = next(ln for ln in page.splitlines() if ln.strip().startswith(s.subject))
                assert str(s.year_average).replace(".", ",") in line, (s.subject, line)
    assert "2" in pages[1].splitlines()[0] or pages[1].lstrip().startswith("2")
    assert not pages[0].lstrip().startswith("1")


def test_signature_fields_are_ready_for_each_signer(transcript) -> None:  # type: ignore[no-untyped-def]
    path, rendered, _ = transcript
    reader = PdfFileReader(BytesIO(path.read_bytes()))
    names = [name for name, _, _ in enumerate_sig_fields(reader, filled_status=False)]
    assert names == ["sig_homeroom_teacher", "sig_principal", "sig_seal"]
    assert [s.field_name for s in rendered.slots] == names
    seal = next(ref for name, _, ref in enumerate_sig_fields(reader) if name == "sig_seal").get_object()
    assert seal["/Lock"]["/P"] == 1


def test_a_province_can_override_one_template(tmp_path: Path) -> None:
    (tmp_path / "diploma.html.j2").write_text(
        '{% extends "base.html.j2" %}{% set issuer = doc.issuer %}{% block content %}'
        "<h1>MẪU TỈNH: {{ doc.holder.full_name }}</h1><div id='slot-seal' class='slot'></div>{% endblock %}",
        encoding="utf-8",
    )
    doc = schemas.parse_document(schemas.load_sample("diploma_thpt"))
    rendered = Renderer(tmp_path).render(doc, doc_id="VB-1", qr_payload=QR, xml=to_xml(doc))
    out = tmp_path / "d.pdf"
    out.write_bytes(rendered.pdf)
    assert "MẪU TỈNH: Nguyễn Thị Thu Hằng" in _run("pdftotext", str(out), "-")
    assert [s.role for s in rendered.slots] == ["seal"]


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 9, 5), "Hà Nội, ngày 05 tháng 9 năm 2025"),
        (date(2025, 1, 15), "Hà Nội, ngày 15 tháng 01 năm 2025"),
        (date(2025, 2, 1), "Hà Nội, ngày 01 tháng 02 năm 2025"),
        (date(2025, 12, 31), "Hà Nội, ngày 31 tháng 12 năm 2025"),
    ],
)
def test_date_line_follows_decree_30(day: date, expected: str) -> None:
    assert date_line("Hà Nội", day) == expected


def test_a_batch_in_a_worker_process_comes_back_in_order_and_scans(renderer: Renderer, tmp_path: Path) -> None:
    """`render_many` with a worker process: each document is its own (id printed, fields in place, QR scans)."""
    from signer.render import RenderJob

    doc = schemas.parse_document(schemas.load_sample("diploma_thpt"))
    jobs = [RenderJob(doc, f"VB-2025-BATCH{i}", f"{QR}{i}", to_xml(doc)) for i in range(3)]
    single = renderer.render(doc, doc_id=jobs[0].doc_id, qr_payload=jobs[0].qr_payload, xml=jobs[0].xml)
    batch = list(renderer.render_many(jobs, workers=1))
    assert [b.page_count for b in batch] == [single.page_count] * 3
    assert [b.slots for b in batch] == [single.slots] * 3
    for i, out in enumerate(batch):
        path = tmp_path / f"{i}.pdf"
        path.write_bytes(out.pdf)
        assert f"VB-2025-BATCH{i}" in _run("pdftotext", str(path), "-")
        _run("pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(path), str(tmp_path / f"p{i}"))
        png = next(tmp_path.glob(f"p{i}*.png"))
        assert f"{QR}{i}" in _run("zbarimg", "-q", "--raw", str(png))
