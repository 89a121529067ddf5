"""The strict reader (verifier/pdfstructure.py) on small hand-written files: one clean file passes, and each way of
making its structure ambiguous is refused with the reason that names it. No installation needed: fast."""

from __future__ import annotations

import pytest
import weasyprint

from verifier import pdfstructure
from verifier.pdf import structure_problem
from verifier.pdfstructure import AmbiguousStructure, Name, Ref, TooComplex, read_structure


def build(objects: dict[int, bytes], *, trailer: bytes = b"/Root 1 0 R", header: bytes = b"%PDF-1.7\n") -> bytes:
    """A one-revision PDF with a classic xref table listing ``objects`` where they are written."""
    out = bytearray(header)
    offsets = {}
    for num, body in objects.items():
        offsets[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, body)
    xref = len(out)
    size = max(objects) + 1
    out += b"xref\n0 1\n0000000000 65535 f \n"
    for num in sorted(objects):
        out += b"%d 1\n%010d 00000 n \n" % (num, offsets[num])
    out += b"trailer\n<< /Size %d %s >>\nstartxref\n%d\n%%%%EOF\n" % (size, trailer, xref)
    return bytes(out)


PAGE = {
    1: b"<< /Type /Catalog /Pages 2 0 R >>",
    2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
    4: b"<< /Length 12 >>\nstream\nBT (a) Tj ET\nendstream",
}


def update(pdf: bytes, objects: dict[int, bytes], *, prev: int | None = None, extra: bytes = b"") -> bytes:
    """``pdf`` with one more revision (classic xref table)."""
    last_xref = int(pdf.rsplit(b"startxref", 1)[1].split()[0])
    out = bytearray(pdf)
    offsets = {}
    for num, body in objects.items():
        offsets[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, body)
    xref = len(out)
    out += b"xref\n"
    for num in sorted(objects):
        out += b"%d 1\n%010d 00000 n \n" % (num, offsets[num])
    size = max([*objects, 4]) + 1
    out += b"trailer\n<< /Size %d /Root 1 0 R /Prev %d %s >>\nstartxref\n%d\n%%%%EOF\n" % (
        size,
        last_xref if prev is None else prev,
        extra,
        xref,
    )
    return bytes(out)


def refused(pdf: bytes) -> str:
    with pytest.raises(AmbiguousStructure) as caught:
        read_structure(pdf)
    return caught.value.en


def test_a_clean_file_and_a_clean_update_are_read() -> None:
    pdf = build(PAGE)
    s = read_structure(pdf)
    assert s.revisions[0].trailer[Name("/Root")] == Ref(1, 0) and s.get(3, 0)[Name("/Contents")] == Ref(4, 0)
    updated = update(pdf, {3: PAGE[3].replace(b"595", b"600")})
    s = read_structure(updated)
    assert len(s.revisions) == 2 and s.get(3, 1)[Name("/MediaBox")] == [0, 0, 600, 842]
    assert s.get(3, 0)[Name("/MediaBox")] == [0, 0, 595, 842]


def test_weasyprint_output_with_object_and_xref_streams_is_read() -> None:
    pdf = weasyprint.HTML(string="<p>Học bạ</p>").write_pdf(pdf_variant="pdf/a-3b")
    assert b"/ObjStm" in pdf and b"/XRef" in pdf
    s = read_structure(pdf)
    assert len(s.revisions) == 1 and len(s.revisions[0].objects) > 10


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        ({**PAGE, 1: b"<< /Type /Catalog /Pages 2 0 R /Pages 2 0 R >>"}, "the key /Pages appears twice"),
        ({**PAGE, 1: b"<< /Type /Catalog /Pages 2 0 R /P#61ges 2 0 R >>"}, "the key /Pages appears twice"),
        (
            {**PAGE, 1: b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles 2 0 R /EmbeddedFiles 3 0 R >> >>"},
            "the key /EmbeddedFiles appears twice",
        ),
        (
            {**PAGE, 3: PAGE[3].replace(b"[3 0 R]", b"[3 0 R]").replace(b"/Contents", b"/Kids [] /Kids [] /Contents")},
            "/Kids appears twice",
        ),
        ({**PAGE, 4: b"<< /Length 5 >>\nstream\nBT (a) Tj ET\nendstream"}, "the length of stream 4 does not match"),
        ({**PAGE, 4: b"<< /Length 5 0 R >>\nstream\nBT (a) Tj ET\nendstream"}, "not a valid direct number"),
        ({**PAGE, 3: b"<< /Type /Page /Parent 2 0 R /Title (unclosed >>"}, "a string is not closed"),
    ],
)
def test_ambiguous_objects_are_refused(objects: dict[int, bytes], expected: str) -> None:
    assert expected in refused(build(objects))


