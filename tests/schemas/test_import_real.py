"""Class sheets as school software exports them, built here with openpyxl: title rows, merged two-row headers,
one "Họ và tên" column, ĐĐGtx1…4 columns, Excel serial dates, NFD text, codes with leading zeros; every bad cell
named in one pass; the per-grade template reads back."""

from __future__ import annotations

import csv
import io
import unicodedata
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.utils import get_column_letter

import schemas
from schemas.importers import ClassContext, import_csv, import_xlsx, template_xlsx
from schemas.programme import find_subject

PUPILS = [schemas.parse_document(d) for d in schemas.load_sample("class_9a1")]
CTX = ClassContext(
    school=PUPILS[0].school,
    school_year="2024-2025",
    issue_date=datetime(2025, 6, 5).date(),
    issue_place="Hà Nội",
    homeroom_teacher="Phạm Thị Mai",
    principal="Lê Văn Hùng",
)
FIRST_DATA_ROW = 7
NFD = lambda s: unicodedata.normalize("NFD", s)  # noqa: E731


def _export(extra_rows: int = 0) -> tuple[Workbook, dict[str, int]]:
    """The grade 9 class as an export: 4 title rows, a two-row merged header from row 5, pupils from row 7."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws["A1"] = "PHÒNG GIÁO DỤC VÀ ĐÀO TẠO QUẬN HOÀN KIẾM"
    ws.merge_cells("A1:F1")
    ws["A2"] = NFD("BẢNG ĐIỂM TỔNG HỢP CUỐI NĂM — Lớp: 9A1")
    ws.merge_cells("A2:F2")
    ws["A3"] = "Năm học 2024-2025"
    cols: dict[str, int] = {}
    col = 1

    def head(name: str, span: int = 1, subs: tuple[str, ...] = ()) -> None:
        nonlocal col
        ws.cell(row=5, column=col, value=NFD(name))
        if subs:
            if span > 1:
                ws.merge_cells(start_row=5, start_column=col, end_row=5, end_column=col + span - 1)
            for i, sub in enumerate(subs):
                ws.cell(row=6, column=col + i, value=sub)
                cols[f"{name} {sub}"] = col + i
        else:
            ws.merge_cells(start_row=5, start_column=col, end_row=6, end_column=col)
            cols[name] = col
        col += span

    for name in ("STT", "Mã học sinh", "Họ và tên", "Ngày sinh", "Giới tính", "Mã định danh", "Dân tộc"):
        head(name)
    year = PUPILS[0].years[3]
    for s in year.subjects:
        if s.assessment == "scored":
            for sem in ("HK1", "HK2"):
                head(f"{s.subject} {sem}", 6, ("ĐĐGtx1", "ĐĐGtx2", "ĐĐGtx3", "ĐĐGtx4", "ĐĐGgk", "ĐĐGck"))
        else:
            head(s.subject, 3, ("HK1", "HK2", "CN"))
    head("Rèn luyện", 3, ("HK1", "HK2", "CN"))
    head("Số buổi nghỉ")
    head("Nhận xét")
    for i, p in enumerate(PUPILS):
        r = FIRST_DATA_ROW + i
        y, h = p.years[3], p.holder
        ws.cell(row=r, column=cols["STT"], value=i + 1)
        ws.cell(row=r, column=cols["Mã học sinh"], value=p.student_code)
        ws.cell(row=r, column=cols["Họ và tên"], value=NFD(h.full_name))
        born = ws.cell(row=r, column=cols["Ngày sinh"])
        if i == 0:  # an Excel serial number, as exports that lost the date format have it
            born.value = (h.birth_date - datetime(1899, 12, 30).date()).days
        elif i == 1:
            born.value = datetime.combine(h.birth_date, datetime.min.time())
        else:
            born.value = h.birth_date.strftime("%d/%m/%Y")
        ws.cell(row=r, column=cols["Giới tính"], value=NFD("Nữ" if h.gender == 2 else "Nam"))
        pid = ws.cell(row=r, column=cols["Mã định danh"])
        if i == 1:  # a number shown with its leading zeros by the cell format
            pid.value, pid.number_format = int(str(h.personal_id)), "000000000000"
        else:
            pid.value = h.personal_id
        ws.cell(row=r, column=cols["Dân tộc"], value=NFD(h.ethnicity or ""))
        for s in y.subjects:
            if s.assessment == "scored":
                for sem_name, sem in (("HK1", s.hk1), ("HK2", s.hk2)):
                    assert sem is not None
                    for j, tx in enumerate(sem.tx):
                        ws.cell(row=r, column=cols[f"{s.subject} {sem_name} ĐĐGtx{j + 1}"], value=float(tx))
                    ws.cell(row=r, column=cols[f"{s.subject} {sem_name} ĐĐGgk"], value=str(sem.gk).replace(".", ","))
                    ws.cell(row=r, column=cols[f"{s.subject} {sem_name} ĐĐGck"], value=float(sem.ck))
            else:
                for sub in ("HK1", "HK2", "CN"):
                    ws.cell(row=r, column=cols[f"{s.subject} {sub}"], value=NFD("Đ"))
        for sub in ("HK1", "HK2", "CN"):
            ws.cell(row=r, column=cols[f"Rèn luyện {sub}"], value="T")
        ws.cell(row=r, column=cols["Số buổi nghỉ"], value=y.sessions_absent)
        ws.cell(row=r, column=cols["Nhận xét"], value=NFD(y.homeroom_comment))
    footer = FIRST_DATA_ROW + len(PUPILS) + 1 + extra_rows
    ws.cell(row=footer, column=2, value=NFD("Hà Nội, ngày 30 tháng 5 năm 2025 — Người lập bảng"))
    return wb, cols


def _bytes(wb: Workbook) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_an_export_with_titles_merged_headers_serial_dates_and_nfd_text_imports() -> None:
    wb, _ = _export()
    docs = import_xlsx(_bytes(wb), CTX)
    assert len(docs) == len(PUPILS)
    for doc, original in zip(docs, PUPILS, strict=True):
        assert doc.holder.full_name == original.holder.full_name
        assert unicodedata.is_normalized("NFC", doc.holder.full_name)
        assert doc.holder.birth_date == original.holder.birth_date
        assert doc.holder.gender == original.holder.gender and doc.holder.ethnicity == "Kinh"
        assert doc.holder.personal_id == original.holder.personal_id and doc.holder.personal_id.startswith("00")
        assert doc.student_code == original.student_code
        y, o = doc.years[0], original.years[3]
        assert (y.class_name, y.grade, y.school_year) == ("9A1", 9, "2024-2025")
        assert {s.subject: s.year_average for s in y.subjects} == {s.subject: s.year_average for s in o.subjects}
        assert y.learning == o.learning and y.conduct == o.conduct and y.sessions_absent == o.sessions_absent
        assert y.homeroom_comment == o.homeroom_comment


def test_every_bad_cell_is_named_once_by_sheet_address_column_and_value() -> None:
    wb, cols = _export()
    ws = wb.active
    r0, r1, r2 = FIRST_DATA_ROW, FIRST_DATA_ROW + 1, FIRST_DATA_ROW + 2
    bad = {
        (r0, "Toán HK1 ĐĐGtx2"): "8,55",
        (r1, "Ngữ văn HK2 ĐĐGck"): "vắng",
        (r2, "Âm nhạc HK2"): "Giỏi",
        (r1, "Ngày sinh"): "31/02/2010",
        (r0, "Giới tính"): "N",
        (r2, "Số buổi nghỉ"): "ba",
    }
    for (r, name), value in bad.items():
        ws.cell(row=r, column=cols[name], value=value)
    pid = ws.cell(row=r2, column=cols["Mã định danh"], value=1310034567)  # typed as a number: zeros lost
    assert pid.number_format == "General"
    dup = FIRST_DATA_ROW + 3  # the first pupil again, further down
    for c in range(1, ws.max_column + 1):
        ws.cell(row=dup, column=c, value=ws.cell(row=r0, column=c).value)
    with pytest.raises(schemas.SchemaError) as exc:
        import_xlsx(_bytes(wb), CTX)
    problems = exc.value.problems
    text = str(exc.value)
    for (r, name), value in bad.items():
        address = f"{get_column_letter(cols[name])}{r}"
        line = next((str(p) for p in problems if f"ô {address} " in p.where), None)
        assert line is not None, (address, text)
        assert f"trang 'Sheet1', ô {address} (dòng {r}), cột '{name}'" in line and f"'{value}'" in line
    assert "'8,55' phải từ 0 đến 10, tối đa một chữ số thập phân" in text  # decimal comma kept
    assert f"ô {get_column_letter(cols['Mã định danh'])}{r2}" in text and "mất số 0 ở đầu" in text
    assert f"ô {get_column_letter(cols['Mã học sinh'])}{dup}" in text and "trùng với trang 'Sheet1', ô B7" in text
    for python in ("String should", "Input should", "invalid literal", "validation error", "Decimal("):
        assert python not in text
    assert len([p for p in problems if "ô " in p.where]) >= len(bad) + 2


def test_absences_in_days_and_unknown_columns_are_named_with_their_header_cell() -> None:
    wb, cols = _export()
    ws = wb.active
    ws.cell(row=5, column=cols["Số buổi nghỉ"], value="Số ngày nghỉ")
    ws.cell(row=5, column=cols["Nhận xét"], value="Điểm thi đua")
    with pytest.raises(schemas.SchemaError) as exc:
        import_xlsx(_bytes(wb), CTX)
    text = str(exc.value)
    assert f"ô {get_column_letter(cols['Số buổi nghỉ'])}6" in text and "tính số buổi nghỉ" in text
    assert "không hiểu tiêu đề cột 'Điểm thi đua'" in text


def test_the_law_runs_on_imported_rows_too() -> None:
    wb, cols = _export()
    ws = wb.active
    ws.cell(row=FIRST_DATA_ROW, column=cols["Toán HK1 ĐĐGtx4"]).value = None  # Toán (140 periods) needs 4 TX
    with pytest.raises(schemas.SchemaError) as exc:
        import_xlsx(_bytes(wb), CTX)
    text = str(exc.value)
    assert "trang 'Sheet1', dòng 7" in text and "có 3 điểm đánh giá thường xuyên; môn này cần đúng 4" in text


@pytest.mark.parametrize("grade", [6, 9, 10, 12])
def test_the_template_of_each_grade_reads_back(grade: int) -> None:
    data = template_xlsx(grade, school_year="2024-2025")
    wb = load_workbook(io.BytesIO(data))
    ws = wb.active
    header = {}
    for c in range(1, ws.max_column + 1):
        parts = [ws.cell(row=r, column=c).value for r in (5, 6, 7)]
        header[c] = parts
    tx_cols = [c for c, p in header.items() if p[2] and str(p[2]).startswith("ĐĐGtx")]
    assert tx_cols
    # an empty template imports to nothing (no pupil rows) without any problem
    assert import_xlsx(data, CTX) == []
    # the TX columns are exactly those the subjects' periods give (Art. 6)
    toan = find_subject(grade, "Toán")
    assert toan is not None
    top = {c: ws.cell(row=5, column=c).value for c in range(1, ws.max_column + 1)}
    start = next(c for c, v in top.items() if v == "Toán")
    subs = [ws.cell(row=7, column=start + i).value for i in range(toan.tx + 2)]
    assert subs == [*(f"ĐĐGtx{i + 1}" for i in range(toan.tx)), "ĐĐGgk", "ĐĐGck"]


def test_a_filled_template_imports() -> None:
    data = template_xlsx(9, school_year="2024-2025")
    wb = load_workbook(io.BytesIO(data))
    ws = wb.active
    keys: dict[str, int] = {}
    for c in range(1, ws.max_column + 1):
        parts: list[str] = []
        for r in (5, 6, 7):
            v = ws.cell(row=r, column=c).value
            if v is None:
                # a merged cell: take the value of its top-left cell
                for rng in ws.merged_cells.ranges:
                    if rng.min_row <= r <= rng.max_row and rng.min_col <= c <= rng.max_col:
                        v = ws.cell(row=rng.min_row, column=rng.min_col).value
            if v and (not parts or parts[-1] != v):
                parts.append(str(v))
        keys[" ".join(parts)] = c
    p, y = PUPILS[0], PUPILS[0].years[3]
    row = 8
    values: dict[str, Any] = {
        "Mã học sinh": p.student_code,
        "Họ và tên": p.holder.full_name,
        "Ngày sinh": p.holder.birth_date.strftime("%d/%m/%Y"),
        "Giới tính": "Nữ",
        "Mã định danh": p.holder.personal_id,
        "Rèn luyện HK1": "T",
        "Rèn luyện HK2": "T",
        "Số buổi nghỉ": y.sessions_absent,
    }
    for s in y.subjects:
        if s.assessment == "scored":
            for sem_name, sem in (("HK1", s.hk1), ("HK2", s.hk2)):
                assert sem is not None
                for j, tx in enumerate(sem.tx):
                    values[f"{s.subject} {sem_name} ĐĐGtx{j + 1}"] = float(tx)
                values[f"{s.subject} {sem_name} ĐĐGgk"] = float(sem.gk)
                values[f"{s.subject} {sem_name} ĐĐGck"] = float(sem.ck)
        else:
            values[f"{s.subject} HK1"] = "Đ"
            values[f"{s.subject} HK2"] = "Đ"
    for name, value in values.items():
        ws.cell(row=row, column=keys[name], value=value)
    buf = io.BytesIO()
    wb.save(buf)
    (doc,) = import_xlsx(buf.getvalue(), CTX)
    assert doc.years[0].learning == y.learning
    assert doc.holder.personal_id == p.holder.personal_id
    assert [s.year_average for s in doc.years[0].subjects] == [s.year_average for s in y.subjects]


def test_csv_export_with_title_rows_and_a_serial_date() -> None:
    year = PUPILS[0].years[3]
    header = ["Mã học sinh", "Họ và tên", "Ngày sinh", "Giới tính", "Mã định danh"]
    p = PUPILS[0]
    serial = str((p.holder.birth_date - datetime(1899, 12, 30).date()).days)
    row: list[Any] = [p.student_code, NFD(p.holder.full_name), serial, NFD("Nữ"), p.holder.personal_id]
    for s in year.subjects:
        if s.assessment == "scored":
            for sem_name, sem in (("HK1", s.hk1), ("HK2", s.hk2)):
                assert sem is not None
                header += [f"{s.subject} {sem_name} TX", f"{s.subject} {sem_name} GK", f"{s.subject} {sem_name} CK"]
                row += ["; ".join(str(t).replace(".", ",") for t in sem.tx), str(sem.gk).replace(".", ","), str(sem.ck)]
        else:
            header += [f"{s.subject} HK1", f"{s.subject} HK2"]
            row += ["Đ", "Đ"]
    header += ["Rèn luyện HK1", "Rèn luyện HK2", "Số buổi nghỉ"]
    row += ["T", "T", str(year.sessions_absent)]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerows([["BẢNG ĐIỂM LỚP 9A1"], ["Năm học 2024-2025"], [], header, row])
    text = out.getvalue()
    (doc,) = import_csv(text.encode("utf-8"), "9A1", CTX)
    assert doc.holder.birth_date == p.holder.birth_date and doc.holder.full_name == p.holder.full_name
    assert doc.years[0].learning.year == year.learning.year
    assert [s.year_average for s in doc.years[0].subjects] == [s.year_average for s in year.subjects]
    assert all(isinstance(s.year_average, Decimal) for s in doc.years[0].subjects if s.assessment == "scored")


def test_the_cli_writes_a_template_per_grade(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from sealtrail.cli.main import app

    out = tmp_path / "mau-10.xlsx"
    result = CliRunner().invoke(app, ["import-template", "--grade", "10", "--out", str(out), "--class", "10A3"])
    assert result.exit_code == 0, result.output
    ws = load_workbook(out).active
    assert ws.title == "10A3" and "Lớp: 10A3" in str(ws["A2"].value)
    assert import_xlsx(out.read_bytes(), CTX) == []
    bad = CliRunner().invoke(app, ["import-template", "--grade", "13", "--out", str(out)])
    assert bad.exit_code == 2
