"""Law 123/2025/QH15 (amending the Law on Education, in force 1/1/2026): the THCS diploma ends, the principal's
confirmation of completing the lower-secondary programme is recorded in the học bạ and printed; final-year wording
(grades 5, 9, 12 never print "Được lên lớp"); THCS diplomas issued before stay valid and readable."""

from __future__ import annotations

import copy
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import schemas
from schemas.xml import from_xml, to_xml
from signer.render import Renderer

QR = "https://xacthuc.truong.edu.vn/v/GZBGIN62AOEODWRMZ3CBBPAWVY"


def _data() -> dict[str, Any]:
    return copy.deepcopy(schemas.load_sample("transcript_thcs_2026"))


def _problems(data: dict[str, Any]) -> str:
    with pytest.raises(schemas.SchemaError) as exc:
        schemas.parse_document(data)
    return str(exc.value)


def _text(doc: Any, tmp_path: Path, name: str) -> str:
    rendered = Renderer().render(doc, doc_id="HB-TEST", qr_payload=QR, xml=to_xml(doc))
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(rendered.pdf)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(text.split())


def test_the_completion_is_recorded_and_round_trips_through_xml() -> None:
    doc = schemas.parse_document(_data())
    assert isinstance(doc, schemas.Transcript) and doc.completion is not None
    assert (doc.completion.decision_number, doc.completion.decision_date) == ("112/QĐ-THCSND", date(2026, 6, 10))
    assert doc.completion.principal == "Lê Văn Hùng"
    assert from_xml(to_xml(doc)) == doc


def test_a_completion_decided_before_the_law_took_effect_is_refused() -> None:
    data = _data()
    data["completion"]["decision_date"] = "2025-12-20"
    text = _problems(data)
    assert "trước khi Luật 123/2025/QH15 có hiệu lực (01/01/2026)" in text
    assert "trước khi năm học 2025-2026 kết thúc" in text


def test_a_completion_needs_a_passed_grade_9() -> None:
    data = _data()
    grade9 = data["years"][3]
    grade9["conduct"] = {"hk1": "Đạt", "hk2": "Chưa đạt"}
    assert "chưa đủ điều kiện hoàn thành chương trình THCS" in _problems(data)


def test_only_a_lower_secondary_record_carries_it() -> None:
    data = copy.deepcopy(schemas.load_sample("transcript_thpt"))
    data["completion"] = {"decision_number": "1/QĐ", "decision_date": "2026-06-10", "principal": "Ai Đó"}
    assert "chỉ học bạ THCS có năm lớp 9 mới ghi xác nhận hoàn thành chương trình THCS" in _problems(data)


def test_the_completion_is_printed_and_final_years_never_say_promoted(tmp_path: Path) -> None:
    doc = schemas.parse_document(_data())
    text = _text(doc, tmp_path, "thcs2026")
    assert "Xác nhận hoàn thành chương trình trung học cơ sở" in text
    assert "Quyết định số 112/QĐ-THCSND ngày 10/06/2026" in text and "Hoàn thành chương trình trung học cơ sở." in text
    assert text.count("Được lên lớp") == 3  # grades 6, 7, 8 only
    thpt = schemas.parse_document(schemas.load_sample("transcript_thpt"))
    text = _text(thpt, tmp_path, "thpt")
    assert text.count("Được lên lớp") == 2  # grades 10, 11; never grade 12


def test_grade_5_prints_completion_of_primary_not_promotion(tmp_path: Path) -> None:
    doc = schemas.parse_document(schemas.load_sample("transcript_primary"))
    text = _text(doc, tmp_path, "primary")
    assert "Hoàn thành chương trình tiểu học." in text
    assert text.count("Được lên lớp") == 4  # grades 1–4


def _thcs_diploma(issued: str) -> dict[str, Any]:
    data = copy.deepcopy(schemas.load_sample("diploma_thpt"))
    data.update(title="BẰNG TỐT NGHIỆP TRUNG HỌC CƠ SỞ", level="lower_secondary", issue_date=issued)
    data["signer_title"] = "TRƯỞNG PHÒNG GIÁO DỤC VÀ ĐÀO TẠO"
    return data


def test_older_thcs_diplomas_stay_valid_and_new_ones_are_refused() -> None:
    old = schemas.parse_document(_thcs_diploma("2025-07-01"))
    assert isinstance(old, schemas.Diploma) and old.level == "lower_secondary"
    assert from_xml(to_xml(old)) == old
    assert "từ 01/01/2026 không cấp bằng tốt nghiệp THCS (Luật 123/2025/QH15)" in _problems(_thcs_diploma("2026-03-02"))
