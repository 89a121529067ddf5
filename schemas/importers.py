"""Importing class sheets as school-management software exports them (XLSX and CSV, one class per sheet).

What it accepts (docs/import-format.md): title rows above the header (school, "BẢNG ĐIỂM LỚP 9A1", the year), a
header of one to three rows with merged cells ("Toán" over "HK1" over "ĐĐGtx1 … ĐĐGtx4, ĐĐGgk, ĐĐGck"), the
common column names ("Họ và tên" as one column or Họ / Chữ đệm / Tên, "Mã định danh", "ĐĐGtx1…4" or "TX1…4" or one
"TX" cell of several scores), Excel dates and serial numbers, text in any Unicode form (stored NFC), codes kept as
text (leading zeros). An import is all or nothing and done in ONE pass: every bad cell is named by its sheet, cell
address, column and value, in Vietnamese with decimal commas (English beside), and the law's checks
(schemas.checks) run on every pupil whose cells were good. Duplicate pupils are refused, never overwritten.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.checks import complete_transcript
from schemas.common import Gender, Person, SchemaError, School, ValidationProblem
from schemas.grading import valid_score, vn
from schemas.primary import PrimarySubject, PrimaryYear, Trait
from schemas.programme import programme, subject_key
from schemas.transcript import Results, SchoolYear, SemesterScores, SubjectYear, Transcript

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_ROWS = 2000
HEADER_SCAN = 15
FIELDS = {  # column names (any case, spelling or punctuation) → field
    "mã học sinh": "student_code",
    "mã hs": "student_code",
    "mahocsinh": "student_code",
    "họ và tên": "full_name",
    "họ tên": "full_name",
    "hovaten": "full_name",
    "họ": "family_name",
    "chữ đệm": "middle_name",
    "tên đệm": "middle_name",
    "tên": "given_name",
    "ngày sinh": "birth_date",
    "ngaysinh": "birth_date",
    "giới tính": "gender",
    "gioitinh": "gender",
    "nơi sinh": "birth_place",
    "dân tộc": "ethnicity",
    "mã định danh": "personal_id",
    "mã định danh cá nhân": "personal_id",
    "số định danh cá nhân": "personal_id",
    "sodinhdanhcanhan": "personal_id",
    "nhận xét": "comment",
    "nhận xét của giáo viên chủ nhiệm": "comment",
    "nhận xét gvcn": "comment",
    "lên lớp": "promoted",
    "được lên lớp": "promoted",
    "số buổi nghỉ": "sessions_absent",
    "tổng số buổi nghỉ": "sessions_absent",
    "nghỉ buổi": "sessions_absent",
    "số ngày nghỉ": "days_absent",
    "khen thưởng": "awards",
    "kết quả giáo dục": "result",
    "đánh giá kết quả giáo dục": "result",
}
IGNORED = {"stt", "tt", "số tt", "số thứ tự", "ghi chú", "lớp"}
SEMESTER_WORDS = {
    "hk1": "hk1",
    "hki": "hk1",
    "hk i": "hk1",
    "học kì i": "hk1",
    "học kì 1": "hk1",
    "hk2": "hk2",
    "hkii": "hk2",
    "hk ii": "hk2",
    "học kì ii": "hk2",
    "học kì 2": "hk2",
    "cn": "year",
    "cả năm": "year",
    "năm": "year",
}
PART_WORDS = {
    **{f"đđgtx{i}": f"tx{i}" for i in range(1, 5)},
    **{f"tx{i}": f"tx{i}" for i in range(1, 5)},
    **{f"tx {i}": f"tx{i}" for i in range(1, 5)},
    "tx": "tx",
    "đđgtx": "tx",
    "gk": "gk",
    "đđggk": "gk",
    "giữa kì": "gk",
    "ck": "ck",
    "đđgck": "ck",
    "cuối kì": "ck",
    "tb": "avg",
    "đtb": "avg",
    "đtbmhk": "avg",
    "đtbmcn": "avg",
    "tbm": "avg",
    "mức": "level",
    "mức đánh giá": "level",
    "kết quả": "level",
    "kiểm tra lại": "retest",
    "ktl": "retest",
    "điểm kiểm tra lại": "retest",
}
# Primary (Circular 27/2020): when each level or test is taken, and what the cell holds.
PRIMARY_WHEN = {
    "giữa hk i": "mid1",
    "giữa học kì i": "mid1",
    "giữa hk ii": "mid2",
    "giữa học kì ii": "mid2",
    "cuối hk i": "mid",
    "cuối học kì i": "mid",
    "giữa năm": "mid",
    "hk1": "mid",
    "cuối năm": "year",
    "cn": "year",
}
PRIMARY_PART = {"mức": "level", "mức đạt được": "level", "điểm": "score", "điểm ktđk": "score"}
PRIMARY_SUBJECT_LEVELS = {
    "t": "T",
    "hoàn thành tốt": "T",
    "h": "H",
    "hoàn thành": "H",
    "c": "C",
    "chưa hoàn thành": "C",
}
PRIMARY_TRAIT_LEVELS = {"t": "T", "tốt": "T", "đ": "Đ", "đạt": "Đ", "c": "C", "cần cố gắng": "C"}
SUBTOKENS = set(SEMESTER_WORDS) | set(PART_WORDS) | set(PRIMARY_WHEN) | set(PRIMARY_PART)
CONDUCT_WORDS = ("kết quả rèn luyện", "rèn luyện", "hạnh kiểm")
LEARNING_WORDS = ("kết quả học tập", "học tập", "học lực")
LEVELS = {
    "t": "Tốt",
    "tốt": "Tốt",
    "k": "Khá",
    "khá": "Khá",
    "đ": "Đạt",
    "đạt": "Đạt",
    "cđ": "Chưa đạt",
    "chưa đạt": "Chưa đạt",
}
YES = {"có", "x", "lên lớp", "được lên lớp", "1", "true", "c"}
NO = {"không", "ở lại", "ở lại lớp", "0", "false", "k"}
EXCEL_EPOCH = date(1899, 12, 30)


@dataclass(frozen=True)
class ClassContext:
    """What the sheet itself does not say: the school, the year, and the issue details."""

    school: School
    school_year: str
    issue_date: date
    issue_place: str
    homeroom_teacher: str = ""
    principal: str = ""


@dataclass(frozen=True)
class Cell:
    value: Any
    number_format: str = "General"


@dataclass
class Column:
    index: int
    header: str
    field: str | None = None  # an identity field, or None for subject/results columns
    subject: str | None = None  # the programme's name
    assessment: str | None = None
    results: str | None = None  # "learning" or "conduct"
    semester: str | None = None  # hk1, hk2, year
    part: str | None = None  # tx1…tx4, tx, gk, ck, avg, level, retest; primary: level, score
    trait: str | None = None  # primary: "quality" or "competence" (the name is in ``subject``)


@dataclass
class Sheet:
    """One class: its name, its cells (merged header cells filled in) and the merged ranges of data rows."""

    name: str
    rows: list[list[Cell]]
    class_name: str
    data_merges: list[str] = field(default_factory=list)


def text(value: Any) -> str:
    """A cell as NFC text, trimmed; whole floats lose their '.0'."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFC", str(value)).strip()


