"""Published schemas: XSD (for the canonical XML) and JSON Schema, generated from the models and committed
under schemas/xsd/ and schemas/jsonschema/. Regenerate with `uv run python -m schemas.publish`.
"""

from __future__ import annotations

import json
import types
import typing
from datetime import date
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from lxml import etree
from pydantic import BaseModel, TypeAdapter

from schemas.common import SchemaError, ValidationProblem
from schemas.copy import CertifiedCopy
from schemas.diploma import Diploma
from schemas.transcript import Transcript
from schemas.translation import Translation
from schemas.xml import LIST_ITEM, NAMESPACES, ROOTS, parse_xml_securely

HERE = Path(__file__).parent
MODELS: dict[str, type[BaseModel]] = {
    "transcript": Transcript,
    "diploma": Diploma,
    "copy": CertifiedCopy,
    "translation": Translation,
}
XS = "http://www.w3.org/2001/XMLSchema"
_SIMPLE = {str: "xs:string", int: "xs:integer", Decimal: "xs:decimal", date: "xs:date", bool: "xs:boolean"}


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """(inner type, optional?) for X | None."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


class _XsdBuilder:
    def __init__(self, ns: str) -> None:
        self.root = etree.Element(f"{{{XS}}}schema", nsmap={"xs": XS, None: ns})
        self.root.set("targetNamespace", ns)
        self.root.set("elementFormDefault", "qualified")
        self.done: set[str] = set()

    def type_for(self, tp: Any) -> str:
        tp = typing.get_args(tp)[0] if typing.get_origin(tp) is typing.Annotated else tp
        if typing.get_origin(tp) is typing.Literal:
            name = "lit_" + "_".join(str(v) for v in typing.get_args(tp)).encode().hex()[:24]
            if name not in self.done:
                self.done.add(name)
                simple = etree.SubElement(self.root, f"{{{XS}}}simpleType", name=name)
                restriction = etree.SubElement(simple, f"{{{XS}}}restriction", base="xs:string")
                for v in typing.get_args(tp):
                    etree.SubElement(restriction, f"{{{XS}}}enumeration", value=str(v))
            return name
        if isinstance(tp, type) and issubclass(tp, Enum):
            return "xs:integer" if issubclass(tp, int) else "xs:string"
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            self.complex(tp)
            return tp.__name__
        if typing.get_origin(tp) in (tuple, list):
            item = self.type_for(typing.get_args(tp)[0])
            name = f"ListOf_{item.replace('xs:', '')}"
            if name not in self.done:
                self.done.add(name)
                ct = etree.SubElement(self.root, f"{{{XS}}}complexType", name=name)
                seq = etree.SubElement(ct, f"{{{XS}}}sequence")
                etree.SubElement(
                    seq, f"{{{XS}}}element", name=LIST_ITEM, type=item, minOccurs="0", maxOccurs="unbounded"
                )
            return name
        return _SIMPLE[tp]

    def fields(self, model: type[BaseModel], parent: etree._Element, skip: tuple[str, ...] = ()) -> None:
        seq = etree.SubElement(parent, f"{{{XS}}}sequence")
        hints = typing.get_type_hints(model, include_extras=True)
        for name, info in model.model_fields.items():
            if name in skip:
                continue
            tp, optional = _unwrap(hints[name])
            el = etree.SubElement(seq, f"{{{XS}}}element", name=name, type=self.type_for(tp))
            if optional or not info.is_required():
                el.set("minOccurs", "0")

    def complex(self, model: type[BaseModel]) -> None:
        if model.__name__ in self.done:
            return
        self.done.add(model.__name__)
        ct = etree.SubElement(self.root, f"{{{XS}}}complexType", name=model.__name__)
        self.fields(model, ct)


def xsd(kind: str) -> bytes:
    builder = _XsdBuilder(NAMESPACES[kind])
    top = etree.SubElement(builder.root, f"{{{XS}}}element", name=ROOTS[kind])
    ct = etree.SubElement(top, f"{{{XS}}}complexType")
    builder.fields(MODELS[kind], ct, skip=("kind",))
    return bytes(etree.tostring(builder.root, pretty_print=True, xml_declaration=True, encoding="UTF-8"))


def json_schema(kind: str) -> dict[str, Any]:
    schema = TypeAdapter(MODELS[kind]).json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"urn:sealtrail:schema:{kind}:1"
    return schema


def validate_xml(data: bytes) -> None:
    """Check XML against the published XSD of its kind; raise SchemaError listing every violation."""
    root = parse_xml_securely(data)
    kind = {v: k for k, v in ROOTS.items()}.get(etree.QName(root).localname)
    if kind is None:
        raise SchemaError([ValidationProblem("", "unknown document type")])
    schema = etree.XMLSchema(etree.fromstring((HERE / "xsd" / f"{kind}.xsd").read_bytes()))
    if not schema.validate(root):
        raise SchemaError([ValidationProblem(f"line {e.line}", e.message) for e in schema.error_log])


def main() -> None:
    (HERE / "xsd").mkdir(exist_ok=True)
    (HERE / "jsonschema").mkdir(exist_ok=True)
    for kind in MODELS:
        (HERE / "xsd" / f"{kind}.xsd").write_bytes(xsd(kind))
        text = json.dumps(json_schema(kind), ensure_ascii=False, indent=1, sort_keys=True) + "\n"
        (HERE / "jsonschema" / f"{kind}.schema.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
