"""A strict reading of a PDF's file structure, before any signature is looked at.

Viewers repair broken files in different ways: one keeps the first of two ``/Root`` keys, another the last; one
trusts the xref table, another scans for ``N 0 obj``. A signed document whose structure leaves room for two readings
can show one text in the viewer and have another checked by the verifier. So the file is read here byte by byte,
revision by revision, and refused (:class:`AmbiguousStructure`) unless there is exactly one way to read it:

* the file is a header and then a plain sequence of revisions, each a run of ``N G obj … endobj`` bodies, one xref
  section (a table with its trailer, or an xref stream), ``startxref`` pointing at that section and ``%%EOF``;
  nothing else (comments and whitespace aside) anywhere, nothing but whitespace after the last ``%%EOF``;
* no dictionary anywhere (trailers, objects, object streams) has a key twice, names compared after ``#xx`` decoding;
* every xref entry points at the object it names, in its own revision; every object of a revision is in its xref
  (objects in object streams too); no object is listed or defined twice in one revision; stream lengths are exact;
* each revision's ``/Prev`` is the previous revision's xref offset (no loops, nothing outside the file), no hybrid
  files (``/XRefStm``), no encryption;
* an object a revision introduces was never referenced by an earlier revision (otherwise the signed revision's
  meaning changes after signing).

The work is bounded: nesting depth, number of objects and inflated bytes are capped, and the whole read is linear in
the file's size. The result (:class:`PdfStructure`) lets :mod:`verifier.pdfpolicy` compare revisions object by object.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from errors import PermanentError

MAX_DEPTH = 32  # nesting of arrays and dictionaries
MAX_OBJECTS = 50_000
MAX_INFLATED = 32 * 1024 * 1024  # bytes inflated from xref and object streams, in total
MAX_REVISIONS = 200
MAX_VALUES = 500_000  # numbers, names, strings, … in all (an issued document has about 3,000)


class AmbiguousStructure(PermanentError, ValueError):
    """The file can be read in more than one way (or not strictly at all): ``vi`` and ``en`` say where."""

    def __init__(self, vi: str, en: str) -> None:
        super().__init__(vi, en)
        self.vi = vi
        self.en = en


class TooComplex(AmbiguousStructure):
    """The file needs more work to read than the bounds allow: it could not be checked (not proven ambiguous)."""

    def __init__(self) -> None:
        super().__init__("tệp quá phức tạp để kiểm tra ở đây", "the file is too complex to check here")


class Name(str):
    """A PDF name, ``#xx`` escapes decoded (Latin-1), with its leading slash: ``/Root``."""


class PdfString(bytes):
    """A literal or hex string, as written (not decoded: two spellings of one string count as different)."""


class Ref(NamedTuple):
    num: int
    gen: int


class Keyword(str):
    """``true`` or ``false`` (kept apart from the numbers 1 and 0)."""


TRUE, FALSE = Keyword("true"), Keyword("false")


@dataclass(eq=True)
class Stream:
    dict: dict[Name, Any]
    raw: bytes  # the encoded bytes, exactly /Length of them


@dataclass
class Entry:
    kind: str  # "n" in use at an offset, "c" in an object stream, "f" free
    a: int  # offset, object stream number, or next free object
    b: int  # generation, or index in the object stream


@dataclass
class Revision:
    index: int
    start: int  # first byte of this revision (0 for the first)
    end: int  # just after its %%EOF and end-of-line: what a signature covering this revision ends at
    xref_offset: int
    trailer: dict[Name, Any]
    entries: dict[int, Entry]
    objects: dict[int, Any] = field(default_factory=dict)  # defined in this revision (objects in streams too)
    xref_stream: int | None = None  # the xref stream's object number, when it has one


@dataclass
class PdfStructure:
    revisions: list[Revision]

    def get(self, num: int, revision: int) -> Any:
        """Object ``num`` as it stood in ``revision`` (None when free or never defined)."""
        for rev in reversed(self.revisions[: revision + 1]):
            entry = rev.entries.get(num)
            if entry is not None:
                return rev.objects.get(num) if entry.kind != "f" else None
        return None

    def in_use(self, revision: int) -> set[int]:
        used: set[int] = set()
        for rev in self.revisions[: revision + 1]:
            for num, entry in rev.entries.items():
                if entry.kind == "f":
                    used.discard(num)
                else:
                    used.add(num)
        return used

    def resolve(self, value: Any, revision: int) -> Any:
        return self.get(value.num, revision) if isinstance(value, Ref) else value


