"""Bulk checks for admissions offices: a ZIP of PDFs/XMLs in, one verdict per file and a signed receipt out.

The ZIP is read defensively: a cap on the number of entries, on each entry's and the total *actual* size (a
ZIP's declared sizes can lie), no encrypted entries, names used only as labels (nothing is written to disk).

The receipt is an XML document (``urn:sealtrail:receipt:1``) listing what was checked, when, each file's
SHA-256 and verdict, put in the same signed envelope as transcripts and signed by the service's seal (XAdES
B-T), so an admissions office can keep it as evidence and anyone can check it with ``sealtrail verify``.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from errors import PermanentError
from schemas.csvcells import safe_text, safe_writer
from verifier.pdf import Reason, Verdict

RECEIPT_NS = "urn:sealtrail:receipt:1"
RECEIPT_XSD = Path(__file__).parent / "receipt.xsd"
MAX_ENTRIES = 500
MAX_ENTRY_BYTES = 50 * 1024 * 1024
MAX_TOTAL_BYTES = 500 * 1024 * 1024
MAX_RATIO = 50


class BulkError(PermanentError, ValueError):
    """The upload as a whole cannot be checked; the message is for the person who uploaded it."""


@dataclass
class BulkItem:
    name: str
    sha256: str
    format: str
    verdict: Verdict
    reasons: list[Reason] = field(default_factory=list)
    signers: list[str] = field(default_factory=list)


# A file's content → its format ("pdf" or "xml") and the verifier's report (PdfReport or XmlReport).
Check = Callable[[bytes], tuple[str, Any]]


def _read_limited(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    # An entry may inflate to at most MAX_RATIO times its compressed size (plus 1 MB): signed PDFs barely compress
    # and XML about 10:1, while a bomb compresses 1000:1.
    limit = min(MAX_ENTRY_BYTES, budget, MAX_RATIO * info.compress_size + 1024 * 1024)
    with archive.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise BulkError(
            f"'{info.filename}' giải nén ra quá lớn / unpacks to more than {limit / (1024 * 1024):.1f} MB "
            "(a ZIP bomb or a file too large to check)"
        )
    return data


def open_zip(data: bytes) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo], int]:
    """The archive and its file entries, checked as a whole before any entry is read (BulkError if unusable)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise BulkError("Tệp tải lên không phải là tệp ZIP đọc được / the upload is not a readable ZIP file") from exc
    entries = [i for i in archive.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
    if not entries:
        raise BulkError("Tệp ZIP không có tệp nào / the ZIP holds no files")
    if len(entries) > MAX_ENTRIES:
        raise BulkError(f"Tệp ZIP có quá nhiều tệp / the ZIP holds more than {MAX_ENTRIES} files; split it")
    for info in entries:
        if info.flag_bits & 0x1:
            raise BulkError(f"'{info.filename}' được mã hoá / is encrypted; upload it without a password")
    budget = min(MAX_TOTAL_BYTES, MAX_RATIO * len(data) + 1024 * 1024)  # overlapping entries share their bytes
    return archive, entries, budget


def iter_zip(
    archive: zipfile.ZipFile, entries: list[zipfile.ZipInfo], check: Check, budget: int = MAX_TOTAL_BYTES
) -> Iterator[BulkItem]:
    """Check the entries one by one (a generator, so a caller can report progress); BulkError on a bad entry.
    ``budget`` bounds the bytes all entries may inflate to together (see open_zip)."""
    for info in entries:
        try:
            content = _read_limited(archive, info, budget)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, zlib.error, ValueError) as exc:
            raise BulkError(f"'{info.filename}' bị hỏng trong tệp ZIP / is damaged inside the ZIP: {exc}") from exc
        budget -= len(content)
        fmt, report = check(content)
        signers = [s.signer for s in report.signatures]
        digest = hashlib.sha256(content).hexdigest()
        yield BulkItem(info.filename, digest, fmt, report.verdict, list(report.reasons), signers)


def check_zip(data: bytes, check: Check) -> list[BulkItem]:
    archive, entries, budget = open_zip(data)
    return list(iter_zip(archive, entries, check, budget))


def item_json(item: BulkItem) -> dict[str, Any]:
    return {
        "file": item.name,
        "sha256": item.sha256,
        "format": item.format,
        "verdict": item.verdict,
        "signers": item.signers,
        "reasons": [{"code": r.code, "vi": r.vi, "en": r.en} for r in item.reasons],
    }


def safe_cell(text: str) -> str:
    """A file name from the upload, made safe for a spreadsheet: a leading =, +, -, @, tab or CR would make Excel or
    LibreOffice run it as a formula (CSV injection), so it is prefixed with an apostrophe; and it is cut to 255."""
    return str(safe_text(text[:255]))


def to_csv(items: list[BulkItem]) -> str:
    out = io.StringIO()
    writer = safe_writer(out)
    writer.writerow(["file", "sha256", "format", "verdict", "signers", "reasons_vi", "reasons_en"])
    for item in items:
        writer.writerow(
            [
                safe_cell(item.name),
                item.sha256,
                item.format,
                item.verdict,
                "; ".join(item.signers),
                "; ".join(r.vi for r in item.reasons),
                "; ".join(r.en for r in item.reasons),
            ]
        )
    return out.getvalue()


def receipt_xml(items: list[BulkItem], *, service: str, checked_at: datetime | None = None) -> bytes:
    """The unsigned receipt (canonical bytes, like every document SealTrail signs)."""
    when = (checked_at or datetime.now(UTC)).replace(microsecond=0)
    root = etree.Element(f"{{{RECEIPT_NS}}}bien_nhan", nsmap={None: RECEIPT_NS})
    etree.SubElement(root, f"{{{RECEIPT_NS}}}service").text = service
    etree.SubElement(root, f"{{{RECEIPT_NS}}}checked_at").text = when.isoformat()
    etree.SubElement(root, f"{{{RECEIPT_NS}}}count").text = str(len(items))
    files = etree.SubElement(root, f"{{{RECEIPT_NS}}}files")
    for item in items:
        el = etree.SubElement(files, f"{{{RECEIPT_NS}}}file")
        etree.SubElement(el, f"{{{RECEIPT_NS}}}name").text = item.name
        etree.SubElement(el, f"{{{RECEIPT_NS}}}sha256").text = item.sha256
        etree.SubElement(el, f"{{{RECEIPT_NS}}}format").text = item.format
        etree.SubElement(el, f"{{{RECEIPT_NS}}}verdict").text = item.verdict
        for reason in item.reasons:
            etree.SubElement(el, f"{{{RECEIPT_NS}}}reason", code=reason.code).text = f"{reason.vi} / {reason.en}"
    body: bytes = etree.tostring(root, method="c14n", exclusive=True)
    return b"<?xml version='1.0' encoding='UTF-8'?>\n" + body


def validate_receipt(data: bytes) -> None:
    """Raise ValueError when the receipt does not match its XSD."""
    from schemas.xml import parse_xml_securely

    schema = etree.XMLSchema(etree.fromstring(RECEIPT_XSD.read_bytes()))
    root = parse_xml_securely(data)
    if not schema.validate(root):
        raise ValueError("; ".join(f"line {e.line}: {e.message}" for e in schema.error_log))
