"""The published XSD and JSON Schema files are what the models generate, and documents validate against them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import schemas
from schemas.publish import HERE, json_schema, validate_xml, xsd
from schemas.xml import to_xml

KINDS = ("transcript", "diploma", "copy")


@pytest.mark.parametrize("kind", KINDS)
def test_committed_schema_files_are_current(kind: str) -> None:
    assert (HERE / "xsd" / f"{kind}.xsd").read_bytes() == xsd(kind), "run: uv run python -m schemas.publish"
    committed = json.loads((HERE / "jsonschema" / f"{kind}.schema.json").read_text(encoding="utf-8"))
    assert committed == json_schema(kind)


@pytest.mark.parametrize("name", ["transcript_thcs", "transcript_thpt", "diploma_thpt", "diploma_bachelor"])
def test_canonical_xml_validates_against_the_xsd(name: str) -> None:
    validate_xml(to_xml(schemas.parse_document(schemas.load_sample(name))))


def test_the_xsd_rejects_a_malformed_score(tmp_path: Path) -> None:
    xml = to_xml(schemas.parse_document(schemas.load_sample("transcript_thcs")))
    bad = xml.replace(b"<gk>", b"<gk>abc", 1)
    with pytest.raises(schemas.SchemaError, match="gk"):
        validate_xml(bad)
    missing = xml.replace(b"<student_code>", b"<student_codex>", 1).replace(b"</student_code>", b"</student_codex>", 1)
    with pytest.raises(schemas.SchemaError):
        validate_xml(missing)
