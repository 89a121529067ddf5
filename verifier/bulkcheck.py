"""Bulk checks behind ``POST /api/v1/verify/bulk``: a ZIP of signed files or a CSV of look-ups, answered as JSON,
CSV, or (when the client sends ``Accept: application/x-ndjson``) a stream of JSON lines with progress, so an
admissions office uploading thousands of files sees each verdict as it is made.

Stream lines (one JSON object each): ``{"type": "start", "kind": "zip"|"csv", "total": N}``, then one
``{"type": "item", "done": i, "total": N, ...}`` per file or row (the same fields as the JSON answer's items), then
``{"type": "summary", "count": N, "verdicts": {...}, "receipt_xml": "..."}``. A problem found half-way (a ZIP
entry that unpacks too large) ends the stream with ``{"type": "error", "message": "..."}`` and no receipt.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from verifier.bulk import BulkError, BulkItem, Check, item_json, iter_zip, open_zip, to_csv
from verifier.gate import AttemptGate
from verifier.host import Installation
from verifier.lookup import LookupResult, lookup_rows, parse_lookup_csv, result_json, results_csv

NDJSON = "application/x-ndjson"
SignReceipt = Callable[[list[BulkItem]], bytes | None]


def is_zip(data: bytes, filename: str = "") -> bool:
    """A ZIP by its magic bytes, or by its name (so a damaged ZIP gets a ZIP error, not a CSV one)."""
    return data[:2] == b"PK" or filename.lower().endswith(".zip")


def receipt_item(result: LookupResult) -> BulkItem:
    """A look-up row as a receipt entry: its line and number, and a hash in place of the data sent."""
    return BulkItem(
        f"dòng {result.line}: {result.number}", result.row_digest, "csv-row", result.verdict, result.reasons
    )


@dataclass
class BulkJob:
    """A parsed upload, ready to be checked item by item (parsing errors are raised before anything is checked)."""

    kind: str  # "zip" or "csv"
    total: int
    items: Iterator[tuple[dict[str, Any], BulkItem, LookupResult | None]]


def prepare(
    dep: Installation, data: bytes, check: Check, filename: str = "", gate: AttemptGate | None = None
) -> BulkJob:
    """Raise BulkError or LookupCsvError for an upload that cannot be checked at all. ``gate`` counts look-up rows
    that do not match, per document number (verifier.lookup.lookup_rows)."""
    if is_zip(data, filename):
        archive, entries, budget = open_zip(data)

        def zip_items() -> Iterator[tuple[dict[str, Any], BulkItem, LookupResult | None]]:
            for item in iter_zip(archive, entries, check, budget):
                yield item_json(item), item, None

        return BulkJob("zip", len(entries), zip_items())
    rows = parse_lookup_csv(data)
    from verifier.checking import prove

    def csv_items() -> Iterator[tuple[dict[str, Any], BulkItem, LookupResult | None]]:
        for result in lookup_rows(dep.engine, dep.lookup_key, rows, lambda r: prove(dep, r), gate):
            yield result_json(result), receipt_item(result), result

    return BulkJob("csv", len(rows), csv_items())


def run(job: BulkJob) -> tuple[list[dict[str, Any]], list[BulkItem], list[LookupResult]]:
    out, items, results = [], [], []
    for js, item, result in job.items:
        out.append(js)
        items.append(item)
        if result is not None:
            results.append(result)
    return out, items, results


def as_csv(job: BulkJob, items: list[BulkItem], results: list[LookupResult]) -> str:
    return results_csv(results) if job.kind == "csv" else to_csv(items)


def stream(job: BulkJob, sign_receipt: SignReceipt) -> Iterator[bytes]:
    """NDJSON lines: start, one per item, then the summary with the signed receipt (or an error line)."""

    def line(obj: dict[str, Any]) -> bytes:
        return json.dumps(obj, ensure_ascii=False).encode() + b"\n"

    yield line({"type": "start", "kind": job.kind, "total": job.total})
    items: list[BulkItem] = []
    try:
        for done, (js, item, _result) in enumerate(job.items, start=1):
            items.append(item)
            yield line({"type": "item", "done": done, "total": job.total, **js})
    except BulkError as exc:
        yield line({"type": "error", "message": str(exc)})
        return
    receipt = sign_receipt(items)
    yield line(
        {
            "type": "summary",
            "kind": job.kind,
            "count": len(items),
            "verdicts": dict(Counter(i.verdict for i in items)),
            "receipt_xml": receipt.decode("utf-8") if receipt else None,
        }
    )
