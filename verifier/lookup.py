"""Bulk look-ups for admissions offices: a CSV of (document number, holder name, date of birth) in, one answer per
row out (valid / revoked / superseded / no match), without personal data in clear. "No match" is the one answer
for an unknown number and for a known number with other details, so the look-up is no oracle of which numbers
exist; one upload may not ask about one number more than three times (no sweeping a year of birth dates).

The register keeps two keyed hashes per document (HMAC-SHA256 with the installation's secret): one of the
normalised document number (số hiệu of a diploma, mã định danh học bạ of a transcript), indexed, to find the
row; one of the normalised (name, date of birth), to compare. Without the secret the columns say nothing, and
guessing a number or a name offline is impossible. Names are compared after NFC, casefold and whitespace
collapsing, so "NGUYỄN  văn An" matches "Nguyễn Văn An"; numbers after NFKC, casefold and removing spaces.

The CSV is read strictly: UTF-8 (with or without BOM) or UTF-16 with a BOM, comma, semicolon or tab separated, a
header naming the three columns (Vietnamese or English). Every problem is reported with its line; when there is
any, nothing is looked up.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from errors import PermanentError
from registry.lookup import holder_hash, normalise_name, normalise_number, number_hash
from registry.records import DocumentRecord, DocumentStatus
from schemas.csvcells import safe_writer
from verifier.bulk import safe_cell
from verifier.gate import AttemptGate
from verifier.pdf import Reason, Verdict
from verifier.status import document_standing

MAX_ROWS = 5000
MAX_CSV_BYTES = 5 * 1024 * 1024

# Accepted header names (compared after normalise_name) for each column.
COLUMNS = {
    "number": ("so_hieu", "số hiệu", "so hieu", "số hiệu văn bằng", "diploma_number", "document_number", "number"),
    "name": ("ho_ten", "họ và tên", "họ tên", "ho va ten", "ho ten", "holder_name", "full_name", "name"),
    "birth_date": ("ngay_sinh", "ngày sinh", "ngay sinh", "birth_date", "date_of_birth", "dob"),
}
DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y")


class LookupCsvError(PermanentError, ValueError):
    """The CSV cannot be looked up; ``problems`` are (line, message) pairs, Vietnamese then English."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"dòng {line} / line {line}: {msg}" if line else msg for line, msg in problems))


@dataclass(frozen=True)
class LookupRow:
    line: int
    number: str
    name: str
    birth_date: date


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise LookupCsvError([(0, f"Tệp UTF-16 bị hỏng / the UTF-16 file is damaged: {exc.reason}")]) from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LookupCsvError(
            [
                (
                    line,
                    "tệp không phải UTF-8; hãy lưu lại dạng 'CSV UTF-8' / the file is not UTF-8 "
                    "(e.g. Windows-1258); save it again as 'CSV UTF-8'",
                )
            ]
        ) from exc


def _parse_date(text: str) -> date | None:
    text = text.strip()
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def parse_lookup_csv(data: bytes) -> list[LookupRow]:
    """The rows of a look-up CSV; raise LookupCsvError naming every bad line (nothing is half-read)."""
    if len(data) > MAX_CSV_BYTES:
        raise LookupCsvError([(0, f"Tệp quá lớn / the file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB")])
    text = _decode(data)
    if "\0" in text:
        raise LookupCsvError([(0, "Tệp không phải CSV (có byte NUL) / the file is not a CSV (it holds NUL bytes)")])
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise LookupCsvError([(1, f"dòng tiêu đề hỏng / the header line is malformed: {exc}")]) from exc
    if not header:
        raise LookupCsvError([(0, "Tệp trống / the file is empty")])
    names = [normalise_name(h.replace("_", " ")) for h in header]
    index: dict[str, int] = {}
    for column, accepted in COLUMNS.items():
        wanted = {normalise_name(a.replace("_", " ")) for a in accepted}
        found = [i for i, n in enumerate(names) if n in wanted]
        if len(found) == 1:
            index[column] = found[0]
    if len(index) != len(COLUMNS):
        raise LookupCsvError(
            [
                (
                    1,
                    "dòng tiêu đề phải có đúng ba cột so_hieu, ho_ten, ngay_sinh / the header must name the "
                    f"columns so_hieu (diploma number), ho_ten (holder name), ngay_sinh (date of birth); found: "
                    f"{', '.join(h.strip() for h in header)[:200]}",
                )
            ]
        )
    rows: list[LookupRow] = []
    problems: list[tuple[int, str]] = []
    try:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                problems.append((line, f"có {len(values)} cột, tiêu đề có {len(header)} / {len(values)} fields, "
                                 f"the header has {len(header)}"))  # fmt: skip
                continue
            number, name = values[index["number"]].strip(), values[index["name"]].strip()
            born = _parse_date(values[index["birth_date"]])
            if not number:
                problems.append((line, "thiếu số hiệu / the diploma number is missing"))
            if not name:
                problems.append((line, "thiếu họ tên / the holder name is missing"))
            if born is None:
                problems.append(
                    (
                        line,
                        f"ngày sinh '{values[index['birth_date']].strip()[:40]}' không đúng dạng ngày/tháng/năm / "
                        "the date of birth is not a date (dd/mm/yyyy or yyyy-mm-dd)",
                    )
                )
            if number and name and born is not None:
                rows.append(LookupRow(line, number, name, born))
            if len(rows) + len(problems) > MAX_ROWS:
                raise LookupCsvError([(line, f"quá {MAX_ROWS} dòng; hãy chia nhỏ / more than {MAX_ROWS} rows")])
    except csv.Error as exc:
        problems.append((reader.line_num, f"dòng CSV hỏng / malformed CSV line: {exc}"))
    if problems:
        raise LookupCsvError(problems[:100])
    if not rows:
        raise LookupCsvError([(0, "Tệp không có dòng dữ liệu nào / the file has no data rows")])
    refuse_sweeps(rows)
    return rows


