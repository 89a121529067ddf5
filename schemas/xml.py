"""The canonical XML form of a document, and hardened parsing of it.

Canonical means: UTF-8, no XML declaration variations, no insignificant whitespace, elements in the model's
field order, one element per list item, absent values omitted, dates ISO 8601, decimals as written. The same
document always gives the same bytes, so its hash can be sealed in the QR code and logged.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any

from lxml import etree
from pydantic import BaseModel

from schemas.common import SchemaError, ValidationProblem

NAMESPACES = {
    "transcript": "urn:sealtrail:hocba:1",
    "diploma": "urn:sealtrail:vanbang:1",
    "copy": "urn:sealtrail:bansao:1",
    "translation": "urn:sealtrail:bandich:1",
}
ROOTS = {"transcript": "hocba", "diploma": "vanbang", "copy": "bansao", "translation": "bandich"}
MAX_XML_BYTES = 5 * 1024 * 1024
LIST_ITEM = "item"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, date | Decimal | int | str):
        return value.isoformat() if isinstance(value, date) else str(value)
    raise TypeError(f"cannot write {type(value).__name__} to XML")


def _append(parent: etree._Element, ns: str, name: str, value: Any) -> None:
    if value is None:
        return
    el = etree.SubElement(parent, f"{{{ns}}}{name}")
    if isinstance(value, BaseModel):
        for field in type(value).model_fields:
            _append(el, ns, field, getattr(value, field))
    elif isinstance(value, tuple | list):
        for item in value:
            _append(el, ns, LIST_ITEM, item)
    else:
        el.text = _text(value)


def to_xml(doc: BaseModel) -> bytes:
    kind = doc.kind  # type: ignore[attr-defined]
    ns = NAMESPACES[kind]
    root = etree.Element(f"{{{ns}}}{ROOTS[kind]}", nsmap={None: ns})
    for field in type(doc).model_fields:
        if field != "kind":
            _append(root, ns, field, getattr(doc, field))
    # Canonical bytes: an XML declaration and exclusive C14N (empty elements as start+end tag, fixed attribute
    # and namespace order), so the same data always hashes the same, also after a round trip through a parser.
    body: bytes = etree.tostring(root, method="c14n", exclusive=True)
    return b"<?xml version='1.0' encoding='UTF-8'?>\n" + body


def secure_parser() -> etree.XMLParser:
    """No DTDs, no entities, no network, no huge trees."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
    )


def parse_xml_securely(data: bytes) -> etree._Element:
    if len(data) > MAX_XML_BYTES:
        raise SchemaError([ValidationProblem("", "tệp XML quá lớn / the XML file is too large")])
    try:
        tree = etree.fromstring(data, parser=secure_parser())
    except etree.XMLSyntaxError as exc:
        raise SchemaError([ValidationProblem("", f"XML không hợp lệ / malformed XML: {exc}")]) from exc
    docinfo = tree.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise SchemaError([ValidationProblem("", "XML có DOCTYPE bị từ chối / XML with a DOCTYPE is refused")])
    return tree


def _collect(el: etree._Element) -> Any:
    children = list(el)
    if not children:
        return el.text or ""
    if all(etree.QName(c).localname == LIST_ITEM for c in children):
        return [_collect(c) for c in children]
    return {etree.QName(c).localname: _collect(c) for c in children}


def from_xml(data: bytes) -> Any:
    """Parse an issued document's canonical XML back into a validated document. It is read as issued: the structure
    is validated, but its averages and levels are not re-judged, since a document signed under earlier rules (or
    before a rule's correction) must stay readable and verifiable as it was issued."""
    from schemas.parse import parse_document

    root = parse_xml_securely(data)
    kinds = {ROOTS[k]: k for k in ROOTS}
    qname = etree.QName(root)
    kind = kinds.get(qname.localname)
    if kind is None or qname.namespace != NAMESPACES[kind]:
        raise SchemaError([ValidationProblem("", "không phải học bạ, văn bằng hay bản sao / unknown document type")])
    data_dict = _collect(root)
    data_dict = data_dict if isinstance(data_dict, dict) else {}
    _fix_lists(data_dict, kind)
    if kind == "translation":  # never accepted as input (parse_document), only read back from a signed file
        return _translation(data_dict)
    return parse_document({"kind": kind, **data_dict}, judge=False)


def _translation(data: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    from schemas.parse import parse_document
    from schemas.translation import Translation

    for key in ("transcript", "diploma"):  # the original's data, read as it was issued
        if isinstance(data.get(key), dict):
            _fix_lists(data[key], key)
            data[key] = parse_document(data[key], judge=False)
    try:
        return Translation.model_validate({"kind": "translation", **data})
    except ValidationError as exc:
        raise SchemaError([ValidationProblem("", f"bản dịch sai cấu trúc / not a valid translation: {exc}")]) from exc


def _fix_lists(data: dict[str, Any], kind: str) -> None:
    """An empty list and a one-item list look alike in XML; restore the model's list fields."""
    if kind == "transcript":
        for year in data.get("years", []):
            for subject in year.get("subjects", []):
                for sem in ("hk1", "hk2"):
                    if isinstance(subject.get(sem), dict) and isinstance(subject[sem].get("tx"), str):
                        subject[sem]["tx"] = [subject[sem]["tx"]] if subject[sem]["tx"] else []
    for key in ("signatories", "years", "primary_years"):
        if data.get(key) == "":
            data[key] = []