_WS = b"\x00\t\n\x0c\r "
_DELIM = b"()<>[]{}/%"
_SKIP = re.compile(rb"(?:[\x00\t\n\x0c\r ]+|%[^\r\n]*)*")
_SKIP_WS = re.compile(rb"[\x00\t\n\x0c\r ]*")
_NUMBER = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)")
_NAME = re.compile(rb"/([^\x00\t\n\x0c\r ()<>\[\]{}/%]*)")
_REF = re.compile(rb"(\d+)[\x00\t\n\x0c\r ]+(\d+)[\x00\t\n\x0c\r ]+R(?![^\x00\t\n\x0c\r ()<>\[\]{}/%])")
_KEYWORD = re.compile(rb"[A-Za-z]+")
_OBJ = re.compile(rb"(\d+)[\x00\t\n\x0c\r ]+(\d+)[\x00\t\n\x0c\r ]+obj(?![^\x00\t\n\x0c\r ()<>\[\]{}/%])")
_HEX = re.compile(rb"<([0-9A-Fa-f\x00\t\n\x0c\r ]*)>")
_STRING_SPECIAL = re.compile(rb"[()\\]")
_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_HEADER = re.compile(rb"%PDF-(?:1\.[0-7]|2\.0)[\r\n]")
_XREF_SUB = re.compile(rb"(\d+) (\d+)[\x00\t\x0c\r ]*\n|(\d+) (\d+)[\x00\t\x0c ]*\r")
_XREF_ENTRY = re.compile(rb"(\d{10}) (\d{5}) ([nf])(?: \r| \n|\r\n)")
_EOL = re.compile(rb"[\r\n]")
_STARTXREF = re.compile(rb"startxref[\x00\t\n\x0c\r ]+(\d+)[\x00\t\n\x0c\r ]+%%EOF(\r\n|\r|\n)?")


def _fail(vi: str, en: str) -> AmbiguousStructure:
    return AmbiguousStructure(vi, en)


