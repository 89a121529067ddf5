"""Data-exchange records carry what the law adds to a học bạ (nothing lost silently): sessions absent, awards, the
deputy who confirmed a year, re-tests and the result after them, summer training, the THCS completion, cover data,
and years judged under Circular 58/2011."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import schemas
from schemas.exchange import records_to_transcripts, table, transcript_to_records

T0 = datetime(2026, 6, 15, 3, 0, tzinfo=UTC)


def _round_trip(data: dict) -> None:  # type: ignore[type-arg]
    doc = schemas.parse_document(data)
    assert isinstance(doc, schemas.Transcript)
    records = transcript_to_records(doc, updated=T0)
    assert {k for r in records for k in r} <= set(table()["fields"])
    assert records_to_transcripts(records) == [doc]


def test_completion_awards_deputy_and_cover_data_survive_the_exchange() -> None:
    data = schemas.load_sample("transcript_thcs_2026")
    records = transcript_to_records(schemas.parse_document(data), updated=T0)  # type: ignore[arg-type]
    assert records[0]["xacnhanhoanthanhthcs"]["soquyetdinh"] == "112/QĐ-THCSND"
    assert records[2]["khenthuong"] == "Học sinh Giỏi" and records[2]["chucvuhieutruong"].startswith("KT.")
    assert records[0]["hotencha"] == "Hoàng Văn Minh" and "sobuoinghi" in records[0]
    _round_trip(data)


def test_retests_and_summer_training_survive_the_exchange() -> None:
    data = copy.deepcopy(schemas.load_sample("transcript_thcs"))
    year = data["years"][1]
    for name in ("Toán", "Ngữ văn"):
        s = next(s for s in year["subjects"] if s["subject"] == name)
        for sem in ("hk1", "hk2"):
            s[sem] = {"tx": ["3.0"] * len(s[sem]["tx"]), "gk": "3.0", "ck": "3.0"}
        s.pop("year_average")
        s["retest_score"] = "6.0"
    year["learning"] = {}
    year["conduct"] = {"hk1": "Đạt", "hk2": "Chưa đạt"}
    year.update(summer_training="Lao động công ích 10 buổi", conduct_after_summer="Đạt", promoted=True)
    _round_trip(data)


def test_a_circular_58_year_survives_the_exchange() -> None:
    data = copy.deepcopy(schemas.load_sample("transcript_thpt"))
    data["years"][0]["school_year"] = "2021-2022"
    data["years"][0]["learning"] = {"hk1": "Khá", "hk2": "Giỏi", "year": "Giỏi"}
    _round_trip(data)