def test_duplicate_trailer_keys_are_refused() -> None:
    assert "the key /Root appears twice" in refused(build(PAGE, trailer=b"/Root 1 0 R /Root 3 0 R"))


def test_xref_problems_are_refused() -> None:
    pdf = build(PAGE)
    # an entry that points at another object
    xref = pdf.rindex(b"\nxref\n") + 1
    offset_of_2 = pdf.index(b"2 0 obj")
    wrong = pdf.replace(b"2 1\n%010d" % offset_of_2, b"2 1\n%010d" % pdf.index(b"3 0 obj"))
    assert wrong != pdf and "the xref entry of object 2 does not point at that object" in refused(wrong)
    # one object listed twice in one section
    twice = pdf[:xref] + pdf[xref:].replace(b"3 1\n", b"3 1\n%010d 00000 n \n3 1\n" % pdf.index(b"3 0 obj"))
    assert "lists object 3 twice" in refused(twice)
    # an object written in the revision but not listed
    body_end = xref
    extra = pdf[:body_end] + b"9 0 obj\n(hidden)\nendobj\n" + pdf[body_end:]
    shift = len(b"9 0 obj\n(hidden)\nendobj\n")
    extra = extra.replace(b"startxref\n%d" % xref, b"startxref\n%d" % (xref + shift))
    assert "object 9 is outside the cross-reference section" in refused(extra)
    # stray bytes between objects, trailing junk, a wrong startxref
    stray = pdf.replace(b"endobj\n2 0 obj", b"endobj\nJUNK\n2 0 obj")
    assert "stray data" in refused(stray)
    assert "stray data" in refused(pdf + b"garbage")
    assert "startxref does not point at the xref table" in refused(
        pdf.replace(b"startxref\n%d" % xref, b"startxref\n%d" % (xref - 1))
    )


def test_prev_chain_problems_are_refused() -> None:
    pdf = build(PAGE)
    assert read_structure(update(pdf, {3: PAGE[3]}))
    assert "/Prev does not point at the previous revision" in refused(update(pdf, {3: PAGE[3]}, prev=0))
    assert "/Prev does not point at the previous revision" in refused(update(pdf, {3: PAGE[3]}, prev=10**9))
    twice = update(update(pdf, {3: PAGE[3]}), {3: PAGE[3]})
    loop = twice.rsplit(b"/Prev ", 1)
    second_xref = int(twice.rsplit(b"startxref", 1)[1].split()[0])
    looped = loop[0] + b"/Prev " + b"%d" % second_xref + loop[1][len(loop[1].split()[0]) :]
    assert "/Prev does not point at the previous revision" in refused(looped)
    assert "hybrid-reference file" in refused(update(pdf, {3: PAGE[3]}, extra=b"/XRefStm 0"))
    assert "encrypted" in refused(update(pdf, {3: PAGE[3]}, extra=b"/Encrypt 3 0 R"))


def test_object_defined_twice_in_one_revision_is_refused() -> None:
    pdf = update(build(PAGE), {3: PAGE[3]})
    at = pdf.rindex(b"3 0 obj")
    doubled = pdf[:at] + b"3 0 obj\n<< /Type /Page >>\nendobj\n" + pdf[at:]
    assert "object 3 is defined twice in one revision" in refused(doubled)


def test_late_defined_object_is_refused() -> None:
    """Revision 0 references object 7, which only revision 1 defines: the signed revision's meaning would change."""
    first = build({**PAGE, 3: PAGE[3].replace(b">>", b" /Annots [7 0 R] >>")})
    later = update(first, {7: b"<< /Type /Annot /Subtype /Text /Rect [0 0 10 10] >>"})
    assert "object 7 is referenced by an earlier revision but defined only in update 1" in refused(later)