class _Reader:
    """Objects from bytes, strictly; every reference seen is recorded in ``refs``."""

    def __init__(self, data: bytes, budget: list[int]) -> None:
        self.data = data
        self.budget = budget  # [objects, inflated bytes, values] left, shared by every reader of one file
        self.refs: set[Ref] = set()

    def skip(self, pos: int) -> int:
        m = _SKIP.match(self.data, pos)
        return m.end() if m else pos

    def value(self, pos: int, depth: int = 0) -> tuple[Any, int]:
        data = self.data
        pos = self.skip(pos)
        self.budget[2] -= 1
        if self.budget[2] < 0:
            raise TooComplex()
        if pos >= len(data):
            raise _fail("tệp kết thúc giữa chừng một đối tượng", "the file ends inside an object")
        c = data[pos : pos + 1]
        if c == b"/":
            return self.name(pos), _NAME.match(data, pos).end()  # type: ignore[union-attr]
        if c == b"<":
            if data.startswith(b"<<", pos):
                return self.dictionary(pos + 2, depth + 1)
            m = _HEX.match(data, pos)
            if not m:
                raise _fail(f"chuỗi hex hỏng ở byte {pos}", f"a malformed hex string at byte {pos}")
            return PdfString(data[pos : m.end()]), m.end()
        if c == b"[":
            if depth >= MAX_DEPTH:
                raise _fail("các mảng lồng nhau quá sâu", "arrays are nested too deeply")
            items: list[Any] = []
            pos += 1
            while True:
                pos = self.skip(pos)
                if data.startswith(b"]", pos):
                    return items, pos + 1
                item, pos = self.value(pos, depth + 1)
                items.append(item)
        if c == b"(":
            return self.string(pos)
        m = _REF.match(data, pos)
        if m:
            ref = Ref(int(m.group(1)), int(m.group(2)))
            self.refs.add(ref)
            return ref, m.end()
        m = _NUMBER.match(data, pos)
        if m:
            end = m.end()
            if end < len(data) and data[end] not in _WS and data[end : end + 1] not in _DELIM:
                raise _fail(f"số viết sai ở byte {pos}", f"a malformed number at byte {pos}")
            text = m.group()
            return (float(text) if b"." in text else int(text)), end
        m = _KEYWORD.match(data, pos)
        if m and m.group() in (b"true", b"false", b"null"):
            word = m.group()
            return (TRUE if word == b"true" else FALSE if word == b"false" else None), m.end()
        raise _fail(f"dữ liệu không đọc được ở byte {pos}", f"unreadable data at byte {pos}")

    def name(self, pos: int) -> Name:
        m = _NAME.match(self.data, pos)
        assert m is not None
        raw = m.group(1)
        if b"#" in raw:
            decoded = _NAME_ESCAPE.sub(lambda e: bytes([int(e.group(1), 16)]), raw)
            if b"#" in _NAME_ESCAPE.sub(b"", raw):
                raise _fail(f"tên viết sai ở byte {pos}", f"a malformed name at byte {pos}")
            raw = decoded
        return Name("/" + raw.decode("latin-1"))

    def dictionary(self, pos: int, depth: int) -> tuple[dict[Name, Any], int]:
        if depth > MAX_DEPTH:
            raise _fail("các từ điển lồng nhau quá sâu", "dictionaries are nested too deeply")
        data = self.data
        out: dict[Name, Any] = {}
        while True:
            pos = self.skip(pos)
            if data.startswith(b">>", pos):
                return out, pos + 2
            if not data.startswith(b"/", pos):
                raise _fail(
                    f"từ điển có khoá không phải tên ở byte {pos}", f"a dictionary key is not a name at byte {pos}"
                )
            key = self.name(pos)
            keypos = pos
            pos = _NAME.match(data, pos).end()  # type: ignore[union-attr]
            value, pos = self.value(pos, depth)
            if key in out:
                raise _fail(
                    f"khoá {key} xuất hiện hai lần trong một từ điển (byte {keypos})",
                    f"the key {key} appears twice in one dictionary (byte {keypos})",
                )
            out[key] = value

    def string(self, pos: int) -> tuple[PdfString, int]:
        data, depth, i = self.data, 0, pos
        while True:
            m = _STRING_SPECIAL.search(data, i)
            if m is None:
                raise _fail("chuỗi không kết thúc", "a string is not closed")
            ch = m.group()
            if ch == b"\\":
                i = m.end() + 1
                continue
            depth += 1 if ch == b"(" else -1
            i = m.end()
            if depth == 0:
                return PdfString(data[pos:i]), i

    def inflate(self, stream: Stream, what: str) -> bytes:
        """The decoded bytes of an xref or object stream: no filter, or FlateDecode with an optional PNG predictor."""
        filters = stream.dict.get(Name("/Filter"))
        filters = [filters] if isinstance(filters, Name) else filters or []
        if filters not in ([], [Name("/FlateDecode")]):
            raise _fail(f"{what} dùng bộ lọc lạ", f"the {what} uses an unexpected filter")
        raw = stream.raw
        if filters:
            left = self.budget[1]
            try:
                inflater = zlib.decompressobj()
                raw = inflater.decompress(stream.raw, left + 1)
            except zlib.error as exc:
                raise _fail(f"{what} không giải nén được", f"the {what} cannot be inflated") from exc
            if len(raw) > left or inflater.unconsumed_tail:
                raise TooComplex()
            self.budget[1] -= len(raw)
        parms = stream.dict.get(Name("/DecodeParms"))
        if parms is None:
            return raw
        if not isinstance(parms, dict) or set(parms) - {Name("/Predictor"), Name("/Columns")}:
            raise _fail(f"{what} dùng tham số giải mã lạ", f"the {what} uses unexpected decode parameters")
        predictor, columns = parms.get(Name("/Predictor"), 1), parms.get(Name("/Columns"), 1)
        if predictor == 1:
            return raw
        if not (isinstance(predictor, int) and 10 <= predictor <= 15 and isinstance(columns, int) and columns > 0):
            raise _fail(f"{what} dùng bộ dự đoán lạ", f"the {what} uses an unexpected predictor")
        return _png_unpredict(raw, columns, what)