def nfc_fold(value: str) -> str:
    return unicodedata.normalize("NFC", value).casefold()


def _key(value: Any) -> str:
    return subject_key(text(value))


def column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return str(get_column_letter(index + 1))


def _m(vi: str, en: str) -> str:
    return f"{vi} / {en}"


class _Report:
    def __init__(self) -> None:
        self.problems: list[ValidationProblem] = []

    def cell(self, sheet: str, row: int, col: Column, value: Any, vi: str, en: str) -> None:
        shown = text(value)
        where = f"trang '{sheet}', ô {column_letter(col.index)}{row} (dòng {row}), cột '{col.header}'"
        self.problems.append(ValidationProblem(where, _m(f"giá trị '{vn(shown) if shown else ''}' {vi}", en)))

    def sheet(self, sheet: str, vi: str, en: str, where: str = "") -> None:
        self.problems.append(ValidationProblem(f"trang '{sheet}'{where}", _m(vi, en)))


# ---------------------------------------------------------------------------------------------------------- header


def _header_rows(rows: list[list[Cell]]) -> tuple[int, int] | None:
    """(first header row, number of header rows), 0-based; the header is the first row naming the pupil."""
    for r, row in enumerate(rows[:HEADER_SCAN]):
        keys = {_key(c.value) for c in row}
        names = {k for k in keys if FIELDS.get(k) in ("full_name", "given_name", "student_code")}
        if names:
            depth = 1
            while r + depth < len(rows) and depth < 3 and any(_key(c.value) in SUBTOKENS for c in rows[r + depth]):
                depth += 1
            return r, depth
    return None


def _subjects(grade: int) -> list[tuple[str, str, str]]:
    """(key, programme name, assessment) of every name and alias of the grade's subjects, longest key first."""
    out = []
    for s in programme(grade):
        for name in (s.name, *s.aliases):
            out.append((subject_key(name), s.name, s.assessment))
    return sorted(out, key=lambda t: -len(t[0]))


def _semester_and_part(rest: str) -> tuple[str | None, str | None, bool]:
    """Split what follows a subject or results name into (semester, part); ok=False if something is left over."""
    semester = part = None
    for word, value in sorted(SEMESTER_WORDS.items(), key=lambda kv: -len(kv[0])):
        if rest == word or rest.startswith(word + " "):
            semester, rest = value, rest[len(word) :].strip()
            break
    if rest:
        part = PART_WORDS.get(rest)
        if part is None:
            return semester, None, False
    return semester, part, True


def _primary_column(col: Column, key: str, grade: int) -> Column | None:
    """A primary sheet's column: a quality or competence, or a subject's level/score at a given time."""
    from schemas.programme import primary_traits

    qualities, competences = primary_traits()
    for kind, names in (("quality", qualities), ("competence", competences)):
        for name in names:
            if key == subject_key(name):
                col.trait, col.subject = kind, name
                return col
    for skey, name, _assessment in _subjects(grade):
        if key == skey or key.startswith(skey + " "):
            rest = key[len(skey) :].strip()
            for word, when in sorted(PRIMARY_WHEN.items(), key=lambda kv: -len(kv[0])):
                if rest == word or rest.startswith(word + " "):
                    after = rest[len(word) :].strip()
                    what = PRIMARY_PART.get(after) if after else ("score" if when in ("mid1", "mid2") else None)
                    if what is None:
                        return None
                    col.subject, col.assessment, col.semester, col.part = name, "level", when, what
                    return col
            return None
    return None