def build_with_object_stream(members: list[tuple[int, bytes]], listed: dict[int, int]) -> bytes:
    """PAGE plus object stream 5 holding ``members`` (number, body), with an xref stream (object 6, no filter) whose
    type-2 entries are ``listed`` (number → index in object stream 5)."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = {}
    for num, body in PAGE.items():
        offsets[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, body)
    header, bodies = [], b""
    for num, body in members:
        header.append(b"%d %d" % (num, len(bodies)))
        bodies += body + b" "
    head = b" ".join(header) + b" "
    data = head + bodies
    offsets[5] = len(out)
    out += b"5 0 obj\n<< /Type /ObjStm /N %d /First %d /Length %d >>\nstream\n%s\nendstream\nendobj\n" % (
        len(members),
        len(head),
        len(data),
        data,
    )
    size = 7 + len(listed)
    rows = {0: (0, 0, 65535)}
    rows.update({num: (1, off, 0) for num, off in offsets.items()})
    rows.update({num: (2, 5, idx) for num, idx in listed.items()})
    offsets[6] = len(out)
    rows[6] = (1, offsets[6], 0)
    size = max(rows) + 1
    table = b"".join(
        bytes([rows[n][0]]) + rows[n][1].to_bytes(4, "big") + rows[n][2].to_bytes(2, "big") if n in rows else bytes(7)
        for n in range(size)
    )
    out += b"6 0 obj\n<< /Type /XRef /W [1 4 2] /Size %d /Root 1 0 R /Length %d >>\nstream\n%s\nendstream\nendobj\n" % (
        size,
        len(table),
        table,
    )
    out += b"startxref\n%d\n%%%%EOF\n" % offsets[6]
    return bytes(out)


def test_object_streams_must_match_the_xref() -> None:
    """An object stream holding an object twice, or holding one the xref does not place there, is refused."""
    good = build_with_object_stream([(7, b"<< /A 1 >>"), (8, b"<< /B 2 >>")], {7: 0, 8: 1})
    s = read_structure(good)
    assert s.get(8, 0) == {Name("/B"): 2}
    twice = build_with_object_stream([(7, b"<< /A 1 >>"), (7, b"<< /B 2 >>")], {7: 0})
    assert "holds an object twice" in refused(twice)
    unlisted = build_with_object_stream([(7, b"<< /A 1 >>"), (8, b"<< /B 2 >>")], {7: 0})
    assert "object stream 5 does not match the cross-reference section" in refused(unlisted)
    duplicate_key = build_with_object_stream([(7, b"<< /A 1 /A 2 >>")], {7: 0})
    assert "the key /A appears twice" in refused(duplicate_key)


def test_work_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the bounds the answer is "too complex to check here" (indeterminate), not "ambiguous" (invalid)."""
    deep = build({**PAGE, 5: b"[" * 40 + b"]" * 40})
    assert "nested too deeply" in refused(deep)
    many = build({**PAGE, 5: b"[" + b"1 " * 5000 + b"]"})
    assert read_structure(many)
    monkeypatch.setattr(pdfstructure, "MAX_VALUES", 4000)
    with pytest.raises(TooComplex):
        read_structure(many)
    problem = structure_problem(many)
    assert problem is not None and problem.code == "TOO_COMPLEX" and "too complex to check here" in problem.en
    monkeypatch.setattr(pdfstructure, "MAX_OBJECTS", 3)
    with pytest.raises(TooComplex):
        read_structure(build(PAGE))


def test_generation_mismatches_are_refused() -> None:
    """Viewers differ on a reference whose generation is not the object's: some follow it, some read null."""
    wrong_ref = build({**PAGE, 1: b"<< /Type /Catalog /Pages 2 1 R >>"})
    assert "the reference 2 1 R does not match object 2's generation" in refused(wrong_ref)
    pdf = build(PAGE)
    regenerated = update(pdf, {3: PAGE[3]}).replace(
        b"00000 n \ntrailer\n<< /Size 5 /Root 1 0 R /Prev", b"00001 n \ntrailer\n<< /Size 5 /Root 1 0 R /Prev"
    )
    regenerated = regenerated.replace(
        b"\n3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>\nendobj\nxref",
        b"\n3 1 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>\nendobj\nxref",
    )
    assert "object 3 changes its generation" in refused(regenerated)
