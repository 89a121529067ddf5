"""What may change in a signed PDF after each signature, checked object by object on the strict reading
(:mod:`verifier.pdfstructure`), independently of the PDF library that validates the signatures.

After the final signature (the seal) only what SealTrail itself adds is allowed: long-term validation data (the
DSS with its certificates, OCSP responses, CRLs and VRI dictionaries) and document timestamps (a new signature field
whose widget has a zero-size ``/Rect`` and no visible appearance, appended to the AcroForm's ``/Fields`` and the
page's ``/Annots``). Between earlier signatures the next signer may also fill their (empty) signature field, or add
one, with its signature dictionary and appearance. Everywhere, the XMP metadata may differ only in the dates and tool
names a PDF writer updates, and the document information dictionary only in ``/Producer`` and ``/ModDate``.

Everything else is a violation: a new or changed page, page content, resource, annotation, field, outline, name
tree, attachment (``/AF``, ``/EmbeddedFiles``, file specifications), catalog entry, ``/Info`` title or XMP property,
a deleted object, or a new object nothing allowed refers to.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

from lxml import etree

from errors import PermanentError
from verifier.pdfstructure import Name, PdfStructure, Ref, Revision, Stream, walk

N = Name


class PolicyViolation(PermanentError, ValueError):
    """A revision after the first signature changes more than allowed: ``vi`` and ``en`` say what."""

    def __init__(self, vi: str, en: str) -> None:
        super().__init__(vi, en)
        self.vi = vi
        self.en = en


# What a writer updates in the metadata of every revision it adds (pyHanko: ModifyDate, Producer, the toolkit).
_XMP_VOLATILE = {
    "{http://ns.adobe.com/xap/1.0/}ModifyDate",
    "{http://ns.adobe.com/xap/1.0/}MetadataDate",
    "{http://ns.adobe.com/pdf/1.3/}Producer",
    "{adobe:ns:meta/}xmptk",
}
_INFO_VOLATILE = {N("/Producer"), N("/ModDate")}
_DSS_KEYS = {N("/Type"), N("/Certs"), N("/OCSPs"), N("/CRLs"), N("/VRI")}
_XMP_LIMIT = 4 * 1024 * 1024


def signature_revisions(s: PdfStructure) -> tuple[list[int], list[int]]:
    """The revisions that the document's signatures (``/Sig``) and document timestamps (``/DocTimeStamp``) sign,
    found from the final revision's signature fields; each signature must end exactly at its own revision."""
    last = len(s.revisions) - 1
    regular: list[int] = []
    stamps: list[int] = []
    for field in _fields(s, last):
        value = field.get(N("/V"))
        if not isinstance(value, Ref):
            continue
        sig = s.get(value.num, last)
        if not isinstance(sig, dict) or N("/ByteRange") not in sig:
            continue
        rev = _introduced(s, value.num)
        byte_range = sig.get(N("/ByteRange"))
        ends = {s.revisions[rev].end} | {s.revisions[rev].end - k for k in (1, 2)}
        if not (
            isinstance(byte_range, list) and len(byte_range) == 4 and _num(byte_range[2]) + _num(byte_range[3]) in ends
        ):
            raise PolicyViolation(
                f"chữ ký {value.num} không kết thúc ở cuối lần cập nhật chứa nó",
                f"signature {value.num} does not end where its revision ends",
            )
        (stamps if sig.get(N("/Type")) == N("/DocTimeStamp") else regular).append(rev)
    return sorted(regular), sorted(stamps)


def check_after_signatures(s: PdfStructure) -> None:
    """Raise :class:`PolicyViolation` for the first revision after the first signature that changes more than
    allowed (see the module's docstring)."""
    regular, stamps = signature_revisions(s)
    if not regular:
        return
    seal = regular[-1]
    for r in range(regular[0] + 1, len(s.revisions)):
        try:
            _check_revision(s, r, after_seal=r > seal, signs=r in regular, stamps=r in stamps)
        except PolicyViolation as exc:
            when_vi = "sau chữ ký cuối cùng" if r > seal else "giữa các chữ ký"
            when_en = "after the last signature" if r > seal else "between signatures"
            raise PolicyViolation(
                f"{when_vi} (lần cập nhật {r}): {exc.vi}", f"{when_en} (update {r}): {exc.en}"
            ) from exc


