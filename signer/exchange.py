"""`sealtrail exchange`: push a school's signed transcripts upward as data-exchange records, pull records into
transcripts. The record shape and its versions/CANCEL rules are in schemas/exchange.py (unofficial lead).

Versions come from the registry: the n-th issued document of a học bạ (same madinhdanhhocba) is version n
(NEW for the first, UPDATE after); a revoked or superseded newest document is a CANCEL one version later; a school
year that a newer version no longer has is CANCELled too.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from registry.records import DocumentRecord, DocumentStatus
from schemas.exchange import ApplyResult, apply_records, parse_time, records_to_transcripts, transcript_to_records
from schemas.transcript import Transcript
from schemas.xml import from_xml
from signer.host import Installation
from signer.xades import signed_data


def _documents(dep: Installation, school_code: str) -> list[tuple[DocumentRecord, Transcript]]:
    with Session(dep.engine) as session:
        rows = session.exec(
            select(DocumentRecord)
            .where(DocumentRecord.school_code == school_code, DocumentRecord.kind == "transcript")
            .where(DocumentRecord.status != DocumentStatus.PENDING.value)
            .order_by(DocumentRecord.issued_at)  # type: ignore[arg-type]
        ).all()
        for row in rows:
            session.expunge(row)
    blobs = dep.blobs
    out = []
    for row in rows:
        assert row.sha256_xml is not None
        doc = from_xml(signed_data(blobs.get(row.sha256_xml, "xml")))
        if isinstance(doc, Transcript) and doc.level != "primary":
            out.append((row, doc))
    return out


def school_records(dep: Installation, school_code: str, since: datetime | None = None) -> list[dict[str, Any]]:
    """The school's records as they stand now, one per pupil and school year (newer than ``since`` if given)."""
    by_record: dict[str, list[tuple[DocumentRecord, Transcript]]] = defaultdict(list)
    for row, doc in _documents(dep, school_code):
        by_record[doc.record_id].append((row, doc))
    records: list[dict[str, Any]] = []
    for versions in by_record.values():
        n = len(versions)
        row, doc = versions[-1]
        issued = row.issued_at or datetime.now(UTC)
        if row.status == DocumentStatus.ISSUED.value:
            current = transcript_to_records(doc, event="NEW" if n == 1 else "UPDATE", version=n, updated=issued)
        else:
            changed = row.status_changed_at or issued
            current = transcript_to_records(doc, event="CANCEL", version=n + 1, updated=changed, status=row.status)
        records += current
        live = {r["idbanghi"] for r in current}
        dropped: dict[str, dict[str, Any]] = {}
        for old_row, old_doc in versions[:-1]:
            for r in transcript_to_records(old_doc, updated=old_row.issued_at or issued):
                if r["idbanghi"] not in live:
                    dropped[r["idbanghi"]] = r
        for r in dropped.values():
            records.append({**r, "sukien": "CANCEL", "phienban": n, "thoigiancapnhat": current[0]["thoigiancapnhat"]})
    if since is not None:
        records = [r for r in records if parse_time(r["thoigiancapnhat"]) >= since]
    return sorted(records, key=lambda r: (r["thoigiancapnhat"], r["idbanghi"]))


def read_records(path: Path) -> list[Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    records = data.get("records") if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise ValueError('tệp phải là một mảng bản ghi hoặc {"records": [...]} / expected a list of records')
    return records


def write_json(path: Path, data: Any) -> None:
    """Written to a temporary file first and then renamed, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def import_records(records_file: Path, state_file: Path, out_dir: Path) -> tuple[ApplyResult, list[Path]]:
    """Apply a batch to the held state, then (re)write one transcript JSON per live học bạ into ``out_dir`` and
    remove those whose every year was cancelled. A bad batch changes nothing (SchemaError, ValueError)."""
    state: dict[str, dict[str, Any]] = json.loads(state_file.read_text(encoding="utf-8")) if state_file.exists() else {}
    result = apply_records(state, read_records(records_file))
    transcripts = records_to_transcripts(state.values())  # validated before anything is written
    write_json(state_file, state)
    written = []
    live = set()
    for doc in transcripts:
        path = out_dir / f"{doc.record_id}.json"
        write_json(path, doc.model_dump(mode="json"))
        written.append(path)
        live.add(doc.record_id)
    for record in state.values():
        stale = out_dir / f"{record['madinhdanhhocba']}.json"
        if record["madinhdanhhocba"] not in live and stale.exists():
            stale.unlink()
    return result, written
