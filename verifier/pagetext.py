"""Does the attached XML say what the pages show? The key data of the canonical XML (holder name, birth date,
document numbers; for transcripts every subject's results and the year's results) is looked for in the page text,
extracted independently of our renderer by poppler's ``pdftotext`` (no shell, bounded time, pages and size).

Both sides are compared after NFC, casefolding, whitespace collapsing and decimal commas read as points, so a
province template that prints names in capitals or scores as "7.4" still matches; a birth date may be printed as
dd/mm/yyyy, d/m/yyyy or "ngày dd tháng mm năm yyyy".
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from errors import SealTrailError

PDFTOTEXT_TIMEOUT = 20  # seconds
MAX_PAGES = 60
MAX_TEXT_CHARS = 2_000_000


class PageTextUnavailable(SealTrailError):
    """The page text could not be extracted (pdftotext missing, too slow or failing); transient only when it was
    too slow (a busy machine)."""


def normalise(text: str) -> str:
    text = " ".join(unicodedata.normalize("NFC", text).casefold().split())
    return re.sub(r"(?<=\d),(?=\d)", ".", text)


def page_text(pdf: bytes) -> str:
    """The PDF's text in content order (``pdftotext -raw``), normalised; at most MAX_PAGES pages."""
    with tempfile.TemporaryDirectory(prefix="sealtrail-text-") as tmp:
        path = Path(tmp) / "in.pdf"
        path.write_bytes(pdf)
        try:
            result = subprocess.run(
                ["pdftotext", "-raw", "-enc", "UTF-8", "-l", str(MAX_PAGES), str(path), "-"],
                capture_output=True,
                timeout=PDFTOTEXT_TIMEOUT,
                check=False,
            )
        except FileNotFoundError as exc:
            raise PageTextUnavailable("pdftotext is not installed (Debian package poppler-utils)") from exc
        except subprocess.TimeoutExpired as exc:
            raise PageTextUnavailable(f"pdftotext took longer than {PDFTOTEXT_TIMEOUT} s", transient=True) from exc
    if result.returncode != 0:
        raise PageTextUnavailable(f"pdftotext failed: {result.stderr[:200].decode('utf-8', 'replace')}")
    return normalise(result.stdout[: MAX_TEXT_CHARS * 4].decode("utf-8", "replace")[:MAX_TEXT_CHARS])


@dataclass(frozen=True)
class Expected:
    """One piece of key data and the ways the page may print it (any one is enough)."""

    label: str
    forms: tuple[str, ...]


def _num(value: Decimal | None) -> str:
    return "" if value is None else str(value)


MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def _dates(d: date) -> tuple[str, ...]:
    return (
        d.strftime("%d/%m/%Y"),
        f"{d.day}/{d.month}/{d.year}",
        f"ngày {d.day:02d} tháng {d.month:02d} năm {d.year}",
        f"ngày {d.day} tháng {d.month} năm {d.year}",
        d.isoformat(),
        f"{d.day} {MONTHS[d.month - 1]} {d.year}",  # English translations
    )


def _subject_row(s: Any) -> str:
    if s.assessment == "scored":
        cells = [s.subject]
        for sem in (s.hk1, s.hk2):
            if sem is not None:
                cells += [*(_num(v) for v in sem.tx), _num(sem.gk), _num(sem.ck), _num(sem.average)]
        cells.append(_num(s.year_average))
    else:
        cells = [s.subject, s.hk1_level or "", s.hk2_level or "", s.year_level or ""]
    return " ".join(c for c in cells if c)


def expected_data(doc: Any) -> list[Expected]:
    """What the page must show of ``doc`` (a parsed transcript, diploma, copy or translation). Primary transcripts
    (Circular 27/2020) are checked on identity and numbers only; English translations on identity and the original's
    id and number."""
    holder = doc.holder
    out = [
        Expected("holder name / họ và tên", (holder.full_name,)),
        Expected("birth date / ngày sinh", _dates(holder.birth_date)),
    ]
    if doc.kind == "diploma":
        out.append(Expected("diploma number / số hiệu", (doc.diploma_number,)))
        out.append(Expected("register number / số vào sổ", (doc.register_number,)))
    elif doc.kind == "translation":  # in English: identity, the original's id and its number
        out.append(Expected("original document / văn bản gốc", (doc.original_doc_id,)))
        number = doc.original.diploma_number if doc.original_kind == "diploma" else doc.original.record_id
        out.append(Expected("original's number / số hiệu bản gốc", (number,)))
    elif doc.kind == "transcript":
        out.append(Expected("record id / số học bạ", (doc.record_id,)))
        out.append(Expected("student code / mã học sinh", (doc.student_code,)))
        for year in doc.years:
            for s in year.subjects:
                out.append(Expected(f"{year.school_year} {s.subject}", (_subject_row(s),)))
            for what, r in (("kết quả học tập", year.learning), ("kết quả rèn luyện", year.conduct)):
                line = f"{what}: hk i {r.hk1 or ''}; hk ii {r.hk2 or ''}; cả năm {r.year or ''}"
                out.append(Expected(f"{year.school_year} {what}", (line,)))
    return out


def missing_on_page(doc: Any, text: str) -> list[str]:
    """Labels of the key data in ``doc`` that the (normalised) page ``text`` does not show."""
    return [e.label for e in expected_data(doc) if not any(normalise(f) in text for f in e.forms if f)]
