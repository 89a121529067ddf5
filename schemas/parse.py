"""Turning input (JSON text, bytes or dicts) into validated documents, reporting every problem at once."""

from __future__ import annotations

import json
from importlib import resources
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from schemas.checks import check_diploma, complete_transcript
from schemas.common import SchemaError, ValidationProblem
from schemas.copy import CertifiedCopy
from schemas.diploma import Diploma
from schemas.transcript import Transcript

AnyDocument = Annotated[Transcript | Diploma | CertifiedCopy, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[Transcript | Diploma | CertifiedCopy] = TypeAdapter(AnyDocument)
MAX_INPUT_BYTES = 5 * 1024 * 1024


def _problems(exc: ValidationError) -> list[ValidationProblem]:
    out = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        out.append(ValidationProblem(where, f"{err['msg']} (giá trị: {str(err.get('input'))[:60]!r})"))
    return out


def parse_document(data: dict[str, Any] | bytes | str, *, judge: bool = True) -> Transcript | Diploma | CertifiedCopy:
    """Validate one document; transcripts get their averages and levels recomputed and judged by the law of each
    school year. ``judge=False`` reads an issued document as it was issued (its structure is validated, its content
    is never re-judged by rules newer than the document: see schemas.xml.from_xml)."""
    if isinstance(data, bytes | str):
        if len(data) > MAX_INPUT_BYTES:
            raise SchemaError([ValidationProblem("", "tệp quá lớn / the input is too large")])
        try:
            data = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SchemaError([ValidationProblem("", f"không phải JSON hợp lệ / not valid JSON: {exc}")]) from exc
    if not isinstance(data, dict):
        raise SchemaError([ValidationProblem("", "cần một đối tượng JSON / a JSON object is expected")])
    if data.get("kind") not in ("transcript", "diploma", "copy"):
        raise SchemaError([ValidationProblem("kind", "phải là transcript, diploma hoặc copy")])
    try:
        doc = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise SchemaError(_problems(exc)) from exc
    if isinstance(doc, Transcript) and judge:
        doc, problems = complete_transcript(doc)
        if problems:
            raise SchemaError(problems)
    if isinstance(doc, Diploma) and judge and (problems := check_diploma(doc)):
        raise SchemaError(problems)
    return doc


def load_sample(name: str) -> Any:
    """A packaged sample (schemas/samples/<name>.json): one document, or a list of them."""
    text = resources.files("schemas").joinpath("samples", f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)