def _png_unpredict(raw: bytes, columns: int, what: str) -> bytes:
    row_len = columns + 1
    if len(raw) % row_len:
        raise _fail(f"{what} có độ dài sai", f"the {what} has a wrong length")
    out = bytearray()
    prev = bytearray(columns)
    for i in range(0, len(raw), row_len):
        kind, row = raw[i], bytearray(raw[i + 1 : i + row_len])
        if kind == 2:
            row = bytearray((a + b) & 0xFF for a, b in zip(row, prev, strict=True))
        elif kind == 1:
            for j in range(1, columns):
                row[j] = (row[j] + row[j - 1]) & 0xFF
        elif kind != 0:  # Average and Paeth never appear in xref streams written by common tools
            raise _fail(f"{what} dùng bộ dự đoán lạ", f"the {what} uses an unexpected predictor")
        out += row
        prev = row
    return bytes(out)


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _fail(f"{what} không phải số nguyên không âm", f"{what} is not a non-negative integer")
    return value


def read_structure(data: bytes) -> PdfStructure:
    """Read ``data`` strictly (see the module's docstring); raise :class:`AmbiguousStructure` when it is not clean."""
    if not _HEADER.match(data):
        raise _fail("tệp không bắt đầu bằng dòng đầu PDF", "the file does not start with a PDF header line")
    budget = [MAX_OBJECTS, MAX_INFLATED, MAX_VALUES]
    reader = _Reader(data, budget)
    revisions: list[Revision] = []
    refs_before: set[int] = set()  # every object number referenced by an earlier revision
    used: dict[int, int] = {}  # the object numbers in use after the revisions read so far, with their generation
    pos, start = 0, 0
    while True:
        pos = _skip_top(data, pos)
        if pos >= len(data):
            break
        if len(revisions) >= MAX_REVISIONS:
            raise TooComplex()
        rev, refs = _read_revision(reader, start, pos, len(revisions))
        if revisions and rev.trailer.get(Name("/Prev")) != revisions[-1].xref_offset:
            raise _fail(
                "/Prev không trỏ tới bảng tham chiếu chéo của lần cập nhật trước",
                "/Prev does not point at the previous revision's cross-reference section",
            )
        introduced = {n for n, e in rev.entries.items() if e.kind != "f"} - set(used)
        late = sorted(introduced & refs_before)
        if late:
            raise _fail(
                f"đối tượng {late[0]} được một phiên bản trước tham chiếu nhưng chỉ được định nghĩa ở lần cập nhật "
                f"{len(revisions)}",
                f"object {late[0]} is referenced by an earlier revision but defined only in update {len(revisions)}",
            )
        refs_before |= {ref.num for ref in refs}
        for num, entry in rev.entries.items():
            gen = entry.b if entry.kind == "n" else 0
            if entry.kind == "f":
                used.pop(num, None)
            elif used.setdefault(num, gen) != gen:
                raise _fail(
                    f"đối tượng {num} đổi số thế hệ mà không được giải phóng",
                    f"object {num} changes its generation without being freed",
                )
        mismatched = sorted(ref for ref in refs if ref.num in used and used[ref.num] != ref.gen)
        if mismatched:
            num, gen = mismatched[0]
            raise _fail(
                f"tham chiếu {num} {gen} R không khớp với số thế hệ của đối tượng {num}",
                f"the reference {num} {gen} R does not match object {num}'s generation",
            )
        revisions.append(rev)
        pos = start = rev.end
    if not revisions:
        raise _fail("tệp không có bảng tham chiếu chéo", "the file has no cross-reference section")
    return PdfStructure(revisions)


def _skip_top(data: bytes, pos: int) -> int:
    """Whitespace and comments between top-level items, but never past a ``%%EOF``."""
    while True:
        pos = _SKIP_WS.match(data, pos).end()  # type: ignore[union-attr]
        if data.startswith(b"%", pos) and not data.startswith(b"%%EOF", pos):
            nl = _EOL.search(data, pos)
            pos = nl.start() if nl else len(data)
            continue
        return pos


