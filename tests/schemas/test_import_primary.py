"""Primary classes (Circular 27/2020) import from the per-grade template: levels T/H/C and periodic test scores
at the end of semester I and of the year, grade 4–5 mid-semester tests, qualities and competences T/Đ/C; every
bad cell named."""

from __future__ import annotations

import io
from typing import Any

import pytest
from openpyxl import load_workbook

import schemas
from schemas.importers import ClassContext, import_xlsx, template_xlsx

ORIGINAL = schemas.parse_document(schemas.load_sample("transcript_primary"))
assert isinstance(ORIGINAL, schemas.Transcript)
YEAR = ORIGINAL.primary_years[3]  # grade 4, 2023-2024
CTX = ClassContext(
    school=ORIGINAL.school,
    school_year=YEAR.school_year,
    issue_date=ORIGINAL.issue_date,
    issue_place="Hà Nội",
    homeroom_teacher="Nguyễn Thị Lan",
    principal="Trần Quốc Bảo",
)
ROW = 8


def _headers(ws: Any) -> dict[str, int]:
    keys: dict[str, int] = {}
    for c in range(1, ws.max_column + 1):
        parts: list[str] = []
        for r in (5, 6, 7):
            v = ws.cell(row=r, column=c).value
            if v is None:
                for rng in ws.merged_cells.ranges:
                    if rng.min_row <= r <= rng.max_row and rng.min_col <= c <= rng.max_col:
                        v = ws.cell(row=rng.min_row, column=rng.min_col).value
            if v and (not parts or parts[-1] != v):
                parts.append(str(v))
        keys[" ".join(parts)] = c
    return keys


def _filled() -> tuple[Any, dict[str, int]]:
    wb = load_workbook(io.BytesIO(template_xlsx(4, "4A2", YEAR.school_year)))
    ws = wb.active
    keys = _headers(ws)
    h = ORIGINAL.holder
    values: dict[str, Any] = {
        "Mã học sinh": ORIGINAL.student_code,
        "Họ và tên": h.full_name,
        "Ngày sinh": h.birth_date.strftime("%d/%m/%Y"),
        "Giới tính": "Nữ",
        "Mã định danh": h.personal_id,
        "Số buổi nghỉ": YEAR.sessions_absent,
        "Khen thưởng": YEAR.awards,
    }
    for s in YEAR.subjects:
        values[f"{s.subject} Cuối HK I Mức"] = s.mid_level
        values[f"{s.subject} Cuối năm Mức"] = s.year_level
        if s.year_score is not None:
            values[f"{s.subject} Cuối HK I Điểm"] = s.mid_score
            values[f"{s.subject} Cuối năm Điểm"] = s.year_score
        if s.mid_hk1_score is not None:
            values[f"{s.subject} Giữa HK I Điểm"] = s.mid_hk1_score
            values[f"{s.subject} Giữa HK II Điểm"] = s.mid_hk2_score
    for t in (*YEAR.qualities, *YEAR.competences):
        values[t.name] = t.level
    for name, value in values.items():
        ws.cell(row=ROW, column=keys[name], value=value)
    return wb, keys


def _bytes(wb: Any) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_a_filled_primary_template_imports_with_the_same_result() -> None:
    wb, _ = _filled()
    (doc,) = import_xlsx(_bytes(wb), CTX)
    (year,) = doc.primary_years
    assert doc.level == "primary" and year.grade == 4 and year.class_name == "4A2"
    assert year.result == YEAR.result and year.subjects == YEAR.subjects
    assert year.qualities == YEAR.qualities and year.competences == YEAR.competences
    assert year.promoted is True and year.awards == YEAR.awards


def test_bad_primary_cells_are_named() -> None:
    wb, keys = _filled()
    ws = wb.active
    ws.cell(row=ROW, column=keys["Toán Cuối năm Điểm"], value=9.5)
    ws.cell(row=ROW, column=keys["Tiếng Việt Cuối năm Mức"], value="X")
    ws.cell(row=ROW, column=keys["Trung thực"], value="Giỏi")
    with pytest.raises(schemas.SchemaError) as exc:
        import_xlsx(_bytes(wb), CTX)
    text = str(exc.value)
    assert "cột 'Toán Cuối năm Điểm': giá trị '9,5' phải là điểm nguyên từ 1 đến 10" in text
    assert "cột 'Tiếng Việt Cuối năm Mức': giá trị 'X' không phải T (Hoàn thành tốt)" in text
    assert "cột 'Trung thực': giá trị 'Giỏi' không phải T (Tốt)" in text
    assert len(exc.value.problems) == 3


def test_the_law_runs_on_primary_rows() -> None:
    wb, keys = _filled()
    ws = wb.active
    ws.cell(row=ROW, column=keys["Toán Giữa HK II Điểm"]).value = None  # grade 4 has a mid-semester II test
    with pytest.raises(schemas.SchemaError) as exc:
        import_xlsx(_bytes(wb), CTX)
    assert "môn Toán: thiếu điểm kiểm tra giữa học kì II (lớp 4, 5; Thông tư 27, Điều 7)" in str(exc.value)
