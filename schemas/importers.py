"""Importing class sheets from XLSX and CSV (one sheet per class, one row per pupil, one school year).

The layout is documented in docs/import-format.md. An import is all-or-nothing: every row is read and checked,
every problem is reported with its sheet, row and column, and nothing is returned unless all rows are good.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.checks import complete_transcript
from schemas.common import Gender, Person, SchemaError, School, ValidationProblem
from schemas.transcript import Results, SchoolYear, SemesterScores, SubjectYear, Transcript

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_ROWS = 2000
IDENTITY = {
    "Mã học sinh": "student_code",
    "Họ": "family_name",
    "Chữ đệm": "middle_name",
    "Tên": "given_name",
    "Ngày sinh": "birth_date",
    "Giới tính": "gender",
    "Nơi sinh": "birth_place",
    "Dân tộc": "ethnicity",
    "Mã định danh": "personal_id",
    "Nhận xét": "comment",
    "Lên lớp": "promoted",
    "Số buổi nghỉ": "sessions_absent",
}
REQUIRED = ("Mã học sinh", "Họ", "Tên", "Ngày sinh")
SCORED = re.compile(r"^(?P<subject>.+) (?P<sem>HK1|HK2) (?P<part>TX|GK|CK)$")
COMMENT = re.compile(r"^(?P<subject>.+) (?P<period>HK1|HK2|CN)$")
LEVELS = {
    "T": "Tốt",
    "K": "Khá",
    "Đ": "Đạt",
    "CĐ": "Chưa đạt",
    "Tốt": "Tốt",
    "Khá": "Khá",
    "Đạt": "Đạt",
    "Chưa đạt": "Chưa đạt",
}
CONDUCT = "Rèn luyện"


@dataclass(frozen=True)
class ClassContext:
    """What the sheet itself does not say: the school, the year, and the issue details."""

    school: School
    school_year: str
    issue_date: date
    issue_place: str
    homeroom_teacher: str = ""
    principal: str = ""


def _problem(sheet: str, row: int, column: str, message: str) -> ValidationProblem:
    return ValidationProblem(f"trang '{sheet}', dòng {row}, cột '{column}'", message)


def _score(text: str) -> Decimal:
    value = Decimal(text.strip().replace(",", "."))
    if not value.is_finite():
        raise InvalidOperation
    return value


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return datetime.strptime(str(value).strip(), "%d/%m/%Y").date()


def _grade(class_name: str) -> int:
    m = re.match(r"^(\d{1,2})", class_name)
    if not m:
        raise ValueError(f"tên lớp '{class_name}' không bắt đầu bằng khối (ví dụ 9A1)")
    return int(m.group(1))


def read_rows(
    headers: list[str], rows: list[list[Any]], sheet: str, ctx: ClassContext
) -> tuple[list[Transcript], list[ValidationProblem]]:
    problems: list[ValidationProblem] = []
    headers = [str(h).strip() if h is not None else "" for h in headers]
    for needed in REQUIRED:
        if needed not in headers:
            problems.append(ValidationProblem(f"trang '{sheet}'", f"thiếu cột '{needed}'"))
    scored: dict[str, dict[tuple[str, str], int]] = {}
    comment: dict[str, dict[str, int]] = {}
    for col, h in enumerate(headers):
        if not h or h in IDENTITY:
            continue
        if m := SCORED.match(h):
            scored.setdefault(m["subject"], {})[(m["sem"], m["part"])] = col
        elif m := COMMENT.match(h):
            comment.setdefault(m["subject"], {})[m["period"]] = col
        else:
            problems.append(ValidationProblem(f"trang '{sheet}', cột {col + 1}", f"không hiểu tiêu đề cột '{h}'"))
    for subject, cols in scored.items():
        missing = {(s, p) for s in ("HK1", "HK2") for p in ("TX", "GK", "CK")} - set(cols)
        for s, p in sorted(missing):
            problems.append(ValidationProblem(f"trang '{sheet}'", f"thiếu cột '{subject} {s} {p}'"))
    if problems:
        return [], problems
    index = {h: i for i, h in enumerate(headers)}
    try:
        grade = _grade(sheet)
    except ValueError as exc:
        return [], [ValidationProblem(f"trang '{sheet}'", str(exc))]
    out: list[Transcript] = []
    for r, raw in enumerate(rows, start=2):
        if all(v is None or str(v).strip() == "" for v in raw):
            continue
        cells = [("" if v is None else v) for v in raw] + [""] * (len(headers) - len(raw))

        def cell(name: str, cells: list[Any] = cells) -> str:
            return str(cells[index[name]]).strip() if name in index else ""

        row_problems: list[ValidationProblem] = []
        subjects: list[SubjectYear] = []
        for subject, cols in scored.items():
            sems: dict[str, SemesterScores] = {}
            for sem in ("HK1", "HK2"):
                try:
                    tx_text = str(cells[cols[(sem, "TX")]])
                    tx = tuple(_score(t) for t in re.split(r"[;\s]+", tx_text.strip()) if t)
                    gk, ck = (_score(str(cells[cols[(sem, p)]])) for p in ("GK", "CK"))
                    sems[sem.lower()] = SemesterScores(tx=tx, gk=gk, ck=ck)
                except (InvalidOperation, ValueError):
                    row_problems.append(_problem(sheet, r, f"{subject} {sem}", "điểm không phải là số (ví dụ 7,5)"))
            if len(sems) == 2:
                subjects.append(SubjectYear(subject=subject, assessment="scored", **sems))
        for subject, cols in comment.items():
            levels: dict[str, str] = {}
            for period, col in cols.items():
                value = LEVELS.get(str(cells[col]).strip())
                allowed = ("Đạt", "Chưa đạt") if subject != CONDUCT else ("Tốt", "Khá", "Đạt", "Chưa đạt")
                if value not in allowed:
                    row_problems.append(
                        _problem(sheet, r, f"{subject} {period}", f"'{cells[col]}' không phải {' / '.join(allowed)}")
                    )
                else:
                    levels[period] = value
            if subject != CONDUCT and len(levels) == 3:
                subjects.append(
                    SubjectYear(
                        subject=subject,
                        assessment="comment",
                        hk1_level=levels["HK1"],
                        hk2_level=levels["HK2"],
                        year_level=levels["CN"],
                    )
                )
        conduct_cols = comment.get(CONDUCT, {})
        conduct = Results(
            **{
                p.lower().replace("cn", "year"): LEVELS.get(str(cells[c]).strip())
                for p, c in conduct_cols.items()
                if LEVELS.get(str(cells[c]).strip())
            }
        )
        try:
            born = _date(cells[index["Ngày sinh"]])
        except (ValueError, TypeError):
            row_problems.append(
                _problem(sheet, r, "Ngày sinh", f"'{cell('Ngày sinh')}' không đúng dạng ngày/tháng/năm")
            )
            born = date(1900, 1, 1)
        gender = {"nam": Gender.MALE, "nữ": Gender.FEMALE}.get(cell("Giới tính").lower(), Gender.UNKNOWN)
        if row_problems:
            problems.extend(row_problems)
            continue
        try:
            holder = Person(
                family_name=cell("Họ"),
                middle_name=cell("Chữ đệm"),
                given_name=cell("Tên"),
                birth_date=born,
                birth_place=cell("Nơi sinh"),
                gender=gender,
                personal_id=cell("Mã định danh") or None,
                ethnicity=cell("Dân tộc") or None,
            )
            year = SchoolYear(
                school_year=ctx.school_year,
                grade=grade,
                class_name=sheet,
                subjects=tuple(subjects),
                learning=Results(),
                conduct=conduct,
                homeroom_comment=cell("Nhận xét"),
                promoted={"có": True, "không": False}.get(cell("Lên lớp").lower()),
                sessions_absent=int(cell("Số buổi nghỉ") or 0),
                homeroom_teacher=ctx.homeroom_teacher,
                principal=ctx.principal,
            )
            transcript = Transcript(
                level="lower_secondary" if grade <= 9 else "upper_secondary",
                record_id=f"HB{cell('Mã học sinh')}",
                student_code=cell("Mã học sinh"),
                holder=holder,
                school=ctx.school,
                years=(year,),
                issue_date=ctx.issue_date,
                issue_place=ctx.issue_place,
            )
        except (ValidationError, ValueError) as exc:
            errors = exc.errors() if isinstance(exc, ValidationError) else [{"loc": (), "msg": str(exc)}]
            for err in errors:
                where = ".".join(str(p) for p in err["loc"]) or "?"
                problems.append(_problem(sheet, r, where, str(err["msg"])))
            continue
        complete, arithmetic = complete_transcript(transcript)
        problems.extend(ValidationProblem(f"trang '{sheet}', dòng {r}", str(p)) for p in arithmetic)
        out.append(complete)
    return out, problems


def _check_size(data: bytes) -> None:
    if len(data) > MAX_FILE_BYTES:
        raise SchemaError(
            [ValidationProblem("", f"tệp lớn hơn {MAX_FILE_BYTES // (1024 * 1024)} MB; hãy tách theo lớp")]
        )


def import_xlsx(data: bytes, ctx: ClassContext) -> list[Transcript]:
    """Every sheet is one class; returns all transcripts or raises SchemaError listing every problem."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    _check_size(data)
    try:
        values = load_workbook(io.BytesIO(data), data_only=True)
        formulas = load_workbook(io.BytesIO(data), data_only=False)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise SchemaError([ValidationProblem("", "tệp không phải là bảng tính Excel .xlsx hợp lệ")]) from exc
    problems: list[ValidationProblem] = []
    docs: list[Transcript] = []
    for ws in values.worksheets:
        if ws.merged_cells.ranges:
            for rng in ws.merged_cells.ranges:
                problems.append(ValidationProblem(f"trang '{ws.title}', ô {rng.coord}", "có ô gộp; hãy bỏ gộp ô"))
            continue
        if ws.max_row > MAX_ROWS + 1:
            problems.append(ValidationProblem(f"trang '{ws.title}'", f"quá {MAX_ROWS} dòng"))
            continue
        fws = formulas[ws.title]
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
        for row in fws.iter_rows():
            for c in row:
                if c.data_type == "f" and ws[c.coordinate].value is None:
                    problems.append(
                        ValidationProblem(
                            f"trang '{ws.title}', ô {c.coordinate}",
                            "công thức chưa có giá trị; hãy mở tệp bằng Excel, lưu lại rồi tải lên",
                        )
                    )
        if not rows:
            continue
        found, sheet_problems = read_rows(list(rows[0]), rows[1:], ws.title, ctx)
        docs.extend(found)
        problems.extend(sheet_problems)
    if problems:
        raise SchemaError(problems)
    return docs