def _read_revision(reader: _Reader, start: int, pos: int, index: int) -> tuple[Revision, set[Ref]]:
    data = reader.data
    offsets: dict[int, tuple[int, int]] = {}  # offset -> (num, gen) of each "N G obj" in this revision
    values: dict[int, Any] = {}
    gens: dict[int, int] = {}
    refs: set[Ref] = set()
    table: dict[int, Entry] | None = None
    table_at = -1
    trailer: dict[Name, Any] | None = None
    while True:
        pos = _skip_top(data, pos)
        m = _OBJ.match(data, pos)
        if m:
            num, gen = int(m.group(1)), int(m.group(2))
            if num in values:
                raise _fail(
                    f"đối tượng {num} được định nghĩa hai lần trong cùng một lần cập nhật",
                    f"object {num} is defined twice in one revision",
                )
            reader.budget[0] -= 1
            if reader.budget[0] < 0:
                raise TooComplex()
            reader.refs = set()
            value, after = _indirect_body(reader, m.end(), num)
            refs |= reader.refs
            offsets[pos] = (num, gen)
            values[num], gens[num] = value, gen
            pos = after
            continue
        if data.startswith(b"xref", pos) and table is None:
            table_at = pos
            table, pos = _xref_table(data, pos + 4)
            pos = reader.skip(pos)
            if not data.startswith(b"trailer", pos):
                raise _fail("thiếu trailer sau bảng tham chiếu chéo", "no trailer after the cross-reference table")
            reader.refs = set()
            pos = reader.skip(pos + 7)
            if not data.startswith(b"<<", pos):
                raise _fail("trailer không phải từ điển", "the trailer is not a dictionary")
            trailer, pos = reader.dictionary(pos + 2, 1)
            refs |= reader.refs
            continue
        m = _STARTXREF.match(data, pos)
        if m:
            break
        raise _fail(f"dữ liệu lạ ngoài mọi đối tượng ở byte {pos}", f"stray data outside any object at byte {pos}")
    startxref, end = int(m.group(1)), m.end()
    xref_stream: int | None = None
    if table is not None:
        if startxref != table_at:
            raise _fail("startxref không trỏ tới bảng tham chiếu chéo", "startxref does not point at the xref table")
        entries = table
    else:
        if startxref not in offsets:
            raise _fail(
                f"startxref ({startxref}) không trỏ tới một đối tượng của lần cập nhật này",
                f"startxref ({startxref}) does not point at an object of this revision",
            )
        xref_stream = offsets[startxref][0]
        stream = values[xref_stream]
        if not isinstance(stream, Stream) or stream.dict.get(Name("/Type")) != Name("/XRef"):
            raise _fail(
                "startxref không trỏ tới một luồng tham chiếu chéo", "startxref does not point at an xref stream"
            )
        trailer = stream.dict
        entries = _xref_stream_entries(reader, stream)
    assert trailer is not None
    _check_trailer(trailer, index, entries)
    rev = Revision(index, start, end, startxref, trailer, entries, xref_stream=xref_stream)
    _match_entries(reader, rev, offsets, values, gens, refs)
    return rev, refs


def _indirect_body(reader: _Reader, pos: int, num: int) -> tuple[Any, int]:
    data = reader.data
    value, pos = reader.value(pos)
    pos = reader.skip(pos)
    if isinstance(value, dict) and data.startswith(b"stream", pos):
        pos += 6
        if data.startswith(b"\r\n", pos):
            pos += 2
        elif data.startswith(b"\n", pos):
            pos += 1
        else:
            raise _fail(f"luồng {num} viết sai sau từ khoá stream", f"stream {num} is malformed after 'stream'")
        length = value.get(Name("/Length"))
        if not isinstance(length, int) or isinstance(length, Keyword) or length < 0 or pos + length > len(data):
            raise _fail(
                f"độ dài của luồng {num} không phải số trực tiếp hợp lệ",
                f"the length of stream {num} is not a valid direct number",
            )
        raw = data[pos : pos + length]
        pos = _SKIP_WS.match(data, pos + length).end()  # type: ignore[union-attr]
        if not data.startswith(b"endstream", pos):
            raise _fail(
                f"độ dài của luồng {num} không khớp với vị trí endstream",
                f"the length of stream {num} does not match where it ends",
            )
        value = Stream(value, raw)
        pos = reader.skip(pos + 9)
    if not data.startswith(b"endobj", pos):
        raise _fail(f"đối tượng {num} không kết thúc bằng endobj", f"object {num} does not end with endobj")
    return value, pos + 6