def _column(index: int, header: str, grade: int) -> Column | None:
    key = subject_key(header)
    col = Column(index, header)
    if not key or key in IGNORED:
        return col
    if key in FIELDS:
        col.field = FIELDS[key]
        return col
    if grade <= 5:
        return _primary_column(col, key, grade)
    for results, words in (("conduct", CONDUCT_WORDS), ("learning", LEARNING_WORDS)):
        for word in words:
            if key == word or key.startswith(word + " "):
                semester, part, ok = _semester_and_part(key[len(word) :].strip())
                if ok and semester and part in (None, "level"):
                    col.results, col.semester = results, semester
                    return col
                return None
    for skey, name, assessment in _subjects(grade):
        if key == skey or key.startswith(skey + " "):
            semester, part, ok = _semester_and_part(key[len(skey) :].strip())
            if not ok or (semester is None and part != "retest"):
                return None
            col.subject, col.assessment, col.semester, col.part = name, assessment, semester, part
            return col
    return None


def _grade(class_name: str) -> int | None:
    m = re.match(r"^(\d{1,2})", class_name)
    return int(m.group(1)) if m and 1 <= int(m.group(1)) <= 12 else None


# ---------------------------------------------------------------------------------------------------------- values


def _score(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise InvalidOperation
    if isinstance(value, float):
        value = round(value, 6)
    result = Decimal(text(value).replace(",", "."))
    if not result.is_finite():
        raise InvalidOperation
    return result


def _date(cell: Cell) -> date:
    value = cell.value
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return EXCEL_EPOCH + timedelta(days=int(value))
    raw = text(value)
    if raw.isdigit() and 10000 < int(raw) < 80000:  # an Excel serial number exported as text
        return EXCEL_EPOCH + timedelta(days=int(raw))
    for fmt in ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
    raise ValueError(raw)


def _code(cell: Cell) -> str:
    """A code as text. A number keeps the leading zeros its cell format shows (format '000000000000')."""
    value = cell.value
    if isinstance(value, int | float) and not isinstance(value, bool):
        digits = str(int(value))
        fmt = cell.number_format or ""
        return digits.zfill(len(fmt)) if fmt and set(fmt) == {"0"} else digits
    return text(value)


# ---------------------------------------------------------------------------------------------------------- rows


def _pupil(
    sheet: Sheet, r: int, row: list[Cell], cols: list[Column], ctx: ClassContext, report: _Report, grade: int
) -> Transcript | None:
    """One pupil's row: every bad cell reported; the transcript if all its cells were good."""
    before = len(report.problems)
    excel_row = r + 1

    def get(col: Column) -> Cell:
        return row[col.index] if col.index < len(row) else Cell(None)

    def bad(col: Column, vi: str, en: str) -> None:
        report.cell(sheet.name, excel_row, col, get(col).value, vi, en)

    ident: dict[str, Any] = {}
    for col in cols:
        if not col.field:
            continue
        cell = get(col)
        raw = text(cell.value)
        if col.field == "birth_date":
            if not raw:
                bad(col, "trống: cần ngày sinh (ngày/tháng/năm)", "the birth date is missing")
                continue
            try:
                born = _date(cell)
            except (ValueError, OverflowError):
                bad(col, "không phải ngày/tháng/năm (ví dụ 14/03/2010)", "not a day/month/year date")
                continue
            if not date(1950, 1, 1) <= born <= ctx.issue_date:
                bad(col, f"cho ngày {born:%d/%m/%Y}, không hợp lý", f"gives {born}, not plausible")
                continue
            ident["birth_date"] = born
        elif col.field in ("student_code", "personal_id"):
            code = _code(cell)
            if col.field == "personal_id" and code:
                if code.isdigit() and len(code) < 12 and not isinstance(cell.value, str):
                    bad(col, "đã mất số 0 ở đầu: hãy định dạng cột là Văn bản (Text) rồi nhập lại",
                        "lost its leading zeros: format the column as Text")  # fmt: skip
                    continue
                if not re.fullmatch(r"\d{12}", code):
                    bad(col, "không phải mã định danh cá nhân 12 chữ số", "is not a 12-digit personal ID")
                    continue
            ident[col.field] = code
        elif col.field == "gender":
            gender = {"nam": Gender.MALE, "1": Gender.MALE, "nữ": Gender.FEMALE, "2": Gender.FEMALE, "": Gender.UNKNOWN}
            if raw.casefold() not in gender:
                bad(col, "không phải Nam / Nữ", "is not Nam / Nữ")
                continue
            ident["gender"] = gender[raw.casefold()]
        elif col.field == "promoted":
            if raw.casefold() in YES:
                ident["promoted"] = True
            elif raw.casefold() in NO:
                ident["promoted"] = False
            elif raw:
                bad(col, "không phải Có / Không", "is not Có / Không")
        elif col.field == "sessions_absent":
            try:
                sessions = int(_score(cell.value)) if raw else 0
                if sessions < 0 or (raw and _score(cell.value) != sessions):
                    raise InvalidOperation
            except InvalidOperation:
                bad(col, "không phải số buổi nghỉ (số nguyên, ví dụ 3)", "is not a whole number of sessions")
                continue
            ident["sessions_absent"] = sessions
        else:
            ident[col.field] = raw
    if "full_name" in ident and not ident.get("given_name"):
        words = ident.pop("full_name").split()
        name_col = next(c for c in cols if c.field == "full_name")
        if len(words) < 2:
            bad(name_col, "cần đủ họ và tên (ví dụ Nguyễn Thị Thu Hằng)", "needs family and given names")
        else:
            ident.update(family_name=words[0], middle_name=" ".join(words[1:-1]), given_name=words[-1])
    code_col = next(c for c in cols if c.field == "student_code")
    if not ident.get("student_code"):
        bad(code_col, "trống: cần Mã học sinh", "the pupil's code is missing")
    given_col = next((c for c in cols if c.field == "given_name"), None)
    if given_col is not None and not ident.get("given_name"):
        bad(given_col, "trống: cần Tên", "the given name is missing")
    primary: dict[str, Any] = {}
    subjects: list[SubjectYear] = []
    learning: dict[str, str] = {}
    conduct: dict[str, str] = {}
    if grade <= 5:
        primary = _primary_results(sheet, excel_row, row, cols, report)
    else:
        subjects, learning, conduct = _results(sheet, excel_row, row, cols, report)
    if len(report.problems) > before:
        return None
    try:
        holder = Person(
            family_name=ident.get("family_name", ""),
            middle_name=ident.get("middle_name", ""),
            given_name=ident.get("given_name", ""),
            birth_date=ident["birth_date"],
            birth_place=ident.get("birth_place", ""),
            gender=ident.get("gender", Gender.UNKNOWN),
            personal_id=ident.get("personal_id") or None,
            ethnicity=ident.get("ethnicity") or None,
        )
        if grade <= 5:
            transcript = Transcript(
                level="primary",
                record_id=f"HB{ident['student_code']}",
                student_code=ident["student_code"],
                holder=holder,
                school=ctx.school,
                primary_years=(
                    PrimaryYear(
                        school_year=ctx.school_year,
                        grade=grade,
                        class_name=sheet.class_name,
                        homeroom_comment=ident.get("comment", ""),
                        promoted=ident.get("promoted"),
                        sessions_absent=ident.get("sessions_absent", 0),
                        homeroom_teacher=ctx.homeroom_teacher,
                        principal=ctx.principal,
                        awards=ident.get("awards", ""),
                        result=ident.get("result") or None,
                        **primary,
                    ),
                ),
                issue_date=ctx.issue_date,
                issue_place=ctx.issue_place,
            )
            complete, problems = complete_transcript(transcript)
            report.problems.extend(
                ValidationProblem(f"trang '{sheet.name}', dòng {excel_row}", str(p)) for p in problems
            )
            return complete if not problems else None
        year = SchoolYear(
            school_year=ctx.school_year,
            grade=grade,
            class_name=sheet.class_name,
            subjects=tuple(subjects),
            learning=Results.model_validate(learning),
            conduct=Results.model_validate(conduct),
            homeroom_comment=ident.get("comment", ""),
            promoted=ident.get("promoted"),
            sessions_absent=ident.get("sessions_absent", 0),
            homeroom_teacher=ctx.homeroom_teacher,
            principal=ctx.principal,
            awards=ident.get("awards", ""),
        )
        transcript = Transcript(
            level="lower_secondary" if grade <= 9 else "upper_secondary",
            record_id=f"HB{ident['student_code']}",
            student_code=ident["student_code"],
            holder=holder,
            school=ctx.school,
            years=(year,),
            issue_date=ctx.issue_date,
            issue_place=ctx.issue_place,
        )
    except (ValidationError, KeyError) as exc:  # a gap the checks above did not foresee: said plainly, never raw
        if isinstance(exc, ValidationError):
            fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        else:
            fields = str(exc)
        report.problems.append(
            ValidationProblem(
                f"trang '{sheet.name}', dòng {excel_row}",
                _m(f"dữ liệu của học sinh chưa đủ hoặc sai dạng ({fields})", f"incomplete or malformed ({fields})"),
            )
        )
        return None
    complete, problems = complete_transcript(transcript)
    report.problems.extend(ValidationProblem(f"trang '{sheet.name}', dòng {excel_row}", str(p)) for p in problems)
    return complete if not problems else None


def _primary_results(
    sheet: Sheet, excel_row: int, row: list[Cell], cols: list[Column], report: _Report
) -> dict[str, Any]:
    """A primary row: each subject's levels (T/H/C) and periodic test scores (whole numbers 1–10), and each quality
    and competence (T/Đ/C). Returns the PrimaryYear fields."""

    def get(col: Column) -> Cell:
        return row[col.index] if col.index < len(row) else Cell(None)

    subjects: dict[str, dict[str, Any]] = {}
    traits: dict[str, list[dict[str, str]]] = {"quality": [], "competence": []}
    names = {"mid": "mid", "year": "year", "mid1": "mid_hk1", "mid2": "mid_hk2"}
    reported: set[str] = set()
    for col in cols:
        if col.field or not col.subject:
            continue
        raw = text(get(col).value)
        if col.trait:
            level = PRIMARY_TRAIT_LEVELS.get(raw.casefold())
            if level is None:
                report.cell(sheet.name, excel_row, col, raw, "không phải T (Tốt) / Đ (Đạt) / C (Cần cố gắng)",
                            "is not T / Đ / C")  # fmt: skip
                continue
            traits[col.trait].append({"name": col.subject, "level": level})
            continue
        fields = subjects.setdefault(col.subject, {"subject": col.subject})
        if not raw:
            continue
        when = names[str(col.semester)]
        if col.part == "level":
            level = PRIMARY_SUBJECT_LEVELS.get(raw.casefold())
            if level is None:
                report.cell(sheet.name, excel_row, col, raw, "không phải T (Hoàn thành tốt) / H (Hoàn thành) / C "
                            "(Chưa hoàn thành)", "is not T / H / C")  # fmt: skip
                reported.add(col.subject)
                continue
            fields[f"{when}_level"] = level
        else:
            try:
                score = _score(get(col).value)
            except InvalidOperation:
                score = Decimal(-1)
            if score != score.to_integral_value() or not 1 <= score <= 10:
                report.cell(sheet.name, excel_row, col, raw, "phải là điểm nguyên từ 1 đến 10 (Thông tư 27)",
                            "must be a whole score 1–10")  # fmt: skip
                reported.add(col.subject)
                continue
            fields[f"{when}_score"] = int(score)
    out: list[PrimarySubject] = []
    for name, fields in subjects.items():
        if len(fields) == 1:  # nothing filled in: not taken (an optional subject); the checks decide
            continue
        if name in reported:
            continue
        if "year_level" not in fields:
            col = next(c for c in cols if c.subject == name and c.semester == "year" and c.part == "level")
            report.cell(
                sheet.name, excel_row, col, "", "trống: cần mức cuối năm T / H / C", "the year level is missing"
            )
            continue
        out.append(PrimarySubject(**fields))
    return {
        "subjects": tuple(out),
        "qualities": tuple(Trait.model_validate(t) for t in traits["quality"]),
        "competences": tuple(Trait.model_validate(t) for t in traits["competence"]),
    }


def _results(
    sheet: Sheet, excel_row: int, row: list[Cell], cols: list[Column], report: _Report
) -> tuple[list[SubjectYear], dict[str, str], dict[str, str]]:
    def get(col: Column) -> Cell:
        return row[col.index] if col.index < len(row) else Cell(None)

    learning: dict[str, str] = {}
    conduct: dict[str, str] = {}
    by_subject: dict[str, list[Column]] = {}
    for col in cols:
        if col.results:
            raw = text(get(col).value)
            if not raw:
                continue
            level = LEVELS.get(raw.casefold())
            if level is None:
                report.cell(sheet.name, excel_row, col, raw, "không phải T / K / Đ / CĐ", "is not T / K / Đ / CĐ")
                continue
            (learning if col.results == "learning" else conduct)[col.semester or "year"] = level
        elif col.subject:
            by_subject.setdefault(col.subject, []).append(col)
    subjects: list[SubjectYear] = []
    for name, scols in by_subject.items():
        assessment = scols[0].assessment
        fields: dict[str, Any] = {}
        if all(not text(get(c).value) for c in scols):  # not taken (an elective) or left blank: the checks decide
            continue
        if assessment == "comment":
            for col in scols:
                raw = text(get(col).value)
                if col.part == "retest":
                    if raw:
                        level = LEVELS.get(raw.casefold())
                        if level not in ("Đạt", "Chưa đạt"):
                            report.cell(sheet.name, excel_row, col, raw, "không phải Đ / CĐ", "is not Đ / CĐ")
                        else:
                            fields["retest_level"] = level
                    continue
                if not raw and col.semester == "year":  # the year level follows HK II (Art. 9 cl. 1)
                    continue
                level = LEVELS.get(raw.casefold())
                if level not in ("Đạt", "Chưa đạt"):
                    vi = "không phải Đ (Đạt) / CĐ (Chưa đạt)" if raw else "trống: cần Đ (Đạt) hoặc CĐ (Chưa đạt)"
                    report.cell(sheet.name, excel_row, col, raw, vi, "is not Đ / CĐ")
                    continue
                fields[f"{col.semester}_level"] = level
            subjects.append(SubjectYear(subject=name, assessment="comment", **fields))
            continue
        sems: dict[str, dict[str, Any]] = {"hk1": {"tx": []}, "hk2": {"tx": []}}
        reported: set[str | None] = set()
        for col in sorted(scols, key=lambda c: c.index):
            cell = get(col)
            raw = text(cell.value)
            if not raw:
                continue
            try:
                if col.part == "tx" and isinstance(cell.value, str):
                    values = [_score(v) for v in re.split(r"[;\s]+", raw) if v]
                else:
                    values = [_score(cell.value)]
            except InvalidOperation:
                report.cell(sheet.name, excel_row, col, raw, "không phải điểm số (ví dụ 7,5)", "is not a score")
                reported.add(col.semester)
                continue
            if not all(valid_score(v) for v in values):
                report.cell(sheet.name, excel_row, col, raw, "phải từ 0 đến 10, tối đa một chữ số thập phân",
                            "must be 0–10 with at most one decimal")  # fmt: skip
                reported.add(col.semester)
                continue
            if col.part == "retest":
                fields["retest_score"] = values[0]
            elif col.semester == "year":
                if col.part in ("avg", None):
                    fields["year_average"] = values[0]
            elif col.semester in sems and col.part:
                sem = sems[col.semester]
                if col.part.startswith("tx"):
                    sem["tx"].extend(values)
                elif col.part in ("gk", "ck"):
                    sem[col.part] = values[0]
                elif col.part == "avg":
                    sem["average"] = values[0]
        for semester, sem in sems.items():
            missing = [p for p in ("gk", "ck") if p not in sem] + (["tx"] if not sem["tx"] else [])
            first = next((c for c in scols if c.semester == semester), scols[0])
            if semester in reported:
                continue
            if missing:
                label = {"hk1": "học kì I", "hk2": "học kì II"}[semester]
                names = ", ".join({"gk": "ĐĐGgk", "ck": "ĐĐGck", "tx": "ĐĐGtx"}[p] for p in missing)
                report.cell(sheet.name, excel_row, first, "", f"môn {name} {label}: thiếu điểm {names}",
                            f"{name}: {names} missing")  # fmt: skip
                continue
            fields[semester] = SemesterScores(
                tx=tuple(sem["tx"]), gk=sem["gk"], ck=sem["ck"], average=sem.get("average")
            )
        if "hk1" in fields and "hk2" in fields:
            subjects.append(SubjectYear(subject=name, assessment="scored", **fields))
    return subjects, learning, conduct


def read_sheet(sheet: Sheet, ctx: ClassContext, report: _Report, seen: dict[str, str]) -> list[Transcript]:
    """Find the header, name the columns, read every pupil; ``seen`` catches a pupil twice across the file."""
    found = _header_rows(sheet.rows)
    if found is None:
        report.sheet(sheet.name, f"không tìm thấy dòng tiêu đề trong {HEADER_SCAN} dòng đầu (cần cột 'Họ và tên' "
                     "hoặc 'Tên', và 'Mã học sinh')", "no header row naming the pupils was found")  # fmt: skip
        return []
    first, depth = found
    grade = _grade(sheet.class_name)
    if grade is None:
        report.sheet(sheet.name, f"tên lớp '{sheet.class_name}' phải bắt đầu bằng khối 1–12 (ví dụ 9A1)",
                     "the class name must start with the grade")  # fmt: skip
        return []
    width = max(len(r) for r in sheet.rows[first : first + depth])
    cols: list[Column] = []
    header_row = first + depth  # 1-based number of the last header row
    for c in range(width):
        parts: list[str] = []
        for r in range(first, first + depth):
            value = text(sheet.rows[r][c].value) if c < len(sheet.rows[r]) else ""
            if value and (not parts or subject_key(parts[-1]) != subject_key(value)):
                parts.append(value)
        header = " ".join(parts)
        col = _column(c, header, grade)
        if col is None:
            report.sheet(sheet.name, f"không hiểu tiêu đề cột '{header}' (không phải thông tin học sinh, kết quả, "
                         f"hay môn của chương trình lớp {grade} với HK1/HK2/CN và ĐĐGtx/ĐĐGgk/ĐĐGck)",
                         f"column header '{header}' not understood", f", ô {column_letter(c)}{header_row}")  # fmt: skip
            continue
        if col.field == "days_absent":
            report.sheet(sheet.name, "cột 'Số ngày nghỉ': Thông tư 22 (Điều 12) tính số buổi nghỉ; hãy dùng cột "
                         "'Số buổi nghỉ'", "absences are counted in sessions: use 'Số buổi nghỉ'",
                         f", ô {column_letter(c)}{header_row}")  # fmt: skip
            continue
        cols.append(col)
    if not ctx.homeroom_teacher or not ctx.principal:
        report.sheet(sheet.name, "cần họ tên giáo viên chủ nhiệm và hiệu trưởng xác nhận năm học (--homeroom-teacher, "
                     "--principal)", "the homeroom teacher's and the principal's names are needed")  # fmt: skip
    named = {c.field for c in cols if c.field}
    for needed, label in (("student_code", "Mã học sinh"), ("birth_date", "Ngày sinh")):
        if needed not in named:
            report.sheet(sheet.name, f"thiếu cột '{label}'", f"the '{label}' column is missing")
    if "full_name" not in named and not {"family_name", "given_name"} <= named:
        report.sheet(sheet.name, "thiếu cột 'Họ và tên' (hoặc 'Họ' và 'Tên')", "the name column is missing")
    for rng in sheet.data_merges:
        report.sheet(sheet.name, "có ô gộp trong phần dữ liệu; hãy bỏ gộp ô", "merged cells among the data rows",
                     f", ô {rng}")  # fmt: skip
    if report.problems:
        return []
    out: list[Transcript] = []
    code_col = next(c for c in cols if c.field == "student_code")
    pid_col = next((c for c in cols if c.field == "personal_id"), None)
    for r in range(first + depth, len(sheet.rows)):
        row = sheet.rows[r]
        if all(not text(c.value) for c in row):
            continue
        filled = [text(c.value) for c in row if text(c.value)]
        if len(filled) == 1 and not filled[0].isdigit():  # a footer line ("Người lập bảng", a date line)
            continue
        for col in (code_col, pid_col):
            if col is None or col.index >= len(row):
                continue
            code = _code(row[col.index])
            if not code:
                continue
            where = f"trang '{sheet.name}', ô {column_letter(col.index)}{r + 1}"
            key = f"{col.field}:{code}"
            if key in seen:
                report.cell(sheet.name, r + 1, col, code, f"trùng với {seen[key]}: mỗi học sinh chỉ một dòng",
                            f"duplicates {seen[key]}")  # fmt: skip
            else:
                seen[key] = where
        doc = _pupil(sheet, r, row, cols, ctx, report, grade)
        if doc is not None:
            out.append(doc)
    return out


# ---------------------------------------------------------------------------------------------------------- files


def _check_size(data: bytes) -> None:
    if len(data) > MAX_FILE_BYTES:
        raise SchemaError(
            [ValidationProblem("", f"tệp lớn hơn {MAX_FILE_BYTES // (1024 * 1024)} MB; hãy tách theo lớp")]
        )


def _class_name(title: str, rows: list[list[Cell]]) -> str:
    """The class: 'Lớp: 9A1' in a title row, else the sheet's (or file's) name."""
    for row in rows[:HEADER_SCAN]:
        for cell in row:
            m = re.search(r"\blớp\s*:?\s*(\d{1,2}\s?[A-Za-zĐđ]{1,3}\d{0,2})\b", text(cell.value), re.IGNORECASE)
            if m:
                return m.group(1).replace(" ", "")
    return title


def import_xlsx(data: bytes, ctx: ClassContext) -> list[Transcript]:
    """Every sheet is one class; returns all transcripts or raises SchemaError listing every problem."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    _check_size(data)
    try:
        values = load_workbook(io.BytesIO(data), data_only=True)
        formulas = load_workbook(io.BytesIO(data), data_only=False)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise SchemaError(
            [ValidationProblem("", "tệp không phải là bảng tính Excel .xlsx hợp lệ / not .xlsx")]
        ) from exc
    report = _Report()
    seen: dict[str, str] = {}
    docs: list[Transcript] = []
    for ws in values.worksheets:
        if ws.max_row > MAX_ROWS + HEADER_SCAN:
            report.sheet(ws.title, f"quá {MAX_ROWS} dòng", f"more than {MAX_ROWS} rows")
            continue
        rows = [[Cell(c.value, c.number_format) for c in row] for row in ws.iter_rows()]
        for row in formulas[ws.title].iter_rows():
            for c in row:
                if c.data_type == "f" and ws[c.coordinate].value is None:
                    report.sheet(ws.title, "công thức chưa có giá trị; hãy mở tệp bằng Excel, lưu lại rồi tải lên",
                                 "a formula without a computed value: open and save the file in Excel",
                                 f", ô {c.coordinate}")  # fmt: skip
        if not rows:
            continue
        header = _header_rows(rows)
        last_header = (header[0] + header[1]) if header else HEADER_SCAN
        merges = []
        for rng in ws.merged_cells.ranges:
            if rng.min_row > last_header:
                merges.append(rng.coord)
                continue
            top = rows[rng.min_row - 1][rng.min_col - 1]
            for r in range(rng.min_row, rng.max_row + 1):
                for c in range(rng.min_col, rng.max_col + 1):
                    rows[r - 1][c - 1] = top
        docs.extend(read_sheet(Sheet(ws.title, rows, _class_name(ws.title, rows), merges), ctx, report, seen))
    if report.problems:
        raise SchemaError(report.problems)
    return docs


def import_csv(data: bytes, class_name: str, ctx: ClassContext) -> list[Transcript]:
    """One class in UTF-8 CSV (comma, semicolon or tab separated)."""
    _check_size(data)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SchemaError([ValidationProblem("", "tệp CSV mã hóa UTF-16; hãy lưu lại dạng 'CSV UTF-8'")])
    try:
        decoded = data.decode("utf-8-sig")
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
    lines = decoded.splitlines()[:HEADER_SCAN]
    header_line = next(
        (ln for ln in lines if re.search(r"mã học sinh|họ và tên|\btên\b", nfc_fold(ln))), lines[0] if lines else ""
    )

    def fields(d: str) -> int:
        return max((len(r) for r in csv.reader([header_line], delimiter=d)), default=0)

    delimiter = max(";,\t", key=fields)  # the separator that splits the header row the most (quotes respected)
    raw_rows = list(csv.reader(io.StringIO(decoded), delimiter=delimiter))
    if not raw_rows:
        raise SchemaError([ValidationProblem("", "tệp CSV rỗng")])
    if len(raw_rows) > MAX_ROWS + HEADER_SCAN:
        raise SchemaError([ValidationProblem("", f"quá {MAX_ROWS} dòng")])
    rows = [[Cell(v) for v in r] for r in raw_rows]
    report = _Report()
    docs = read_sheet(Sheet(class_name, rows, _class_name(class_name, rows)), ctx, report, {})
    if report.problems:
        raise SchemaError(report.problems)
    return docs


def import_file(path: Path, ctx: ClassContext) -> list[Transcript]:
    data = path.read_bytes()
    if path.suffix.lower() == ".xlsx":
        return import_xlsx(data, ctx)
    if path.suffix.lower() == ".csv":
        return import_csv(data, path.stem, ctx)
    raise SchemaError([ValidationProblem("", "chỉ nhận tệp .xlsx hoặc .csv")])


# ---------------------------------------------------------------------------------------------------------- template


def template_xlsx(grade: int, class_name: str = "", school_year: str = "") -> bytes:
    """An empty class sheet for one grade (6–12), laid out as the importer reads exports: title rows, a three-row
    merged header (subject / semester / ĐĐGtx1…n, ĐĐGgk, ĐĐGck) with exactly the TX columns the subject's periods
    give (Circular 22 Art. 6), comment subjects with HK1/HK2/CN, conduct, sessions absent; code columns as text."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    if not 1 <= grade <= 12:
        raise ValueError("grade 1–12")
    class_name = class_name or f"{grade}A1"
    wb = Workbook()
    ws = wb.active
    ws.title = class_name
    ws["A1"] = "TÊN TRƯỜNG: ..................................."
    ws["A2"] = f"BẢNG TỔNG HỢP KẾT QUẢ ĐÁNH GIÁ — Lớp: {class_name}"
    circular = "Thông tư 27/2020/TT-BGDĐT" if grade <= 5 else "Thông tư 22/2021/TT-BGDĐT"
    ws["A3"] = f"Năm học {school_year or '20..-20..'} ({circular})"
    ws["A2"].font = Font(bold=True, size=13)
    top = 5
    identity = ["STT", "Mã học sinh", "Họ và tên", "Ngày sinh", "Giới tính", "Mã định danh", "Dân tộc", "Nơi sinh"]
    col = 1

    def put(row: int, c: int, value: str, span: int = 1, down: int = 0) -> None:
        ws.cell(row=row, column=c, value=value).alignment = Alignment(horizontal="center", wrap_text=True)
        ws.cell(row=row, column=c).font = Font(bold=True)
        if span > 1 or down:
            ws.merge_cells(start_row=row, start_column=c, end_row=row + down, end_column=c + span - 1)

    for name in identity:
        put(top, col, name, down=2)
        if name in ("Mã học sinh", "Mã định danh"):
            ws.column_dimensions[column_letter(col - 1)].width = 16
            for r in range(top + 3, top + 3 + 60):
                ws.cell(row=r, column=col).number_format = "@"
        col += 1
    if grade <= 5:
        col = _primary_template(ws, put, col, top, grade)
    for s in programme(grade) if grade > 5 else ():
        if not s.required and s.group != "elective":
            continue
        if s.assessment == "scored":
            per = s.tx + 2
            put(top, col, s.name, span=2 * per + 1)
            for i, sem in enumerate(("HK1", "HK2")):
                put(top + 1, col + i * per, sem, span=per)
                for j in range(s.tx):
                    put(top + 2, col + i * per + j, f"ĐĐGtx{j + 1}")
                put(top + 2, col + i * per + s.tx, "ĐĐGgk")
                put(top + 2, col + i * per + s.tx + 1, "ĐĐGck")
            put(top + 1, col + 2 * per, "CN", down=1)
            ws.cell(row=top + 1, column=col + 2 * per, value="CN")
            ws.cell(row=top + 2, column=col + 2 * per, value=None)
            # the CN cell holds the year average: it is checked against the computed one when filled
            col += 2 * per + 1
        else:
            put(top, col, s.name, span=3)
            for i, sem in enumerate(("HK1", "HK2", "CN")):
                put(top + 1, col + i, sem, down=1)
            col += 3
    if grade > 5:
        put(top, col, "Rèn luyện", span=3)
        for i, sem in enumerate(("HK1", "HK2", "CN")):
            put(top + 1, col + i, sem, down=1)
        col += 3
    for name in ("Số buổi nghỉ", "Khen thưởng", "Nhận xét"):
        put(top, col, name, down=2)
        col += 1
    ws.freeze_panes = ws.cell(row=top + 3, column=4)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _primary_template(ws: Any, put: Any, col: int, top: int, grade: int) -> int:
    """The primary columns (Circular 27/2020): per subject the level (and periodic test score where Art. 7 has one)
    at the end of semester I and of the year, the grade 4–5 mid-semester tests, then the qualities and
    competences (T/Đ/C) and the year's result."""
    from schemas.primary import mid_semester_tested
    from schemas.programme import primary_traits

    for s in programme(grade):
        if not s.required:
            continue
        parts = ("Mức", "Điểm") if s.periodic_test else ("Mức",)
        whens: list[tuple[str, tuple[str, ...]]] = [("Cuối HK I", parts), ("Cuối năm", parts)]
        if mid_semester_tested(grade, s.name):
            whens = [("Giữa HK I", ("Điểm",)), ("Cuối HK I", parts), ("Giữa HK II", ("Điểm",)), ("Cuối năm", parts)]
        span = sum(len(p) for _, p in whens)
        put(top, col, s.name, span=span)
        for when, cells in whens:
            put(top + 1, col, when, span=len(cells))
            for i, part in enumerate(cells):
                put(top + 2, col + i, part)
            col += len(cells)
    qualities, competences = primary_traits()
    for name in (*qualities, *competences):
        put(top, col, name, down=2)
        col += 1
    put(top, col, "Kết quả giáo dục", down=2)
    return col + 1
