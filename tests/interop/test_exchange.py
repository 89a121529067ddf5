"""Data-exchange records: our transcript → records → our transcript unchanged; versions, CANCEL, stale and
malformed batches; export from the registry (NEW → UPDATE on re-issue → CANCEL on revocation) and the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

import schemas
from registry.records import DocumentStatus
from schemas.exchange import apply_records, records_to_transcripts, table, transcript_to_records
from signer.exchange import school_records
from tests.interop.conftest import Issued

T0 = datetime(2025, 6, 5, 3, 0, tzinfo=UTC)


def _sample() -> schemas.Transcript:
    doc = schemas.parse_document(schemas.load_sample("transcript_thcs"))
    assert isinstance(doc, schemas.Transcript)
    return doc


def test_a_transcript_survives_the_round_trip_through_exchange_records() -> None:
    doc = _sample()
    records = transcript_to_records(doc, updated=T0)
    assert len(records) == len(doc.years) == 4
    first = records[0]
    assert first["sukien"] == "NEW" and first["phienban"] == 1 and first["thoigiancapnhat"] == "2025-06-05T10:00:00"
    assert first["madinhdanhhocba"] == doc.record_id and first["matruong"] == "01001503" and first["masogd"] == "01"
    assert first["macaphoc"] == "2" and first["makhoi"] == 6 and first["gioitinh"] == 2
    assert first["ketquahoctap"] == {"hocky1": "K", "hocky2": "K", "canam": "K"}
    assert first["ketquarenluyen"] == {"hocky1": "T", "hocky2": "T", "canam": "T"}
    assert first["duoclenlop"] is True
    emitted = {k for r in records for k in r}
    assert emitted <= set(table()["fields"]), emitted - set(table()["fields"])  # every field is in the mapping table
    assert len({r["idbanghi"] for r in records}) == 4
    back = records_to_transcripts(json.loads(json.dumps(records)))
    assert back == [doc]


def test_versions_replace_older_ones_and_cancel_withdraws_a_year() -> None:
    doc = _sample()
    state: dict[str, dict] = {}  # type: ignore[type-arg]
    result = apply_records(state, transcript_to_records(doc, updated=T0))
    assert len(result.applied) == 4
    # Version 2 of the 9th-grade year changes its conduct result; a replayed version 1 is ignored.
    v2 = transcript_to_records(doc, event="UPDATE", version=2, updated=datetime(2025, 7, 1, tzinfo=UTC))[3]
    v2["ketquarenluyen"] = {"hocky1": "T", "hocky2": "K", "canam": "K"}
    stale = transcript_to_records(doc, updated=T0)[3]
    result = apply_records(state, [v2, stale])
    assert result.applied == [v2["idbanghi"]] and len(result.ignored) == 1
    (rebuilt,) = records_to_transcripts(state.values())
    assert rebuilt.years[3].conduct.year == "Khá" and rebuilt.years[3].conduct.hk1 == "Tốt"
    cancel = {**v2, "sukien": "CANCEL", "phienban": 3, "thoigiancapnhat": "2025-08-01T08:00:00"}
    assert apply_records(state, [cancel]).cancelled == [v2["idbanghi"]]
    (rebuilt,) = records_to_transcripts(state.values())
    assert [y.grade for y in rebuilt.years] == [6, 7, 8]
    for record in transcript_to_records(doc, event="CANCEL", version=4, updated=datetime(2025, 9, 1, tzinfo=UTC)):
        apply_records(state, [record])
    assert records_to_transcripts(state.values()) == []


def test_a_malformed_batch_changes_nothing_and_says_where() -> None:
    doc = _sample()
    state: dict[str, dict] = {}  # type: ignore[type-arg]
    good, bad = transcript_to_records(doc, updated=T0)[:2]
    bad = {**bad, "sukien": "DELETE", "phienban": 0, "thoigiancapnhat": "05/06/2025", "madinhdanhhocba": "../x"}
    with pytest.raises(schemas.SchemaError) as err:
        apply_records(state, [good, bad])
    wheres = {p.where for p in err.value.problems}
    assert {"[1].sukien", "[1].phienban", "[1].thoigiancapnhat", "[1].madinhdanhhocba"} <= wheres
    assert state == {}
    wrong = {**good, "ketquahoctap": {"canam": "X"}}
    with pytest.raises(schemas.SchemaError, match="unknown result code"):
        records_to_transcripts([wrong])


def test_the_registry_exports_new_then_cancel_and_the_cli_round_trips(issued: Issued, tmp_path: Path) -> None:
    dep = issued.dep
    records = school_records(dep, "01001503")
    assert {r["sukien"] for r in records} == {"NEW"} and {r["phienban"] for r in records} == {1}
    assert {r["madinhdanhhocba"] for r in records} == {_sample().record_id}
    assert school_records(dep, "01") == []  # the diploma's school has no transcripts

    from sealtrail.cli import app

    env = {"SEALTRAIL_DATA_DIR": str(dep.settings.resolved_data_dir), "SEALTRAIL_DEV_PKI_URL": dep.settings.dev_pki_url}
    runner = CliRunner()
    out = tmp_path / "records.json"
    result = runner.invoke(app, ["exchange", "export", "--school", "01001503", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    pulled = tmp_path / "district"
    result = runner.invoke(app, ["exchange", "import", str(out), "--out", str(pulled)], env=env)
    assert result.exit_code == 0, result.output
    rebuilt = schemas.parse_document((pulled / f"{_sample().record_id}.json").read_bytes())
    assert rebuilt == _sample()
    again = runner.invoke(app, ["exchange", "import", str(out), "--out", str(pulled)], env=env)
    assert "ignored 4" in again.output  # the same versions twice change nothing

    issued.set_status(issued.transcript.doc_id, DocumentStatus.REVOKED, status_reason="Cấp nhầm")
    try:
        cancelled = school_records(dep, "01001503")
        assert {r["sukien"] for r in cancelled} == {"CANCEL"} and {r["phienban"] for r in cancelled} == {2}
        assert {r["trangthaithongtinhocba"] for r in cancelled} == {table()["record_status_codes"]["revoked"]}
        out.write_text(json.dumps(cancelled, ensure_ascii=False), encoding="utf-8")
        result = runner.invoke(app, ["exchange", "import", str(out), "--out", str(pulled)], env=env)
        assert result.exit_code == 0 and "cancelled 4" in result.output, result.output
        assert not (pulled / f"{_sample().record_id}.json").exists()
    finally:
        issued.set_status(issued.transcript.doc_id, DocumentStatus.ISSUED)
    bad = tmp_path / "bad.json"
    bad.write_text('[{"idbanghi": "x"}]', encoding="utf-8")
    result = runner.invoke(app, ["exchange", "import", str(bad), "--out", str(pulled)], env=env)
    assert result.exit_code == 1 and "sukien" in result.output


def test_a_reissued_transcript_is_an_update_with_the_next_version(issued: Issued) -> None:
    # The school issues the học bạ again, corrected (identical data would return the first document: never twice).
    original = _sample()
    first = original.years[0]
    more = first.model_copy(update={"sessions_absent": (first.sessions_absent or 0) + 1})
    corrected = original.model_copy(update={"years": (more, *original.years[1:])})
    issued.dep.make_issuer().issue(corrected)
    records = school_records(issued.dep, "01001503")
    assert {(r["sukien"], r["phienban"]) for r in records} == {("UPDATE", 2)}
    assert len(records) == 4
