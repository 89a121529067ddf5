"""Primary transcripts (Circular 27/2020): the four year-end results, recomputation, XML, rendering."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import schemas
from schemas.grading import PRIMARY_RESULTS, primary_result
from schemas.publish import validate_xml
from schemas.xml import from_xml, to_xml
from signer.render import Renderer

QR = "https://xacthuc.truong.edu.vn/v/GZBGIN62AOEODWRMZ3CBBPAWVY#ST1:6BFOXN*TS0BI$ZDFRH%20JCK"


@pytest.mark.parametrize(
    ("subjects", "traits", "scores", "expected"),
    [
        ("TTT", "TTTT", [9, 10], "Hoàn thành xuất sắc"),
        ("TTT", "TTTT", [8, 10], "Hoàn thành tốt"),  # a test score under 9
        ("TTT", "TTĐT", [10, 10], "Hoàn thành"),  # one competence only Đạt
        ("THT", "TTTT", [10, 10], "Hoàn thành"),  # one subject only Hoàn thành
        ("TTT", "TTTT", [6, 9], "Hoàn thành"),  # a score under 7
        ("TCT", "TTTT", [10, 10], "Chưa hoàn thành"),  # a subject not completed
        ("TTT", "TTCT", [10, 10], "Chưa hoàn thành"),  # a trait needing effort
        ("TTT", "TTTT", [4, 9], "Chưa hoàn thành"),  # a score under 5
    ],
)
def test_year_end_result_table(subjects: str, traits: str, scores: list[int], expected: str) -> None:
    assert primary_result(list(subjects), list(traits), scores) == expected


levels = st.lists(st.sampled_from("THC"), min_size=1, max_size=12)
trait_levels = st.lists(st.sampled_from(["T", "Đ", "C"]), min_size=1, max_size=13)
scores = st.lists(st.integers(1, 10), max_size=6)


@given(levels, trait_levels, scores, st.integers(0, 11), st.integers(0, 12))
def test_improving_anything_never_lowers_the_result(s: list[str], t: list[str], sc: list[int], i: int, j: int) -> None:
    result = primary_result(s, t, sc)
    better_s = [*s]
    better_s[i % len(s)] = {"C": "H", "H": "T", "T": "T"}[s[i % len(s)]]
    better_t = [*t]
    better_t[j % len(t)] = {"C": "Đ", "Đ": "T", "T": "T"}[t[j % len(t)]]
    better_sc = [min(10, x + 1) for x in sc]
    improved = primary_result(better_s, better_t, better_sc)
    assert PRIMARY_RESULTS.index(improved) <= PRIMARY_RESULTS.index(result)


@given(levels, trait_levels, scores)
def test_any_not_completed_subject_means_not_completed(s: list[str], t: list[str], sc: list[int]) -> None:
    assert primary_result([*s, "C"], t, sc) == "Chưa hoàn thành"


def test_the_sample_completes_the_primary_programme() -> None:
    doc = schemas.parse_document(schemas.load_sample("transcript_primary"))
    assert [y.grade for y in doc.primary_years] == [1, 2, 3, 4, 5]
    assert doc.primary_years[-1].completed_primary is True
    assert doc.primary_years[2].result == "Hoàn thành"
    assert doc.holder.full_name == "Đặng Ngọc Bảo Châu"


def test_a_contradicting_result_names_the_pupil_the_class_and_the_values() -> None:
    data = copy.deepcopy(schemas.load_sample("transcript_primary"))
    data["primary_years"][2]["result"] = "Hoàn thành xuất sắc"
    data["primary_years"][1]["completed_primary"] = True
    with pytest.raises(schemas.SchemaError) as exc:
        schemas.parse_document(data)
    text = str(exc.value)
    assert "Đặng Ngọc Bảo Châu" in text and "lớp 3A2" in text
    assert "ghi 'Hoàn thành xuất sắc' nhưng tính được 'Hoàn thành'" in text
    assert "lớp 2 chưa thể hoàn thành chương trình tiểu học" in text


def test_primary_and_secondary_years_do_not_mix() -> None:
    data = copy.deepcopy(schemas.load_sample("transcript_primary"))
    data["level"] = "lower_secondary"
    with pytest.raises(schemas.SchemaError):
        schemas.parse_document(data)


def test_xml_validates_against_the_published_xsd_and_round_trips() -> None:
    doc = schemas.parse_document(schemas.load_sample("transcript_primary"))
    xml = to_xml(doc)
    validate_xml(xml)
    assert from_xml(xml) == doc


def test_rendered_primary_transcript(tmp_path: Path) -> None:
    doc = schemas.parse_document(schemas.load_sample("transcript_primary"))
    rendered = Renderer().render(doc, doc_id="HB-2024-TEST", qr_payload=QR, xml=to_xml(doc))
    path = tmp_path / "hocba-tieuhoc.pdf"
    path.write_bytes(rendered.pdf)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    for phrase in ("HỌC BẠ", "TIỂU HỌC", "Đặng Ngọc Bảo Châu", "Hoàn thành chương trình tiểu học", "Tiếng Việt",
                   "Hoàn thành xuất sắc", "Trung thực", "Giải quyết vấn đề và sáng tạo",
                   "Hoàn thành chương trình lớp 4"):  # fmt: skip
        assert phrase in text, phrase
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(path), str(tmp_path / "p")], check=True)
    pngs = sorted(tmp_path.glob("p*.png"))
    assert len(pngs) == rendered.page_count >= 2
    for png in pngs:
        decoded = subprocess.run(["zbarimg", "--raw", "-q", str(png)], capture_output=True, text=True).stdout
        assert decoded.strip() == QR, png.name


def test_tested_subjects_need_their_score_and_others_have_none() -> None:
    data = copy.deepcopy(schemas.load_sample("transcript_primary"))
    toan = next(s for s in data["primary_years"][0]["subjects"] if s["subject"] == "Toán")
    del toan["year_score"]
    dao_duc = next(s for s in data["primary_years"][1]["subjects"] if s["subject"] == "Đạo đức")
    dao_duc["year_score"] = 9
    with pytest.raises(schemas.SchemaError) as exc:
        schemas.parse_document(data)
    text = str(exc.value)
    assert "lớp 1A2" in text and "môn Toán: thiếu điểm kiểm tra định kì cuối năm" in text
    assert "môn Đạo đức: lớp 2 không có bài kiểm tra định kì" in text
