"""Turning input (JSON text, bytes or dicts) into validated documents, reporting every problem at once."""

from __future__ import annotations

import json
import re
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


# Pydantic's error types said as a teacher reads them (Vietnamese), with our own English beside; never its text.
_SAID = {
    "missing": ("thiếu", "missing"),
    "extra_forbidden": ("trường không có trong mẫu dữ liệu", "not a field of this document"),
    "string_pattern_mismatch": ("không đúng dạng", "not in the expected form"),
    "string_too_short": ("trống", "empty"),
    "literal_error": ("không phải một giá trị cho phép", "not one of the allowed values"),
    "enum": ("không phải một giá trị cho phép", "not one of the allowed values"),
    "decimal_parsing": ("không phải số (ví dụ 7,5)", "not a number"),
    "decimal_type": ("không phải số (ví dụ 7,5)", "not a number"),
    "int_parsing": ("không phải số nguyên", "not a whole number"),
    "int_type": ("không phải số nguyên", "not a whole number"),
    "int_from_float": ("không phải số nguyên", "not a whole number"),
    "bool_parsing": ("không phải có/không (true/false)", "not true/false"),
    "date_from_datetime_parsing": ("không phải ngày (năm-tháng-ngày, ví dụ 2010-03-14)", "not a date (YYYY-MM-DD)"),
    "date_parsing": ("không phải ngày (năm-tháng-ngày, ví dụ 2010-03-14)", "not a date (YYYY-MM-DD)"),
    "date_type": ("không phải ngày (năm-tháng-ngày, ví dụ 2010-03-14)", "not a date (YYYY-MM-DD)"),
    "greater_than_equal": ("nhỏ hơn mức cho phép", "below the allowed minimum"),
    "less_than_equal": ("lớn hơn mức cho phép", "above the allowed maximum"),
    "too_short": ("thiếu phần tử", "too few items"),
    "string_type": ("không phải chữ", "not text"),
    "model_type": ("sai cấu trúc", "not the expected structure"),
    "tuple_type": ("phải là một danh sách", "must be a list"),
    "list_type": ("phải là một danh sách", "must be a list"),
}


def _problems(exc: ValidationError) -> list[ValidationProblem]:
    out = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        vi, en = _SAID.get(err["type"], ("không hợp lệ", "not valid"))
        if err["type"] == "value_error":  # our own validators' messages (schemas.transcript) are already ours
            vi, en = "không hợp lệ", str(err.get("ctx", {}).get("error", "not valid"))
        allowed = err.get("ctx", {}).get("expected")
        if allowed:
            vi, en = f"{vi}: {allowed.replace(' or ', ' hoặc ')}", f"{en}: {allowed}"
        shown = str(err.get("input"))[:60] if err["type"] != "missing" else ""
        if re.fullmatch(r"-?\d+\.\d+", shown):
            shown = shown.replace(".", ",")
        value = f" (giá trị: '{shown}')" if shown else ""
        out.append(ValidationProblem(where, f"{vi}{value} / {en}"))
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