def _num(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, str) else -1


def _introduced(s: PdfStructure, num: int) -> int:
    """The revision that last (re)defined object ``num``."""
    for rev in reversed(s.revisions):
        if num in rev.entries:
            return rev.index
    return 0


def _fields(s: PdfStructure, r: int) -> list[dict[Name, Any]]:
    """Every terminal field of the AcroForm in revision ``r``."""
    catalog = s.get(s.revisions[r].trailer[N("/Root")].num, r)
    form = s.resolve(catalog.get(N("/AcroForm")), r) if isinstance(catalog, dict) else None
    out: list[dict[Name, Any]] = []
    stack = list(form.get(N("/Fields"), [])) if isinstance(form, dict) else []
    seen: set[int] = set()
    while stack and len(seen) < 10_000:
        ref = stack.pop()
        if not isinstance(ref, Ref) or ref.num in seen:
            continue
        seen.add(ref.num)
        node = s.get(ref.num, r)
        if isinstance(node, dict):
            kids = node.get(N("/Kids"))
            if isinstance(kids, list) and kids:
                stack.extend(kids)
            else:
                out.append(node)
    return out


def _pages(s: PdfStructure, r: int, catalog: dict[Name, Any]) -> set[int]:
    """The page tree's nodes (pages and intermediate nodes) in revision ``r``."""
    out: set[int] = set()
    stack = [catalog.get(N("/Pages"))]
    while stack and len(out) < 100_000:
        ref = stack.pop()
        if not isinstance(ref, Ref) or ref.num in out:
            continue
        out.add(ref.num)
        node = s.get(ref.num, r)
        if isinstance(node, dict):
            stack.extend(k for k in s.resolve(node.get(N("/Kids")), r) or [] if isinstance(k, Ref))
    return out


def _reach(
    s: PdfStructure, r: int, roots: Iterable[Any], within: set[int] | None = None, exclude: Iterable[int] = ()
) -> set[int]:
    """Object numbers reachable from ``roots`` in revision ``r`` (only through ``within`` when given, never through
    ``exclude``)."""
    out: set[int] = set(exclude)
    stack = list(roots)
    while stack:
        for v in walk(stack.pop()):
            if isinstance(v, Ref) and v.num not in out and (within is None or v.num in within):
                out.add(v.num)
                stack.append(s.get(v.num, r))
    return out - set(exclude)


def _changed_keys(old: dict[Name, Any], new: dict[Name, Any]) -> set[Name]:
    return {k for k in set(old) | set(new) if old.get(k) != new.get(k)}


def _describe(key: Name) -> tuple[str, str]:
    named = {
        "/Info": ("thông tin tài liệu (/Info)", "the document information (/Info)"),
        "/Metadata": ("siêu dữ liệu XMP", "the XMP metadata"),
        "/AF": ("tệp đính kèm (/AF)", "the attached files (/AF)"),
        "/Names": ("cây tên (tệp đính kèm, đích đến)", "the name trees (attachments, destinations)"),
        "/Pages": ("cây trang", "the page tree"),
    }
    return named.get(key, (f"mục {key} của danh mục tài liệu", f"the catalog's {key} entry"))


