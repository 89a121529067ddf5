"""Crafting attack files from an issued PDF by appending raw incremental updates (as an attacker with a text
editor would), and reading what two independent engines show: poppler (pdftotext, pdfinfo, pdfdetach) and MuPDF
(``mutool draw -F txt``)."""

from __future__ import annotations

import re
import subprocess
import tempfile
from io import BytesIO
from pathlib import Path

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader

FORGED = "NGUYEN VAN GIA - XEP LOAI GIOI"
"""The text every forged page shows (base-14 Helvetica, so every engine can draw and extract it)."""


def _serialise(value: generic.PdfObject) -> bytes:
    out = BytesIO()
    value.write_to_stream(out)
    return out.getvalue()


class Doc:
    """An issued PDF, read once, and what is needed to append updates to it."""

    def __init__(self, pdf: bytes) -> None:
        self.pdf = pdf
        self.reader = PdfFileReader(BytesIO(pdf), strict=False)
        self.size = int(self.reader.trailer["/Size"])
        self.startxref = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
        self.root = self.reader.trailer.raw_get("/Root").idnum
        self.info = self.reader.trailer.raw_get("/Info").idnum if "/Info" in self.reader.trailer else None
        kids = self.reader.root["/Pages"]["/Kids"]
        pages = [kids.raw_get(i).idnum for i in range(len(kids))]
        # the page carrying the signature widgets (written out plainly by the signer's updates), else the first
        self.page = next((n for n in pages if re.search(rb"(?m)^%d 0 obj" % n, pdf)), pages[0])

    def raw(self, num: int) -> bytes:
        """Object ``num``'s current value, serialised (streams: the dictionary only)."""
        obj = self.reader.get_object(generic.Reference(num, 0))
        if isinstance(obj, generic.StreamObject):
            obj = generic.DictionaryObject({k: v for k, v in obj.items()})
        return _serialise(obj)

    def stream_data(self, num: int) -> bytes:
        return self.reader.get_object(generic.Reference(num, 0)).data  # type: ignore[no-any-return]

    def new_nums(self, count: int) -> list[int]:
        return list(range(self.size, self.size + count))


def stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def forged_page_objects(doc: Doc, first: int) -> tuple[dict[int, bytes], int, int]:
    """A page showing FORGED (content, font, page, page tree), numbered from ``first``: (objects, page, pages)."""
    content, font, page, pages = first, first + 1, first + 2, first + 3
    text = b"BT /F1 28 Tf 60 400 Td (%s) Tj ET" % FORGED.encode()
    objects = {
        content: stream(text),
        font: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        page: b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 842 595] /Contents %d 0 R "
        b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (pages, content, font),
        pages: b"<< /Type /Pages /Kids [%d 0 R] /Count 1 >>" % page,
    }
    return objects, page, pages


def append_update(
    pdf: bytes,
    objects: dict[int, bytes],
    *,
    trailer: bytes | None = None,
    xref: list[tuple[int, int | None]] | None = None,
) -> bytes:
    """``pdf`` with one more revision: ``objects`` (number → body), a classic xref table (``xref``: the entries to
    list, in order, as (number, offset), an offset of None meaning "where that object was written"), and a trailer
    (default: /Size, /Root, /Info, /ID and /Prev carried over)."""
    doc = Doc(pdf)
    out = bytearray(pdf if pdf.endswith(b"\n") else pdf + b"\n")
    written: dict[int, int] = {}
    for num, body in objects.items():
        written[num] = len(out)
        out += b"%d 0 obj\n" % num + body + b"\nendobj\n"
    rows = xref if xref is not None else [(num, None) for num in sorted(written)]
    xref_at = len(out)
    out += b"xref\n"
    for num, offset in rows:
        at = written[num] if offset is None else offset
        out += b"%d 1\n%010d 00000 n \n" % (num, at)
    size = max([doc.size, *(n + 1 for n in objects)])
    if trailer is None:
        trailer = b"/Root %d 0 R" % doc.root + (b" /Info %d 0 R" % doc.info if doc.info is not None else b"")
        if "/ID" in doc.reader.trailer:
            trailer += b" /ID " + _serialise(doc.reader.trailer["/ID"])
    out += b"trailer\n<< /Size %d %s /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (size, trailer, doc.startxref, xref_at)
    return bytes(out)


def _run(args: list[str], pdf: bytes, timeout: int = 60) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.pdf"
        path.write_bytes(pdf)
        done = subprocess.run([*args, str(path)], capture_output=True, text=True, timeout=timeout, cwd=tmp)
        return done.stdout


def poppler_text(pdf: bytes) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.pdf"
        path.write_bytes(pdf)
        subprocess.run(["pdftotext", "-q", str(path), str(Path(tmp) / "f.txt")], timeout=60, check=False)
        out = Path(tmp) / "f.txt"
        return out.read_text(encoding="utf-8", errors="replace") if out.exists() else ""


def mupdf_text(pdf: bytes) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.pdf"
        path.write_bytes(pdf)
        done = subprocess.run(
            ["mutool", "draw", "-q", "-F", "txt", "-o", "-", str(path)], capture_output=True, timeout=60, check=False
        )
        return done.stdout.decode("utf-8", "replace")


def poppler_info(pdf: bytes) -> str:
    """pdfinfo's document information (/Info: Title, Author, …) followed by the XMP metadata it prints."""
    return _run(["pdfinfo"], pdf) + _run(["pdfinfo", "-meta"], pdf)


def poppler_attachment(pdf: bytes) -> bytes:
    """The first attached file as poppler's pdfdetach saves it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.pdf"
        path.write_bytes(pdf)
        subprocess.run(["pdfdetach", "-save", "1", "-o", str(Path(tmp) / "a.bin"), str(path)], timeout=60, check=False)
        out = Path(tmp) / "a.bin"
        return out.read_bytes() if out.exists() else b""