def import_csv(data: bytes, class_name: str, ctx: ClassContext) -> list[Transcript]:
    """One class in UTF-8 CSV (comma or semicolon separated)."""
    _check_size(data)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SchemaError([ValidationProblem("", "tệp CSV mã hóa UTF-16; hãy lưu lại dạng 'CSV UTF-8'")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SchemaError(
            [
                ValidationProblem(
                    "",
                    f"tệp CSV không phải UTF-8 (byte lạ ở vị trí {exc.start}; có thể là Windows-1258/TCVN3). "
                    "Hãy lưu lại dạng 'CSV UTF-8'",
                )
            ]
        ) from exc
    header = text.split("\n", 1)[0]
    delimiter = max(";,\t", key=header.count)
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if not rows:
        raise SchemaError([ValidationProblem("", "tệp CSV rỗng")])
    if len(rows) > MAX_ROWS + 1:
        raise SchemaError([ValidationProblem("", f"quá {MAX_ROWS} dòng")])
    docs, problems = read_rows(rows[0], [list(r) for r in rows[1:]], class_name, ctx)
    if problems:
        raise SchemaError(problems)
    return docs


def import_file(path: Path, ctx: ClassContext) -> list[Transcript]:
    data = path.read_bytes()
    if path.suffix.lower() == ".xlsx":
        return import_xlsx(data, ctx)
    if path.suffix.lower() == ".csv":
        return import_csv(data, path.stem, ctx)
    raise SchemaError([ValidationProblem("", "chỉ nhận tệp .xlsx hoặc .csv")])
