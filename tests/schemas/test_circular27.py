"""Circular 27/2020/TT-BGDĐT (grades 1–5): periodic tests by grade (Art. 7), required subjects, the final grade,
and the roll-out (a year before Circular 27 reached its grade is refused with the reason, never re-judged)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import schemas
from schemas.primary import mid_semester_tested
from schemas.primary import tested as has_periodic_test
from schemas.programme import regime


def _primary() -> dict[str, Any]:
    return copy.deepcopy(schemas.load_sample("transcript_primary"))


def _subject(data: dict[str, Any], grade: int, name: str) -> dict[str, Any]:
    year = next(y for y in data["primary_years"] if y["grade"] == grade)
    return next(s for s in year["subjects"] if s["subject"] == name)


def _problems(data: dict[str, Any]) -> str:
    with pytest.raises(schemas.SchemaError) as exc:
        schemas.parse_document(data)
    return str(exc.value)


@pytest.mark.parametrize(
    ("grade", "subject", "expected"),
    [
        (1, "Tiếng Việt", True),
        (2, "Toán", True),
        (2, "Ngoại ngữ 1", False),  # optional in grades 1–2, no periodic test
        (3, "Ngoại ngữ 1", True),
        (3, "Tin học và Công nghệ", True),
        (3, "Tự nhiên và Xã hội", False),
        (4, "Khoa học", True),
        (5, "Lịch sử và Địa lí", True),
        (5, "Đạo đức", False),
    ],
)
def test_art7_periodic_tests_by_grade(grade: int, subject: str, expected: bool) -> None:
    assert has_periodic_test(grade, subject) is expected


def test_art7_grade_3_foreign_language_and_informatics_tests_are_accepted_and_required() -> None:
    doc = schemas.parse_document(_primary())
    grade3 = {s.subject: s for s in doc.primary_years[2].subjects}
    assert grade3["Ngoại ngữ 1"].year_score is not None and grade3["Tin học và Công nghệ"].year_score is not None
    data = _primary()
    del _subject(data, 3, "Ngoại ngữ 1")["year_score"]
    text = _problems(data)
    assert "lớp 3A2 (2022-2023), môn Ngoại ngữ 1: thiếu điểm kiểm tra định kì cuối năm (Thông tư 27, Điều 7)" in text


def test_art7_grades_4_and_5_have_mid_semester_tests_in_vietnamese_and_maths() -> None:
    assert mid_semester_tested(4, "Toán") and mid_semester_tested(5, "Tiếng Việt")
    assert not mid_semester_tested(3, "Toán") and not mid_semester_tested(5, "Khoa học")
    doc = schemas.parse_document(_primary())
    toan5 = next(s for s in doc.primary_years[4].subjects if s.subject == "Toán")
    assert toan5.mid_hk1_score is not None and toan5.mid_hk2_score is not None
    data = _primary()
    del _subject(data, 4, "Tiếng Việt")["mid_hk2_score"]
    _subject(data, 3, "Toán")["mid_hk1_score"] = 8
    _subject(data, 5, "Khoa học")["mid_hk1_score"] = 8
    text = _problems(data)
    assert "môn Tiếng Việt: thiếu điểm kiểm tra giữa học kì II (lớp 4, 5; Thông tư 27, Điều 7)" in text
    assert text.count("kiểm tra giữa học kì chỉ có ở môn Tiếng Việt, Toán lớp 4, 5") == 2


def test_a_missing_required_subject_is_refused_so_never_hoan_thanh_xuat_sac() -> None:
    data = _primary()
    year = data["primary_years"][1]
    year["subjects"] = [s for s in year["subjects"] if s["subject"] != "Đạo đức"]
    year["result"] = "Hoàn thành xuất sắc"
    assert "thiếu môn bắt buộc Đạo đức của chương trình lớp 2" in _problems(data)


def test_grade_5_completes_primary_and_records_no_promotion() -> None:
    doc = schemas.parse_document(_primary())
    assert doc.primary_years[4].completed_primary is True and doc.primary_years[4].promoted is None
    data = _primary()
    data["primary_years"][4]["promoted"] = True
    assert "lớp 5 là lớp cuối cấp: ghi 'hoàn thành chương trình tiểu học', không ghi 'được lên lớp'" in _problems(data)


def test_promotion_needs_a_completed_year() -> None:
    data = _primary()
    _subject(data, 2, "Toán")["year_level"] = "C"
    data["primary_years"][1]["promoted"] = True
    assert "ghi 'được lên lớp' nhưng kết quả là 'Chưa hoàn thành'" in _problems(data)


@pytest.mark.parametrize(
    ("grade", "year", "rules"),
    [(1, "2019-2020", "TT30"), (1, "2020-2021", "TT27"), (3, "2021-2022", "TT30"), (5, "2024-2025", "TT27")],
)
def test_circular_27_only_for_the_years_it_covers(grade: int, year: str, rules: str) -> None:
    assert regime(grade, year) == rules


def test_a_year_before_circular_27_is_refused_with_the_reason_not_re_judged() -> None:
    data = _primary()
    data["primary_years"][0]["school_year"] = "2019-2020"
    text = _problems(data)
    assert "năm học 2019-2020 lớp 1 đánh giá theo Thông tư 30/2014/TT-BGDĐT" in text
    assert "không đánh giá lại theo Thông tư 27" in text