# Each row's result is one of: valid, revoked, superseded, no_match, indeterminate (log not provable), or
# rate_limited (too many rows for this number did not match lately). A number that is not in the register and a
# number whose holder differs get the same answer, so the look-up does not tell which numbers exist.
R_NO_MATCH = Reason(
    "NO_MATCH",
    "Không khớp: không có văn bằng nào mang đúng số hiệu, họ tên và ngày sinh này",
    "No match: no document carries this number with this name and date of birth",
)
R_RATE_LIMITED = Reason(
    "RATE_LIMITED",
    "Số hiệu này đã bị tra cứu sai quá nhiều lần; dòng này chưa được tra, hãy thử lại sau",
    "Too many look-ups of this number did not match lately; this row was not looked up, try again later",
)
MAX_ROWS_PER_NUMBER = 3
"""More rows than this for one document number in one upload is a sweep (e.g. every birth date of a year)."""


def refuse_sweeps(rows: list[LookupRow]) -> None:
    """LookupCsvError when one number appears in more than MAX_ROWS_PER_NUMBER rows (a birth-date or name sweep)."""
    lines: dict[str, list[int]] = {}
    for row in rows:
        lines.setdefault(normalise_number(row.number), []).append(row.line)
    problems = [
        (
            found[MAX_ROWS_PER_NUMBER],
            f"số hiệu '{number[:40]}' xuất hiện ở {len(found)} dòng (tối đa "
            f"{MAX_ROWS_PER_NUMBER}); tra cứu hàng loạt ngày sinh hoặc họ tên cho một số hiệu không được phép / the "
            f"number appears in {len(found)} rows (at most {MAX_ROWS_PER_NUMBER}): sweeping birth dates or names "
            "for one number is refused",
        )
        for number, found in lines.items()
        if len(found) > MAX_ROWS_PER_NUMBER
    ]
    if problems:
        raise LookupCsvError(problems[:100])


@dataclass
class LookupResult:
    line: int
    number: str
    result: str
    verdict: Verdict
    reasons: list[Reason] = field(default_factory=list)
    document_id: str | None = None
    kind: str | None = None
    superseded_by: str | None = None

    @property
    def row_digest(self) -> str:
        """What the receipt records for the row: a hash of the number, not the personal data in clear."""
        return hashlib.sha256(f"{self.line}\0{normalise_number(self.number)}".encode()).hexdigest()


_STATUS_ORDER = {DocumentStatus.ISSUED.value: 0, DocumentStatus.SUPERSEDED.value: 1, DocumentStatus.REVOKED.value: 2}


def lookup_rows(
    engine: Engine,
    key: bytes,
    rows: list[LookupRow],
    prove: Callable[[DocumentRecord], bool | None],
    gate: AttemptGate | None = None,
) -> Iterator[LookupResult]:
    """One result per row, in order (a generator, so callers can report progress). With a ``gate``, rows that do
    not match count against their number (scope ``lookup``), and a number with too many lately is not looked up."""
    table = DocumentRecord.__table__.c  # type: ignore[attr-defined]
    for row in rows:
        wanted = number_hash(key, row.number)
        with Session(engine) as session:
            records = list(session.exec(select(DocumentRecord).where(table.lookup_number == wanted)).all())
            for r in records:
                session.expunge(r)
        holder = holder_hash(key, row.name, row.birth_date)
        matching = [
            r
            for r in records
            if r.status in _STATUS_ORDER
            and r.lookup_holder is not None
            and hmac.compare_digest(r.lookup_holder, holder)
        ]
        if gate is not None:
            outcome = gate.attempt("lookup", wanted, lambda found=bool(matching): found)
            if outcome.locked:
                yield LookupResult(row.line, row.number, "rate_limited", "indeterminate", [R_RATE_LIMITED])
                continue
        if not matching:
            yield LookupResult(row.line, row.number, "no_match", "invalid", [R_NO_MATCH])
            continue
        record = min(matching, key=lambda r: _STATUS_ORDER[r.status])
        standing = document_standing(record, prove(record))
        result = {
            DocumentStatus.REVOKED.value: "revoked",
            DocumentStatus.SUPERSEDED.value: "superseded",
        }.get(record.status, "valid" if standing.verdict == "valid" else "indeterminate")
        yield LookupResult(
            row.line,
            row.number,
            result,
            standing.verdict,
            list(standing.reasons),
            record.id,
            record.kind,
            record.superseded_by,
        )


def results_csv(results: list[LookupResult]) -> str:
    out = io.StringIO()
    writer = safe_writer(out)
    writer.writerow(
        ["line", "so_hieu", "result", "verdict", "document_id", "superseded_by", "reasons_vi", "reasons_en"]
    )
    for r in results:
        writer.writerow(
            [
                r.line,
                safe_cell(r.number),
                r.result,
                r.verdict,
                r.document_id or "",
                r.superseded_by or "",
                "; ".join(x.vi for x in r.reasons),
                "; ".join(x.en for x in r.reasons),
            ]
        )
    return out.getvalue()


def result_json(r: LookupResult) -> dict[str, Any]:
    return {
        "line": r.line,
        "so_hieu": r.number,
        "result": r.result,
        "verdict": r.verdict,
        "document_id": r.document_id,
        "kind": r.kind,
        "superseded_by": r.superseded_by,
        "reasons": [{"code": x.code, "vi": x.vi, "en": x.en} for x in r.reasons],
    }
