"""Crafted PDFs that make a parser loop or allocate, built from a genuine signed PDF by appending raw bytes (each
keeps the signed revisions intact, so the file reaches the signature checks)."""

from __future__ import annotations

import re


def _tail(pdf: bytes) -> tuple[int, int, bytes, bytearray]:
    """The last xref offset, the next free object number, the trailer's /Root (and /Info) and a copy to extend."""
    start = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
    size = max(int(m) for m in re.findall(rb"/Size (\d+)", pdf))
    root = re.findall(rb"/Root (\d+ \d+ R)", pdf)[-1]
    info = re.findall(rb"/Info (\d+ \d+ R)", pdf)
    if info:
        root += b" /Info " + info[-1]
    out = bytearray(pdf if pdf.endswith(b"\n") else pdf + b"\n")
    return start, size, root, out


def many_revisions(pdf: bytes, count: int) -> bytes:
    """``count`` incremental updates, each adding one small object: pyHanko's difference analysis after the
    signatures grows with the square of the number of revisions (1,000 of them: about 40 s of CPU)."""
    prev, num, root, out = _tail(pdf)
    for i in range(count):
        offset = len(out)
        out += b"%d 0 obj\n<< /N %d >>\nendobj\n" % (num, i)
        xref = len(out)
        out += b"xref\n0 1\n0000000000 65535 f \n%d 1\n%010d 00000 n \n" % (num, offset)
        out += b"trailer\n<< /Size %d /Root %s /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (num + 1, root, prev, xref)
        prev, num = xref, num + 1
    return bytes(out)


def big_xref(pdf: bytes, entries: int) -> bytes:
    """One update whose cross-reference table lists ``entries`` objects (about 20 bytes each in the file, a few
    hundred bytes each in the parser's memory)."""
    prev, _num, root, out = _tail(pdf)
    xref = len(out)
    out += b"xref\n0 %d\n" % entries + b"0000000000 65535 f \n" * entries
    out += b"trailer\n<< /Size %d /Root %s /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (entries, root, prev, xref)
    return bytes(out)


def deep_nesting(pdf: bytes, depth: int) -> bytes:
    """One update with an object nested ``depth`` arrays deep, referenced from the trailer."""
    prev, num, root, out = _tail(pdf)
    offset = len(out)
    out += b"%d 0 obj\n" % num + b"[" * depth + b"]" * depth + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 1\n0000000000 65535 f \n%d 1\n%010d 00000 n \n" % (num, offset)
    out += b"trailer\n<< /Size %d /Root %s /Prev %d /X %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        num + 1, root, prev, num, xref,
    )  # fmt: skip
    return bytes(out)


def many_signatures(xml: bytes, copies: int) -> bytes:
    """A signed XML whose first signature slot is repeated ``copies`` times: each copy is verified against the whole
    (growing) document, so the work grows with the square of the copies (230 of them, 4.7 MB: 10–20 s of CPU)."""
    start = xml.index(b"<ChuKy ")
    end = xml.index(b"</ChuKy>", start) + len(b"</ChuKy>")
    return xml[:end] + xml[start:end] * copies + xml[end:]