def _check_revision(s: PdfStructure, r: int, *, after_seal: bool, signs: bool, stamps: bool) -> None:
    rev: Revision = s.revisions[r]
    prev = r - 1
    old_trailer, new_trailer = s.revisions[prev].trailer, rev.trailer
    for key in (N("/Root"), N("/Info")):
        if old_trailer.get(key) != new_trailer.get(key):
            vi, en = (
                _describe(key) if key == N("/Info") else ("danh mục tài liệu (/Root)", "the document catalog (/Root)")
            )
            raise PolicyViolation(f"trailer trỏ tới {vi} khác", f"the trailer points at another {en}")
    root = new_trailer[N("/Root")].num
    old_catalog, catalog = s.get(root, prev), s.get(root, r)
    if not isinstance(old_catalog, dict) or not isinstance(catalog, dict):
        raise PolicyViolation("danh mục tài liệu hỏng", "the document catalog is broken")
    used_before = s.in_use(prev)
    new_objects = {n for n, e in rev.entries.items() if e.kind != "f" and n not in used_before} - {rev.xref_stream}
    deleted = [n for n, e in rev.entries.items() if e.kind == "f" and n in used_before]
    if deleted:
        raise PolicyViolation(f"đối tượng {deleted[0]} bị xoá", f"object {deleted[0]} was deleted")
    changed = {
        n
        for n, e in rev.entries.items()
        if e.kind != "f" and n in used_before and s.get(n, prev) != s.get(n, r) and n != rev.xref_stream
    }
    claimed: set[int] = set()

    # The catalog: only /DSS, /Extensions (the ESIC extension) and, before the seal, a new /AcroForm.
    if root in changed:
        for key in _changed_keys(old_catalog, catalog):
            if key == N("/DSS") and isinstance(catalog.get(key), Ref):
                continue
            if key == N("/Extensions") and _only_added(old_catalog.get(key), catalog.get(key), {N("/ESIC")}):
                continue
            if key == N("/AcroForm") and not after_seal and key not in old_catalog and isinstance(catalog[key], Ref):
                claimed.add(catalog[key].num)
                continue
            vi, en = _describe(key)
            raise PolicyViolation(f"{vi} bị thay đổi", f"{en} changed")
        changed.discard(root)

    # The document information dictionary and the XMP metadata: only what writers update on every save.
    info = new_trailer.get(N("/Info"))
    if isinstance(info, Ref) and info.num in changed:
        old, new = s.get(info.num, prev), s.get(info.num, r)
        if not (isinstance(old, dict) and isinstance(new, dict)) or _changed_keys(old, new) - _INFO_VOLATILE:
            raise PolicyViolation("thông tin tài liệu (/Info) bị thay đổi", "the document information (/Info) changed")
        changed.discard(info.num)
    metadata = catalog.get(N("/Metadata"))
    if isinstance(metadata, Ref) and metadata.num in changed:
        if not _same_xmp(s.get(metadata.num, prev), s.get(metadata.num, r)):
            raise PolicyViolation("siêu dữ liệu XMP bị thay đổi", "the XMP metadata changed")
        changed.discard(metadata.num)

    # The long-term validation data: the DSS and whatever only it refers to.
    doc_before = _reach(
        s,
        prev,
        [{k: v for k, v in old_catalog.items() if k != N("/DSS")}, old_trailer],
        exclude=[root],
    )
    doc_before.add(root)
    dss = catalog.get(N("/DSS"))
    if isinstance(dss, Ref):
        dss_dict = s.get(dss.num, r)
        if not isinstance(dss_dict, dict) or set(dss_dict) - _DSS_KEYS:
            raise PolicyViolation(
                "kho dữ liệu kiểm tra (DSS) có mục lạ", "the validation data store (DSS) has odd entries"
            )
        dss_objects = _reach(s, r, [dss], exclude=[root]) - doc_before
        claimed |= dss_objects & new_objects
        changed -= dss_objects

    # Signature fields: new ones appended to /Fields and /Annots, and (before the seal) filled ones.
    pages = _pages(s, prev, old_catalog)
    form_ref = catalog.get(N("/AcroForm"))
    form_num = form_ref.num if isinstance(form_ref, Ref) else None
    added_fields: list[Ref] = []
    if form_num is not None and form_num in changed:
        old_form, form = s.get(form_num, prev), s.get(form_num, r)
        if not (isinstance(old_form, dict) and isinstance(form, dict)):
            raise PolicyViolation("biểu mẫu (AcroForm) hỏng", "the form (AcroForm) is broken")
        for key in _changed_keys(old_form, form):
            if key == N("/Fields"):
                added_fields = _appended(old_form.get(key) or [], form.get(key), new_objects, "/Fields")
            elif key == N("/SigFlags") and form.get(key) in (1, 3):
                continue
            else:
                raise PolicyViolation(f"mục {key} của biểu mẫu bị thay đổi", f"the form's {key} entry changed")
        changed.discard(form_num)
    elif isinstance(form_ref, Ref) and form_ref.num in new_objects:
        form = s.get(form_ref.num, r)
        added_fields = (
            [f for f in (form.get(N("/Fields")) or []) if isinstance(f, Ref)] if isinstance(form, dict) else []
        )
    added_widgets: set[int] = set()
    for page in pages & changed:
        old_page, page_dict = s.get(page, prev), s.get(page, r)
        if not (isinstance(old_page, dict) and isinstance(page_dict, dict)) or _changed_keys(old_page, page_dict) - {
            N("/Annots")
        }:
            raise PolicyViolation(f"trang (đối tượng {page}) bị thay đổi", f"a page (object {page}) changed")
        old_annots, annots = old_page.get(N("/Annots")) or [], page_dict.get(N("/Annots"))
        if isinstance(annots, Ref) and annots.num in new_objects:
            claimed.add(annots.num)
            annots = s.get(annots.num, r)
        if isinstance(old_annots, Ref) or not isinstance(annots, list):
            raise PolicyViolation(f"chú thích của trang {page} bị thay đổi", f"the annotations of page {page} changed")
        added_widgets |= {a.num for a in _appended(old_annots, annots, new_objects, "/Annots")}
        changed.discard(page)
    for page in pages:  # an /Annots array kept in its own object
        page_dict = s.get(page, prev)
        annots = page_dict.get(N("/Annots")) if isinstance(page_dict, dict) else None
        if isinstance(annots, Ref) and annots.num in changed:
            old, new = s.get(annots.num, prev), s.get(annots.num, r)
            added_widgets |= {a.num for a in _appended(old, new, new_objects, "/Annots")}
            changed.discard(annots.num)
    new_sigs: list[int] = []
    for ref in added_fields:
        field = s.get(ref.num, r)
        if ref.num not in added_widgets:
            raise PolicyViolation(
                f"trường mới {ref.num} không phải chữ ký trên một trang",
                f"new field {ref.num} is not a signature widget on a page",
            )
        new_sigs.append(_new_signature_field(s, r, field, ref.num, after_seal))
        claimed.add(ref.num)
        claimed |= _reach(s, r, [{k: v for k, v in field.items() if k not in (N("/P"), N("/V"))}], new_objects)
    extra_widgets = added_widgets - {f.num for f in added_fields}
    if extra_widgets:
        num = min(extra_widgets)
        raise PolicyViolation(f"chú thích mới {num} được thêm vào trang", f"a new annotation {num} was added to a page")
    for num in sorted(changed):
        old, new = s.get(num, prev), s.get(num, r)
        if after_seal or not _is_empty_signature_field(old) or not isinstance(new, dict):
            raise PolicyViolation(f"đối tượng {num} bị thay đổi", f"object {num} changed")
        if _changed_keys(old, new) - {N("/V"), N("/AP")}:
            raise PolicyViolation(
                f"trường chữ ký {num} bị sửa ngoài giá trị và hình hiển thị",
                f"signature field {num} changed beyond its value and appearance",
            )
        sig = new.get(N("/V"))
        if not isinstance(sig, Ref) or sig.num not in new_objects:
            raise PolicyViolation(f"trường chữ ký {num} bị thay đổi", f"signature field {num} changed")
        new_sigs.append(sig.num)
        claimed |= _reach(s, r, [new.get(N("/AP"))], new_objects)
    for sig in new_sigs:
        sig_dict = s.get(sig, r)
        kind = sig_dict.get(N("/Type"), N("/Sig")) if isinstance(sig_dict, dict) else None
        allowed = stamps if kind == N("/DocTimeStamp") else signs and not after_seal if kind == N("/Sig") else False
        if not allowed:
            raise PolicyViolation(
                f"chữ ký mới {sig} không được phép ở đây", f"a new signature {sig} is not allowed here"
            )
        claimed.add(sig)
        claimed |= _reach(s, r, [sig_dict], new_objects)
    loose = new_objects - claimed
    if loose:
        num = min(loose)
        raise PolicyViolation(
            f"đối tượng mới {num} không thuộc phần được phép thêm", f"new object {num} is not part of what may be added"
        )