def _xref_table(data: bytes, pos: int) -> tuple[dict[int, Entry], int]:
    entries: dict[int, Entry] = {}
    pos = _SKIP_WS.match(data, pos).end()  # type: ignore[union-attr]
    while True:
        m = _XREF_SUB.match(data, pos)
        if not m:
            return entries, pos
        first, count = int(m.group(1) or m.group(3)), int(m.group(2) or m.group(4))
        pos = m.end()
        for num in range(first, first + count):
            e = _XREF_ENTRY.match(data, pos)
            if not e:
                raise _fail(
                    f"dòng bảng tham chiếu chéo hỏng ở byte {pos}", f"a malformed xref table line at byte {pos}"
                )
            _add_entry(entries, num, Entry(e.group(3).decode(), int(e.group(1)), int(e.group(2))))
            pos = e.end()
        pos = _SKIP_WS.match(data, pos).end()  # type: ignore[union-attr]


def _add_entry(entries: dict[int, Entry], num: int, entry: Entry) -> None:
    if num in entries:
        raise _fail(
            f"bảng tham chiếu chéo liệt kê đối tượng {num} hai lần",
            f"the cross-reference section lists object {num} twice",
        )
    entries[num] = entry


def _xref_stream_entries(reader: _Reader, stream: Stream) -> dict[int, Entry]:
    d = stream.dict
    widths = d.get(Name("/W"))
    if not (isinstance(widths, list) and len(widths) == 3 and all(isinstance(w, int) and 0 <= w <= 8 for w in widths)):
        raise _fail("luồng tham chiếu chéo có /W sai", "the xref stream has a malformed /W")
    size = _int(d.get(Name("/Size")), "/Size")
    index = d.get(Name("/Index"), [0, size])
    if not (isinstance(index, list) and len(index) % 2 == 0 and all(isinstance(i, int) and i >= 0 for i in index)):
        raise _fail("luồng tham chiếu chéo có /Index sai", "the xref stream has a malformed /Index")
    raw = reader.inflate(stream, "xref stream")
    w0, w1, w2 = widths
    row = w0 + w1 + w2
    total = sum(index[1::2])
    if row == 0 or len(raw) != total * row:
        raise _fail("luồng tham chiếu chéo có độ dài sai", "the xref stream has the wrong length")
    entries: dict[int, Entry] = {}
    at = 0
    for first, count in zip(index[0::2], index[1::2], strict=True):
        for num in range(first, first + count):
            kind = int.from_bytes(raw[at : at + w0], "big") if w0 else 1
            a = int.from_bytes(raw[at + w0 : at + w0 + w1], "big")
            b = int.from_bytes(raw[at + w0 + w1 : at + row], "big")
            at += row
            if kind not in (0, 1, 2):
                raise _fail("luồng tham chiếu chéo có mục lạ", "the xref stream has an entry of an unknown type")
            _add_entry(entries, num, Entry("fnc"[kind], a, b))
    return entries


def _check_trailer(trailer: dict[Name, Any], index: int, entries: dict[int, Entry]) -> None:
    if Name("/XRefStm") in trailer:
        raise _fail(
            "tệp lai (vừa bảng vừa luồng tham chiếu chéo) có thể được đọc theo hai cách",
            "a hybrid-reference file (xref table and xref stream) can be read two ways",
        )
    if Name("/Encrypt") in trailer:
        raise _fail("tệp được mã hoá", "the file is encrypted")
    if not isinstance(trailer.get(Name("/Root")), Ref):
        raise _fail("trailer không trỏ tới danh mục (/Root)", "the trailer does not point at a catalog (/Root)")
    size = _int(trailer.get(Name("/Size")), "/Size")
    if entries and max(entries) >= size:
        raise _fail("bảng tham chiếu chéo vượt quá /Size", "the cross-reference section goes beyond /Size")
    if (Name("/Prev") in trailer) != (index > 0):
        raise _fail("chuỗi /Prev không khớp với các lần cập nhật", "the /Prev chain does not match the revisions")


