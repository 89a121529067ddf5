"""Builders of hostile files from real signed documents, shared by the fuzz, SSRF and API tests."""

from __future__ import annotations

import io
import zipfile
import zlib
from io import BytesIO

from hypothesis import strategies as st
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter


def flate_bomb(size: int) -> bytes:
    """``size`` zero bytes, deflated (about 1000:1)."""
    comp = zlib.compressobj(1)
    chunk = bytes(1024 * 1024)
    out = [comp.compress(chunk) for _ in range(size // len(chunk))]
    return b"".join(out) + comp.flush()


def pdf_with_attachment(pdf: bytes, name: str, stream: generic.StreamObject) -> bytes:
    """The signed PDF with an incremental update that lists one more associated file (/AF) in the catalogue."""
    w = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    ref = w.add_object(stream)
    spec = w.add_object(
        generic.DictionaryObject(
            {
                generic.NameObject("/Type"): generic.NameObject("/Filespec"),
                generic.NameObject("/F"): generic.TextStringObject(name),
                generic.NameObject("/UF"): generic.TextStringObject(name),
                generic.NameObject("/EF"): generic.DictionaryObject({generic.NameObject("/F"): ref}),
                generic.NameObject("/AFRelationship"): generic.NameObject("/Data"),
            }
        )
    )
    root = w.root
    af = generic.ArrayObject(list(root.get("/AF", generic.ArrayObject())))
    af.append(spec)
    root[generic.NameObject("/AF")] = af
    w.update_root()
    out = BytesIO()
    w.write(out)
    return out.getvalue()


def attachment_bomb(pdf: bytes, size: int = 768 * 1024**2) -> bytes:
    """An attached "XML" that inflates to ``size`` bytes (a decompression bomb hidden in a valid-looking PDF)."""
    stream = generic.StreamObject(
        {generic.NameObject("/Type"): generic.NameObject("/EmbeddedFile"),
         generic.NameObject("/Filter"): generic.NameObject("/FlateDecode")},
        encoded_data=flate_bomb(size),
    )  # fmt: skip
    return pdf_with_attachment(pdf, "bomb.xml", stream)


def deep_pdf(depth: int) -> bytes:
    """A small PDF whose one object is ``depth`` nested arrays (recursion in a naive parser)."""
    body = b"[" * depth + b"]" * depth
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R /Deep 3 0 R >>",
        b"<< /Type /Pages /Kids [] /Count 0 >>",
        body,
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def make_zip(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()


def overlapping_zip_bomb(entries: int, size: int) -> bytes:
    """Fifield's overlapping-files bomb, simplified: many central-directory entries that all point at one deflated
    local file of ``size`` bytes, so the upload is small but every entry inflates to ``size``."""
    one = make_zip([("a.pdf", bytes(size))])
    z = zipfile.ZipFile(io.BytesIO(one))
    info = z.infolist()[0]
    assert len(z.infolist()) == 1
    local = one[: z.start_dir]
    central = one[z.start_dir : one.rfind(b"PK\x05\x06")]
    out = bytearray(local)
    cd_start = len(out)
    for _ in range(entries):
        out += central  # the same entry again (the same name, so the local header matches)
    cd_size = len(out) - cd_start
    out += (
        b"PK\x05\x06"
        + b"\x00\x00\x00\x00"
        + entries.to_bytes(2, "little") * 2
        + cd_size.to_bytes(4, "little")
        + cd_start.to_bytes(4, "little")
        + b"\x00\x00"
    )
    assert info.file_size == size
    return bytes(out)


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """1–4 edits of a real file: flip, overwrite, insert, delete, duplicate a range, or truncate."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        op = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "duplicate", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=32))
            data[at : at + len(chunk)] = chunk
        elif op == "insert":
            data[at:at] = draw(st.sampled_from([b"[", b"<<", b"(", b"<", b"obj", b"%%EOF", b"\x00" * 64, b"9" * 40]))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 4096))]
        elif op == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 4096))]
        else:
            del data[at:]
    return bytes(data)