def _only_added(old: Any, new: Any, allowed: set[Name]) -> bool:
    old = old if isinstance(old, dict) else {}
    return isinstance(new, dict) and all(new.get(k) == v for k, v in old.items()) and set(new) - set(old) <= allowed


def _appended(old: Any, new: Any, new_objects: set[int], what: str) -> list[Ref]:
    """The references appended to the array ``old`` (each must be a new object): nothing removed or reordered."""
    if not (isinstance(old, list) and isinstance(new, list) and new[: len(old)] == old):
        raise PolicyViolation(f"mảng {what} bị thay đổi", f"the {what} array changed")
    added = new[len(old) :]
    if not all(isinstance(a, Ref) and a.num in new_objects for a in added):
        raise PolicyViolation(f"mảng {what} bị thay đổi", f"the {what} array changed")
    return added


def _is_empty_signature_field(value: Any) -> bool:
    return isinstance(value, dict) and value.get(N("/FT")) == N("/Sig") and N("/V") not in value


def _new_signature_field(s: PdfStructure, r: int, field: Any, num: int, after_seal: bool) -> int:
    """A new signature field with its widget merged in: its signature's object number.
    After the seal the widget must be invisible: zero-size /Rect, no appearance (or an empty one)."""
    if not (isinstance(field, dict) and field.get(N("/FT")) == N("/Sig") and field.get(N("/Subtype")) == N("/Widget")):
        raise PolicyViolation(f"trường mới {num} không phải trường chữ ký", f"new field {num} is not a signature field")
    if N("/Kids") in field or N("/Parent") in field:
        raise PolicyViolation(f"trường mới {num} có cấu trúc lạ", f"new field {num} has an unusual structure")
    sig = field.get(N("/V"))
    if not isinstance(sig, Ref):
        raise PolicyViolation(f"trường mới {num} không mang chữ ký", f"new field {num} carries no signature")
    appearance = field.get(N("/AP"))
    if after_seal:
        rect = field.get(N("/Rect"))
        if not (isinstance(rect, list) and len(rect) == 4 and all(v == 0 and not isinstance(v, str) for v in rect)):
            raise PolicyViolation(
                f"trường dấu thời gian mới {num} có /Rect không phải [0 0 0 0]",
                f"new timestamp field {num} has a /Rect other than [0 0 0 0]",
            )
        if appearance is not None and not _empty_appearance(s, r, appearance):
            raise PolicyViolation(
                f"trường dấu thời gian mới {num} có hình hiển thị",
                f"new timestamp field {num} has a visible appearance",
            )
    return sig.num


