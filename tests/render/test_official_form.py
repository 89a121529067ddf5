"""The học bạ as the official form: cover data, the "Quá trình học tập" table, a confirmation per school year by
its homeroom teacher and its principal (KT. titles when a deputy signed), Khen thưởng, sessions absent, the
signers' titles from Signatory.title, and no blank signer names."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest

import schemas
from schemas.xml import to_xml
from signer.render import Renderer

QR = "https://xacthuc.truong.edu.vn/v/GZBGIN62AOEODWRMZ3CBBPAWVY"


def _text(doc: Any, tmp_path: Path) -> str:
    rendered = Renderer().render(doc, doc_id="HB-TEST", qr_payload=QR, xml=to_xml(doc))
    path = tmp_path / "form.pdf"
    path.write_bytes(rendered.pdf)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(text.split())


def test_the_form_has_the_cover_the_process_table_and_a_confirmation_per_year(tmp_path: Path) -> None:
    data = copy.deepcopy(schemas.load_sample("transcript_thcs_2026"))
    data["signatories"][1]["title"] = "KT. Hiệu trưởng / Phó Hiệu trưởng"
    data["signatories"][1]["name"] = "Ngô Thị Thanh"
    doc = schemas.parse_document(data)
    text = _text(doc, tmp_path)
    for phrase in ("Nơi ở hiện nay", "18 Ngõ Huế", "Họ và tên cha", "Hoàng Văn Minh", "Họ và tên mẹ", "Trần Thị Lan",
                   "Số đăng bộ", "45/2022", "QUÁ TRÌNH HỌC TẬP", "2024-2025 8A2 Trường THCS Nguyễn Du",
                   "KT. HIỆU TRƯỞNG / PHÓ HIỆU TRƯỞNG: Ngô Thị Thanh", "Khen thưởng: Học sinh Giỏi",
                   "Tổng số buổi nghỉ học cả năm"):  # fmt: skip
        assert phrase in text, phrase
    assert text.count("(xác nhận năm học") == 2 * len(doc.years)
    assert "(xác nhận năm học 2024-2025) Ngô Thị Thanh" in text  # the deputy confirmed grade 8
    assert "KT. HIỆU TRƯỞNG PHÓ HIỆU TRƯỞNG" in text  # the principal slot: Signatory.title, on two lines
    assert "Số ngày nghỉ" not in text


def test_blank_signer_names_are_never_issued() -> None:
    data = copy.deepcopy(schemas.load_sample("transcript_thcs"))
    data["signatories"][0]["name"] = ""
    data["years"][2]["principal"] = ""
    with pytest.raises(schemas.SchemaError) as exc:
        schemas.parse_document(data)
    text = str(exc.value)
    assert "người ký 'Giáo viên chủ nhiệm': thiếu họ tên người ký" in text
    assert "lớp 8A1 (2023-2024): thiếu họ tên hiệu trưởng (hoặc phó hiệu trưởng) xác nhận năm học" in text


def test_the_cover_photo_is_checked_and_printed(tmp_path: Path) -> None:
    data = copy.deepcopy(schemas.load_sample("transcript_thcs_2026"))
    doc = schemas.parse_document(data)
    rendered = Renderer().render(doc, doc_id="HB-TEST", qr_payload=QR, xml=to_xml(doc))
    path = tmp_path / "photo.pdf"
    path.write_bytes(rendered.pdf)
    listed = subprocess.run(["pdfimages", "-list", "-f", "1", "-l", "1", str(path)], capture_output=True, text=True)
    sizes = {tuple(line.split()[3:5]) for line in listed.stdout.splitlines()[2:]}
    assert ("120", "160") in sizes, listed.stdout  # the photo, beside the QR code
    data["photo"] = "data:image/png;base64,aGVsbG8="  # base64 of "hello": not a PNG
    with pytest.raises(schemas.SchemaError, match="ảnh không phải tệp PNG/JPEG hợp lệ"):
        schemas.parse_document(data)
