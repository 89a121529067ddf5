"""Class-sheet import: XLSX and CSV, all-or-nothing, every bad cell reported, broken files explained."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import pytest
from openpyxl import Workbook

import schemas
from schemas.importers import ClassContext, import_csv, import_xlsx

PUPILS = [schemas.parse_document(d) for d in schemas.load_sample("class_9a1")]
CTX = ClassContext(
    school=PUPILS[0].school,
    school_year="2024-2025",
    issue_date=date(2025, 6, 5),
    issue_place="Hà Nội",
    homeroom_teacher="Phạm Thị Mai",
    principal="Lê Văn Hùng",
)


def _sheet() -> tuple[list[str], list[list[Any]]]:
    year0 = PUPILS[0].years[3]
    headers = ["Mã học sinh", "Họ", "Chữ đệm", "Tên", "Ngày sinh", "Giới tính", "Nơi sinh", "Mã định danh"]
    for s in year0.subjects:
        if s.assessment == "scored":
            headers += [f"{s.subject} {sem} {part}" for sem in ("HK1", "HK2") for part in ("TX", "GK", "CK")]
        else:
            headers += [f"{s.subject} {p}" for p in ("HK1", "HK2", "CN")]
    headers += ["Rèn luyện HK1", "Rèn luyện HK2", "Rèn luyện CN", "Nhận xét", "Lên lớp", "Số buổi nghỉ"]
    rows = []
    for p in PUPILS:
        y, h = p.years[3], p.holder
        row: list[Any] = [
            p.student_code,
            h.family_name,
            h.middle_name,
            h.given_name,
            h.birth_date.strftime("%d/%m/%Y"),
            "Nữ" if h.gender == 2 else "Nam",
            h.birth_place,
            h.personal_id,
        ]
        for s in y.subjects:
            if s.assessment == "scored":
                for sem in (s.hk1, s.hk2):
                    assert sem is not None
                    row += [
                        "; ".join(str(t).replace(".", ",") for t in sem.tx),
                        str(sem.gk).replace(".", ","),
                        str(sem.ck),
                    ]
            else:
                row += ["Đ", "Đ", "Đ"]
        row += ["T", "T", "T", y.homeroom_comment, "", y.sessions_absent]
        rows.append(row)
    return headers, rows


def _xlsx(headers: list[str], rows: list[list[Any]], title: str = "9A1") -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = title
    ws.append(headers)
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_a_class_sheet_imports_with_the_same_scores() -> None:
    docs = import_xlsx(_xlsx(*_sheet()), CTX)
    assert [d.holder.full_name for d in docs] == [p.holder.full_name for p in PUPILS]
    for doc, original in zip(docs, PUPILS, strict=True):
        got = {s.subject: s for s in doc.years[0].subjects}
        for s in original.years[3].subjects:
            assert got[s.subject].year_average == s.year_average
        assert doc.years[0].learning == original.years[3].learning
        assert doc.years[0].grade == 9


def test_every_bad_cell_is_reported_and_nothing_is_imported() -> None:
    headers, rows = _sheet()
    rows[0][headers.index("Toán HK1 GK")] = "tám"
    rows[2][headers.index("Ngày sinh")] = "31/02/2010"
    rows[1][headers.index("Âm nhạc HK2")] = "Giỏi"
    with pytest.raises(schemas.SchemaError) as exc:
        import_xlsx(_xlsx(headers, rows), CTX)
    text = str(exc.value)
    assert "dòng 2" in text and "Toán HK1" in text
    assert "dòng 4" in text and "Ngày sinh" in text
    assert "dòng 3" in text and "Âm nhạc HK2" in text
    assert len(exc.value.problems) == 3


def test_merged_cells_and_uncalculated_formulas_are_explained() -> None:
    headers, rows = _sheet()
    wb = Workbook()
    ws = wb.active
    ws.title = "9A1"
    ws.append(headers)
    for r in rows:
        ws.append(r)
    ws.merge_cells("B2:C2")
    ws2 = wb.create_sheet("9A2")
    ws2.append(headers)
    ws2.append([*rows[0][:-1], "=1+1"])
    buf = io.BytesIO()
    wb.save(buf)
    with pytest.raises(schemas.SchemaError) as exc:
        import_xlsx(buf.getvalue(), CTX)
    text = str(exc.value)
    assert "ô gộp" in text and "B2:C2" in text
    assert "công thức" in text


def test_not_a_spreadsheet_and_oversized_files() -> None:
    with pytest.raises(schemas.SchemaError, match="xlsx"):
        import_xlsx(b"PK\x03\x04 not really a zip" * 10, CTX)
    with pytest.raises(schemas.SchemaError, match="MB"):
        import_xlsx(b"\0" * (21 * 1024 * 1024), CTX)


def _csv(headers: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue()


def test_csv_in_utf8_imports_and_other_encodings_are_named() -> None:
    text = _csv(*_sheet())
    docs = import_csv(("\ufeff" + text).encode("utf-8"), "9A1", CTX)
    assert docs[0].holder.full_name == "Nguyễn Thị Thu Hằng"
    with pytest.raises(schemas.SchemaError, match="UTF-16"):
        import_csv(text.encode("utf-16"), "9A1", CTX)
    with pytest.raises(schemas.SchemaError, match="Windows-1258"):
        import_csv(text.encode("cp1258", errors="replace"), "9A1", CTX)