def _empty_appearance(s: PdfStructure, r: int, appearance: Any) -> bool:
    appearance = s.resolve(appearance, r)
    if not isinstance(appearance, dict) or set(appearance) - {N("/N")}:
        return False
    normal = s.resolve(appearance.get(N("/N")), r)
    return isinstance(normal, Stream) and not _stream_data(normal).strip()


def _stream_data(stream: Stream, limit: int = _XMP_LIMIT) -> bytes:
    filters = stream.dict.get(N("/Filter"))
    if filters is None:
        return stream.raw
    if filters not in (N("/FlateDecode"), [N("/FlateDecode")]) or stream.dict.get(N("/DecodeParms")):
        raise PolicyViolation("luồng dùng bộ lọc lạ", "a stream uses an unexpected filter")
    try:
        inflater = zlib.decompressobj()
        data = inflater.decompress(stream.raw, limit + 1)
    except zlib.error as exc:
        raise PolicyViolation("luồng không giải nén được", "a stream cannot be inflated") from exc
    if len(data) > limit:
        raise PolicyViolation("luồng quá lớn", "a stream is too large")
    return data


def _same_xmp(old: Any, new: Any) -> bool:
    """The two XMP packets say the same, apart from the dates and tool names writers update on every save."""
    if not (isinstance(old, Stream) and isinstance(new, Stream)):
        return False
    if {k: v for k, v in old.dict.items() if k != N("/Length")} != {
        k: v for k, v in new.dict.items() if k != N("/Length")
    }:
        return False
    try:
        return _xmp_canonical(_stream_data(old)) == _xmp_canonical(_stream_data(new))
    except (etree.XMLSyntaxError, ValueError):
        return False


def _xmp_canonical(data: bytes) -> bytes:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    root = etree.fromstring(data.strip(), parser)
    for el in list(root.iter()):
        if not isinstance(el.tag, str):
            continue
        for attr in [a for a in el.attrib if a in _XMP_VOLATILE]:
            del el.attrib[attr]
        if el.tag in _XMP_VOLATILE and el.getparent() is not None:
            el.getparent().remove(el)
    return bytes(etree.tostring(root, method="c14n"))