def _match_entries(
    reader: _Reader,
    rev: Revision,
    offsets: dict[int, tuple[int, int]],
    values: dict[int, Any],
    gens: dict[int, int],
    refs: set[Ref],
) -> None:
    """Each in-use entry names an object of this revision, and each object of the revision has its entry."""
    listed: set[int] = set()
    streams: dict[int, dict[int, int]] = {}  # object stream -> {num: index}
    for num, entry in rev.entries.items():
        if entry.kind == "n":
            if offsets.get(entry.a) != (num, entry.b):
                raise _fail(
                    f"mục tham chiếu chéo của đối tượng {num} không trỏ tới đối tượng đó",
                    f"the xref entry of object {num} does not point at that object",
                )
            listed.add(num)
        elif entry.kind == "c":
            streams.setdefault(entry.a, {})[num] = entry.b
    unlisted = set(values) - listed - {rev.xref_stream}
    if unlisted:
        num = min(unlisted)
        raise _fail(
            f"đối tượng {num} nằm ngoài bảng tham chiếu chéo của lần cập nhật chứa nó",
            f"object {num} is outside the cross-reference section of its revision",
        )
    rev.objects = dict(values)
    for stm, members in streams.items():
        stream = values.get(stm)
        if stm not in listed or not isinstance(stream, Stream) or stream.dict.get(Name("/Type")) != Name("/ObjStm"):
            raise _fail(
                f"mục tham chiếu chéo trỏ tới luồng đối tượng {stm} không có trong lần cập nhật này",
                f"an xref entry points at object stream {stm}, which is not in this revision",
            )
        rev.objects.update(_object_stream(reader, stm, stream, members, refs))
    orphan_streams = [
        n for n, v in values.items() if isinstance(v, Stream) and v.dict.get(Name("/Type")) == Name("/ObjStm")
    ]
    for stm in orphan_streams:
        if stm not in streams:
            raise _fail(
                f"luồng đối tượng {stm} không được bảng tham chiếu chéo dùng tới",
                f"object stream {stm} is not used by the cross-reference section",
            )


def _object_stream(
    reader: _Reader, stm: int, stream: Stream, members: dict[int, int], refs: set[Ref]
) -> dict[int, Any]:
    if Name("/Extends") in stream.dict:
        raise _fail("luồng đối tượng dùng /Extends", "an object stream uses /Extends")
    n = _int(stream.dict.get(Name("/N")), "/N")
    first = _int(stream.dict.get(Name("/First")), "/First")
    data = reader.inflate(stream, "object stream")
    sub = _Reader(data, reader.budget)
    header: list[int] = []
    pos = 0
    for _ in range(2 * n):
        value, pos = sub.value(pos)
        header.append(_int(value, "object stream header"))
    if sub.skip(pos) > first:
        raise _fail("đầu luồng đối tượng sai", "an object stream's header is malformed")
    nums, offs = header[0::2], header[1::2]
    if len(set(nums)) != n or sorted(offs) != offs:
        raise _fail(f"luồng đối tượng {stm} chứa một đối tượng hai lần", f"object stream {stm} holds an object twice")
    if {num: i for i, num in enumerate(nums)} != members:
        raise _fail(
            f"luồng đối tượng {stm} không khớp với bảng tham chiếu chéo",
            f"object stream {stm} does not match the cross-reference section",
        )
    out: dict[int, Any] = {}
    for i, (num, off) in enumerate(zip(nums, offs, strict=True)):
        reader.budget[0] -= 1
        if reader.budget[0] < 0:
            raise TooComplex()
        limit = first + offs[i + 1] if i + 1 < n else len(data)
        sub.refs = set()
        value, end = sub.value(first + off)
        if sub.skip(end) > limit or (i + 1 < n and sub.skip(end) != limit):
            raise _fail(f"luồng đối tượng {stm} chứa dữ liệu lạ", f"object stream {stm} holds stray data")
        refs |= sub.refs
        out[num] = value
    return out


def walk(value: Any) -> Iterator[Any]:
    """``value`` and every direct value inside it (not following references)."""
    stack = [value]
    while stack:
        v = stack.pop()
        yield v
        if isinstance(v, Stream):
            stack.extend(v.dict.values())
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
