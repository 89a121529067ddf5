"""Circular 22/2021/TT-BGDĐT (grades 6–12), one test or more per clause: Art. 5–6 (programme, TX count), Art. 8
(year conduct), Art. 9 (comment subjects, "at least 6", the cl. 3 adjustment), Art. 12 (promotion), Art. 13–14
(re-tests, summer training), and the regime by school year (Circular 58/2011 years recorded as judged)."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

import schemas
from schemas.grading import (
    CONDUCT_YEAR,
    adjusted_level,
    base_level,
    conduct_year,
    learning_level,
    promotion,
    tx_count,
)
from schemas.programme import find_subject, programme, regime
from schemas.xml import from_xml, to_xml

D = Decimal
PASS5 = ["Đạt"] * 5


def _thcs() -> dict[str, Any]:
    return copy.deepcopy(schemas.load_sample("transcript_thcs"))


def _subject(year: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in year["subjects"] if s["subject"] == name)


def _set(year: dict[str, Any], name: str, value: str) -> None:
    """Every score of a scored subject set to ``value`` (so its averages are ``value``), computed fields cleared."""
    s = _subject(year, name)
    for sem in ("hk1", "hk2"):
        s[sem] = {"tx": [value] * len(s[sem]["tx"]), "gk": value, "ck": value}
    s.pop("year_average", None)
    _clear(year)


def _clear(year: dict[str, Any]) -> None:
    year["learning"] = {}
    year.pop("promoted", None)
    year.pop("learning_after_retest", None)


def _problems(data: dict[str, Any]) -> str:
    with pytest.raises(schemas.SchemaError) as exc:
        schemas.parse_document(data)
    return str(exc.value)


# Art. 9 cl. 3: the adjustment when one subject pulls the result down two levels or more
def test_art9_cl3_seven_at_8_5_and_one_at_4_is_kha_not_dat() -> None:
    scored = [D("8.5")] * 7 + [D("4.0")]
    assert base_level(scored, PASS5) == "Đạt"
    assert learning_level(scored, PASS5) == "Khá"


def test_art9_cl3_seven_at_8_5_and_one_at_3_is_dat_not_chua_dat() -> None:
    scored = [D("8.5")] * 7 + [D("3.0")]
    assert base_level(scored, PASS5) == "Chưa đạt"
    assert adjusted_level(scored, PASS5) == ("Đạt", "scored:7")


def test_art9_cl3_kha_pulled_to_chua_dat_becomes_dat() -> None:
    scored = [D("7.0")] * 7 + [D("3.0")]
    assert (base_level(scored, PASS5), learning_level(scored, PASS5)) == ("Chưa đạt", "Đạt")


def test_art9_cl3_one_comment_subject_at_chua_dat_pulls_tot_to_dat_adjusted_to_kha() -> None:
    scored = [D("9.0")] * 8
    comments = ["Đạt"] * 4 + ["Chưa đạt"]
    assert base_level(scored, comments) == "Đạt"
    assert adjusted_level(scored, comments) == ("Khá", "comment:4")


@pytest.mark.parametrize(
    ("scored", "expected"),
    [
        ([D("8.5")] * 7 + [D("6.0")], "Khá"),  # one level down only: no adjustment
        ([D("8.5")] * 6 + [D("4.0"), D("4.0")], "Đạt"),  # two subjects pull it down: no adjustment
        ([D("6.0")] * 7 + [D("3.0")], "Chưa đạt"),  # would be Đạt without it: not Tốt or Khá, no adjustment
    ],
)
def test_art9_cl3_applies_only_to_one_subject_and_two_levels(scored: list[Decimal], expected: str) -> None:
    assert learning_level(scored, PASS5) == expected


def test_art9_cl3_the_school_enters_kha_and_it_is_accepted_dat_is_refused_with_the_reason() -> None:
    data = _thcs()
    year = data["years"][3]
    for s in year["subjects"]:
        if s["assessment"] == "scored":
            _set(year, s["subject"], "8.5")
    _set(year, "Toán", "4.0")
    year["learning"] = {"hk1": "Khá", "hk2": "Khá", "year": "Khá"}
    doc = schemas.parse_document(data)
    assert doc.years[3].learning.year == "Khá"
    year["learning"]["year"] = "Đạt"
    text = _problems(data)
    assert "kết quả học tập cả năm ghi 'Đạt' nhưng tính được 'Khá'" in text
    assert "Điều 9 khoản 3: chỉ do môn Toán" in text and "từ 'Đạt' lên 'Khá'" in text


# Art. 9 cl. 3 (a)–(c): "at least 6" is six subjects, never min(6, n)
def test_at_least_six_means_six_so_a_year_without_scored_subjects_is_not_tot() -> None:
    assert base_level([], PASS5) == "Chưa đạt"
    assert base_level([D("9.5")] * 5, PASS5) != "Tốt"
    assert base_level([D("9.5")] * 6, PASS5) == "Tốt"


def test_a_year_without_its_scored_subjects_is_refused_not_tot() -> None:
    data = _thcs()
    year = data["years"][0]
    year["subjects"] = [s for s in year["subjects"] if s["assessment"] == "comment"]
    year["learning"] = {"year": "Tốt"}
    text = _problems(data)
    assert "thiếu môn bắt buộc Toán của chương trình lớp 6" in text
    assert "kết quả học tập cả năm ghi 'Tốt' nhưng tính được 'Chưa đạt'" in text


# Art. 9 cl. 1: a comment subject's year level is its semester II level
def test_art9_cl1_comment_subject_year_level_is_the_hk2_level() -> None:
    data = _thcs()
    gdtc = _subject(data["years"][1], "Giáo dục thể chất")
    gdtc.update(hk1_level="Chưa đạt", hk2_level="Đạt", year_level="Chưa đạt")
    _clear(data["years"][1])
    text = _problems(data)
    assert "mức cả năm ghi 'Chưa đạt' nhưng theo Thông tư 22, Điều 9 khoản 1 là mức học kì II: 'Đạt'" in text
    del gdtc["year_level"]
    doc = schemas.parse_document(data)
    assert next(s for s in doc.years[1].subjects if s.subject == "Giáo dục thể chất").year_level == "Đạt"


# Art. 8: the year's conduct from HK I and HK II
@pytest.mark.parametrize(
    ("hk1", "hk2", "year"),
    [
        ("Tốt", "Tốt", "Tốt"),
        ("Khá", "Tốt", "Tốt"),
        ("Đạt", "Tốt", "Khá"),
        ("Chưa đạt", "Tốt", "Khá"),
        ("Đạt", "Khá", "Khá"),
        ("Chưa đạt", "Khá", "Đạt"),
        ("Tốt", "Đạt", "Khá"),
        ("Khá", "Đạt", "Đạt"),
        ("Chưa đạt", "Đạt", "Đạt"),
        ("Tốt", "Chưa đạt", "Chưa đạt"),
    ],
)
def test_art8_year_conduct_table(hk1: str, hk2: str, year: str) -> None:
    assert conduct_year(hk1, hk2) == year


def test_art8_every_pair_is_decided_and_a_better_hk2_never_lowers_the_year() -> None:
    order = ("Tốt", "Khá", "Đạt", "Chưa đạt")
    for hk1 in order:
        years = [order.index(conduct_year(hk1, hk2)) for hk2 in order]
        assert years == sorted(years)
    assert len(CONDUCT_YEAR) == 12  # the 4 HK II Chưa đạt pairs are Chưa đạt


def test_art8_year_conduct_tot_after_hk1_chua_dat_is_refused() -> None:
    data = _thcs()
    data["years"][2]["conduct"] = {"hk1": "Chưa đạt", "hk2": "Tốt", "year": "Tốt"}
    text = _problems(data)
    assert "kết quả rèn luyện cả năm ghi 'Tốt' nhưng với học kì I 'Chưa đạt' và học kì II 'Tốt' là 'Khá'" in text
    assert "Điều 8" in text


# Art. 12: promotion
def _failing_year() -> dict[str, Any]:
    """Grade 7 with Toán and Ngữ văn at 3,0: two subjects below 3,5, so Chưa đạt (no adjustment)."""
    data = _thcs()
    year = data["years"][1]
    _set(year, "Toán", "3.0")
    _set(year, "Ngữ văn", "3.0")
    return data


def test_art12_chua_dat_with_promoted_true_is_refused() -> None:
    data = _failing_year()
    data["years"][1]["promoted"] = True
    text = _problems(data)
    assert "ghi 'được lên lớp' nhưng kết quả học tập 'Chưa đạt'" in text and "Điều 12" in text
    del data["years"][1]["promoted"]
    assert schemas.parse_document(data).years[1].promoted is False


@pytest.mark.parametrize(("sessions", "promoted"), [(45, True), (46, False)])
def test_art12_at_most_45_sessions_absent(sessions: int, promoted: bool) -> None:
    data = _thcs()
    data["years"][0]["sessions_absent"] = sessions
    data["years"][0].pop("promoted")
    assert schemas.parse_document(data).years[0].promoted is promoted
    assert promotion("Tốt", "Tốt", sessions) is promoted
    if not promoted:
        data["years"][0]["promoted"] = True
        assert "nghỉ 46 buổi (quá 45 buổi)" in _problems(data)


def test_art12_absences_are_sessions_not_days() -> None:
    data = _thcs()
    data["years"][0]["days_absent"] = 3
    assert "ghi số buổi nghỉ (sessions_absent), không ghi số ngày" in _problems(data)


def test_art12_final_grades_record_no_promotion() -> None:
    data = _thcs()
    assert schemas.parse_document(data).years[3].promoted is None
    data["years"][3]["promoted"] = True
    assert "lớp 9 là lớp cuối cấp trung học cơ sở: không xét 'được lên lớp'" in _problems(data)


# Art. 13: re-tests
def test_art13_retests_are_recorded_with_the_result_after_them() -> None:
    data = _failing_year()
    year = data["years"][1]
    _subject(year, "Toán")["retest_score"] = "6.5"
    _subject(year, "Ngữ văn")["retest_score"] = "5.0"
    year["promoted"] = True
    doc = schemas.parse_document(data)
    y = doc.years[1]
    assert y.learning.year == "Chưa đạt"  # the year's result stays as judged
    assert y.learning_after_retest in ("Khá", "Đạt") and y.promoted is True
    year["learning_after_retest"] = "Tốt"
    assert "kết quả học tập sau kiểm tra lại ghi 'Tốt' nhưng tính được" in _problems(data)


def test_art13_only_failed_subjects_of_a_failed_year_are_retested() -> None:
    data = _failing_year()
    _subject(data["years"][1], "Tin học")["retest_score"] = "9.0"
    assert "chỉ kiểm tra lại môn có điểm trung bình cả năm dưới 5,0 hoặc mức Chưa đạt" in _problems(data)
    data = _thcs()
    _subject(data["years"][0], "Toán")["retest_score"] = "9.0"
    assert "chỉ kiểm tra lại khi kết quả học tập cả năm Chưa đạt" in _problems(data)


# Art. 14: summer training
def test_art14_summer_training_is_recorded_and_decides_promotion() -> None:
    data = _thcs()
    year = data["years"][0]
    year["conduct"] = {"hk1": "Đạt", "hk2": "Chưa đạt"}
    year.pop("promoted")
    assert schemas.parse_document(data).years[0].promoted is False
    year.update(summer_training="Lao động vệ sinh trường 10 buổi", conduct_after_summer="Đạt", promoted=True)
    doc = schemas.parse_document(data)
    assert doc.years[0].conduct.year == "Chưa đạt" and doc.years[0].conduct_after_summer == "Đạt"
    assert doc.years[0].promoted is True


def test_art14_no_summer_training_after_a_passed_year() -> None:
    data = _thcs()
    data["years"][0]["conduct_after_summer"] = "Đạt"
    assert "chỉ rèn luyện trong hè khi kết quả rèn luyện cả năm Chưa đạt" in _problems(data)


# Art. 5–6: the grade programme, assessment kinds and TX counts
@pytest.mark.parametrize(("periods", "count"), [(35, 2), (36, 3), (52, 3), (70, 3), (71, 4), (105, 4), (140, 4)])
def test_art6_tx_count_from_periods(periods: int, count: int) -> None:
    assert tx_count(periods) == count


def test_programmes_exist_for_every_grade_and_match_the_periods() -> None:
    for grade in range(1, 13):
        names = [s.name for s in programme(grade)]
        assert names and len(names) == len(set(names)), grade
    periods = {s.name: s.periods for s in programme(8)}
    assert periods["Ngữ văn"] == periods["Toán"] == periods["Khoa học tự nhiên"] == 140
    assert periods["Ngoại ngữ 1"] == periods["Lịch sử và Địa lí"] == 105
    assert periods["Giáo dục công dân"] == periods["Tin học"] == 35
    assert find_subject(11, "Vật lý") == find_subject(11, "vật lí")
    assert find_subject(7, "Hoạt động trải nghiệm hướng nghiệp") is not None


def test_tx_counts_follow_the_periods() -> None:
    data = _thcs()
    gdcd = _subject(data["years"][0], "Giáo dục công dân")
    gdcd["hk1"]["tx"].append("8.0")
    gdcd["hk1"].pop("average")
    toan = _subject(data["years"][0], "Toán")
    toan["hk2"]["tx"].pop()
    toan["hk2"].pop("average")
    _clear(data["years"][0])
    text = _problems(data)
    assert "môn Giáo dục công dân, học kì I: có 3 điểm đánh giá thường xuyên; môn này cần đúng 2" in text
    assert "môn Toán, học kì II: có 3 điểm đánh giá thường xuyên; môn này cần đúng 4" in text


def test_subjects_are_checked_against_the_programme() -> None:
    data = _thcs()
    year = data["years"][0]
    year["subjects"].append(copy.deepcopy(_subject(year, "Toán")))
    year["subjects"] = [s for s in year["subjects"] if s["subject"] != "Tin học"]
    _subject(year, "Âm nhạc")["assessment"] = "scored"
    year["subjects"].append({"subject": "Thiên văn học", "assessment": "comment", "hk1_level": "Đạt",
                             "hk2_level": "Đạt"})  # fmt: skip
    _clear(year)
    text = _problems(data)
    assert "môn Toán ghi hai lần" in text
    assert "thiếu môn bắt buộc Tin học của chương trình lớp 6" in text
    assert "môn Âm nhạc: môn này đánh giá bằng nhận xét (Thông tư 22, Điều 5)" in text
    assert "môn 'Thiên văn học' không có trong chương trình lớp 6" in text


def test_upper_secondary_needs_four_electives() -> None:
    data = copy.deepcopy(schemas.load_sample("transcript_thpt"))
    year = data["years"][0]
    year["subjects"] = [s for s in year["subjects"] if s["subject"] != "Sinh học"]
    _clear(year)
    assert "có 3 môn lựa chọn; chương trình lớp 10 cần đúng 4" in _problems(data)


# The regime by school year
@pytest.mark.parametrize(
    ("grade", "year", "rules"),
    [(6, "2020-2021", "TT58"), (6, "2021-2022", "TT22"), (7, "2021-2022", "TT58"), (10, "2022-2023", "TT22"),
     (9, "2023-2024", "TT58"), (9, "2024-2025", "TT22"), (12, "2023-2024", "TT58"), (12, "2024-2025", "TT22")],
)  # fmt: skip
def test_the_regime_follows_the_roll_out(grade: int, year: str, rules: str) -> None:
    assert regime(grade, year) == rules


def _legacy() -> dict[str, Any]:
    """The THPT sample, moved one year earlier: grade 10 in 2021-2022 was judged under Circular 58/2011."""
    data = copy.deepcopy(schemas.load_sample("transcript_thpt"))
    y = data["years"][0]
    y["school_year"] = "2021-2022"
    y["learning"] = {"hk1": "Khá", "hk2": "Giỏi", "year": "Giỏi"}
    y["conduct"] = {"hk1": "Tốt", "hk2": "Tốt", "year": "Tốt"}
    return data


def test_a_circular_58_year_is_recorded_as_judged_never_re_judged() -> None:
    doc = schemas.parse_document(_legacy())
    assert doc.years[0].learning.year == "Giỏi"  # Circular 22 would compute another level from these scores
    assert doc.years[1].learning.year in ("Tốt", "Khá")


def test_circular_22_levels_in_a_circular_58_year_and_the_reverse_are_refused() -> None:
    data = _legacy()
    data["years"][0]["learning"]["year"] = "Đạt"
    data["years"][1]["conduct"]["year"] = "Trung bình"
    text = _problems(data)
    assert "học lực cả năm ghi 'Đạt': năm học này lớp 10 đánh giá theo Thông tư 58/2011/TT-BGDĐT" in text
    assert "kết quả rèn luyện cả năm ghi 'Trung bình': năm học 2023-2024 lớp 11 đánh giá theo Thông tư 22" in text


def test_messages_use_decimal_commas_and_no_python_text() -> None:
    data = _thcs()
    toan = _subject(data["years"][0], "Toán")
    toan["year_average"] = str(Decimal(toan["year_average"]) + Decimal("0.1"))
    text = _problems(data)
    assert "điểm trung bình cả năm ghi" in text and "," in text.split("ghi ")[1][:4]
    for python in ("String should", "Input should", "invalid literal", "Traceback", "validation error"):
        assert python not in text


def test_issued_documents_are_read_as_issued() -> None:
    """A document signed before these rules (TX counts 3 everywhere, absences in days) stays readable: from_xml
    validates the structure and never re-judges it."""
    data = _thcs()
    gdcd = _subject(data["years"][0], "Giáo dục công dân")
    gdcd["hk1"]["tx"].append("8.0")
    data["years"][0]["days_absent"] = 2
    old = schemas.Transcript.model_validate(data)
    with pytest.raises(schemas.SchemaError):
        schemas.parse_document(data)
    assert from_xml(to_xml(old)) == old


def test_structural_errors_are_said_in_vietnamese_with_english_beside() -> None:
    data = _thcs()
    data["holder"]["birth_date"] = "không rõ"
    data["years"][0]["learning"]["year"] = "Xuất sắc"
    data["years"][0]["subjects"][0]["hk1"]["gk"] = "abc"
    text = _problems(data)
    assert "holder.birth_date: không phải ngày (năm-tháng-ngày, ví dụ 2010-03-14) (giá trị: 'không rõ')" in text
    assert "không phải một giá trị cho phép: 'Tốt'" in text and "hoặc 'Kém'" in text
    assert "hk1.gk: không phải số (ví dụ 7,5) (giá trị: 'abc') / not a number" in text
    for python in ("Input should", "String should", "Field required", "valid date"):
        assert python not in text


def test_art9_cl3_adjustment_keeps_better_scores_never_worse() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    scores = st.decimals(min_value=0, max_value=10, places=1)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(scores, min_size=6, max_size=10), st.integers(0, 2), st.integers(0, 9))
    def check(avgs: list[Decimal], fails: int, i: int) -> None:
        comments = ["Chưa đạt"] * fails + ["Đạt"] * (4 - fails)
        order = ("Tốt", "Khá", "Đạt", "Chưa đạt")
        level, base = learning_level(avgs, comments), base_level(avgs, comments)
        assert order.index(level) in (order.index(base), order.index(base) - 1)  # at most one level up
        better = [*avgs]
        better[i % len(avgs)] = min(better[i % len(avgs)] + 1, Decimal(10))
        assert order.index(learning_level(better, comments)) <= order.index(level)

    check()
