"""The English wording of translations: tables looked up across spelling variants, names and unknown words kept."""

from __future__ import annotations

from datetime import date

from jinja2 import Environment

from signer import english


def _filters() -> dict:  # type: ignore[type-arg]
    env = Environment(autoescape=True)
    english.install(env)
    return env.filters


def test_subjects_are_found_in_either_spelling_and_unknown_ones_stay_vietnamese() -> None:
    subject = _filters()["en_subject"]
    assert subject("Toán") == "Mathematics"
    assert subject("Hoá học") == subject("Hóa học") == "Chemistry"  # old and new tone-mark placement
    assert subject("Mỹ thuật") == "Fine Arts" and subject("Vật lý") == "Physics"
    assert subject("Tiếng Khmer") == "Tiếng Khmer"  # not in the table: printed as written, never invented


def test_dates_places_and_titles() -> None:
    assert english.english_date(date(2025, 9, 5)) == "5 September 2025"
    assert english.authority("SỞ GIÁO DỤC VÀ ĐÀO TẠO THÀNH PHỐ HÀ NỘI") == (
        "Department of Education and Training, Thành phố Hà Nội"
    )
    assert english.authority("PHÒNG GIÁO DỤC VÀ ĐÀO TẠO QUẬN HOÀN KIẾM").endswith("Quận Hoàn Kiếm")
    assert english.school_name("Trường THCS Nguyễn Du") == "Nguyễn Du Lower Secondary School (Trường THCS Nguyễn Du)"
    assert english.school_name("Trường Đại học Bách khoa") == "Trường Đại học Bách khoa"
    assert english.signer_title("HIỆU TRƯỞNG") == "Principal / Rector (HIỆU TRƯỞNG)"
    assert _filters()["en_result"]("Chưa đạt") == "Unsatisfactory"
    assert _filters()["en_primary_result"]("Hoàn thành xuất sắc") == "Completed with distinction"
