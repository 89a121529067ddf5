"""Document data: Circular 22 arithmetic, teacher-readable problems, canonical XML, hostile XML."""

from __future__ import annotations

import copy
import unicodedata
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import schemas
from schemas.grading import base_level, round1, semester_average, year_average
from schemas.xml import from_xml, to_xml

scores = st.decimals(min_value=0, max_value=10, places=1)


@given(tx=st.lists(scores, min_size=2, max_size=4), gk=scores, ck=scores)
def test_semester_average_is_a_bounded_weighted_mean(tx: list[Decimal], gk: Decimal, ck: Decimal) -> None:
    avg = semester_average(tx, gk, ck)
    assert min([*tx, gk, ck]) <= avg <= max([*tx, gk, ck])
    assert avg == avg.quantize(Decimal("0.1"))
    assert semester_average(tx, gk, min(ck + Decimal("0.1"), Decimal(10))) >= avg


@given(hk1=scores, hk2=scores)
def test_year_average_weights_the_second_semester_double(hk1: Decimal, hk2: Decimal) -> None:
    assert year_average(hk1, hk2) == round1((hk1 + 2 * hk2) / 3)
    assert min(hk1, hk2) <= year_average(hk1, hk2) <= max(hk1, hk2)


def test_rounding_is_half_up() -> None:
    assert round1(Decimal("6.45")) == Decimal("6.5")
    assert semester_average([Decimal(8), Decimal(7)], Decimal(6), Decimal(9)) == Decimal("7.7")


@settings(max_examples=200)
@given(avgs=st.lists(scores, min_size=6, max_size=10), fails=st.integers(0, 2))
def test_levels_follow_the_thresholds(avgs: list[Decimal], fails: int) -> None:
    comments = ["Chưa đạt"] * fails + ["Đạt"] * (4 - fails)
    level = base_level(avgs, comments)  # before Art. 9 cl. 3's adjustment (tests/schemas/test_circular22.py)
    if level == "Tốt":
        assert fails == 0 and min(avgs) >= Decimal("6.5") and sum(a >= 8 for a in avgs) >= 6
    if level in ("Tốt", "Khá"):
        assert fails == 0 and min(avgs) >= 5
    if level == "Đạt":
        assert fails <= 1 and min(avgs) >= Decimal("3.5")
    better = [min(a + 1, Decimal(10)) for a in avgs]
    order = ("Tốt", "Khá", "Đạt", "Chưa đạt")
    assert order.index(base_level(better, comments)) <= order.index(level)


def test_samples_validate_and_names_stay_nfc() -> None:
    for name in ("transcript_thcs", "transcript_thpt", "diploma_thpt", "diploma_bachelor"):
        doc = schemas.parse_document(schemas.load_sample(name))
        assert unicodedata.is_normalized("NFC", doc.holder.full_name)
    doc = schemas.parse_document(schemas.load_sample("transcript_thcs"))
    assert doc.holder.full_name == "Nguyễn Thị Thu Hằng"


def test_a_contradicting_average_names_pupil_subject_and_numbers() -> None:
    data = copy.deepcopy(schemas.load_sample("transcript_thcs"))
    toan = next(s for s in data["years"][3]["subjects"] if s["subject"] == "Toán")
    given_avg = Decimal(toan["hk1"]["average"])
    toan["hk1"]["average"] = str(given_avg + Decimal("0.2"))
    data["years"][0]["subjects"][0]["hk2"]["gk"] = "11"
    with pytest.raises(schemas.SchemaError) as exc:
        schemas.parse_document(data)
    text = str(exc.value)
    assert "Nguyễn Thị Thu Hằng" in text and "môn Toán" in text and "học kì I" in text and "9A1" in text
    comma = str(given_avg).replace(".", ",")
    assert f"ghi {str(given_avg + Decimal('0.2')).replace('.', ',')} nhưng tính được {comma}" in text
    assert "GK = 11" in text
    assert len(exc.value.problems) >= 2


def test_decomposed_input_is_stored_composed() -> None:
    data = copy.deepcopy(schemas.load_sample("diploma_thpt"))
    data["holder"]["given_name"] = unicodedata.normalize("NFD", "Hằng")
    assert schemas.parse_document(data).holder.given_name == "Hằng"


@pytest.mark.parametrize(
    "name", ["transcript_thcs", "transcript_thpt", "transcript_primary", "diploma_thpt", "diploma_bachelor"]
)
def test_xml_round_trip_is_exact(name: str) -> None:
    doc = schemas.parse_document(schemas.load_sample(name))
    xml = to_xml(doc)
    assert from_xml(xml) == doc
    assert to_xml(from_xml(xml)) == xml
    assert f"<given_name>{doc.holder.given_name}</given_name>".encode() in xml


@pytest.mark.parametrize(
    "hostile",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><vanbang>&e;</vanbang>',
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><vanbang>&b;</vanbang>',
        b"<vanbang xmlns='urn:sealtrail:vanbang:1'><title>",
        b"<other/>",
    ],
)
def test_hostile_or_malformed_xml_is_refused_clearly(hostile: bytes) -> None:
    with pytest.raises(schemas.SchemaError):
        from_xml(hostile)
