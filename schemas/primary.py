"""Primary-school years (lớp 1–5) of a transcript, under Circular 27/2020/TT-BGDĐT.

Subjects and activities are rated T (Hoàn thành tốt), H (Hoàn thành) or C (Chưa hoàn thành); some subjects also
have a periodic test scored 1–10 (whole numbers). Qualities and competences are rated T (Tốt), Đ (Đạt) or C
(Cần cố gắng). The year ends with one of four results (schemas.grading.primary_result); grade 5 with at least
"Hoàn thành" also completes the primary programme ("Hoàn thành chương trình tiểu học").
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.common import Model, Text
from schemas.programme import find_subject, subject_key

SubjectLevel = Literal["T", "H", "C"]
TraitLevel = Literal["T", "Đ", "C"]
PrimaryResult = Literal["Hoàn thành xuất sắc", "Hoàn thành tốt", "Hoàn thành", "Chưa hoàn thành"]
SUBJECT_LEVELS = {"T": "Hoàn thành tốt", "H": "Hoàn thành", "C": "Chưa hoàn thành"}
TRAIT_LEVELS = {"T": "Tốt", "Đ": "Đạt", "C": "Cần cố gắng"}
MID_SEMESTER_TESTED = ("Tiếng Việt", "Toán")


def tested(grade: int, subject: str) -> bool:
    """Circular 27/2020 Art. 7 cl. 2: periodic tests at the end of semester I and of the year for Tiếng Việt, Toán,
    and (where the grade's programme has them) Ngoại ngữ 1, Tin học và Công nghệ (from grade 3), Khoa học, Lịch sử
    và Địa lí (grades 4–5). Which subjects these are in each grade is data (tables/programmes.json)."""
    found = find_subject(grade, subject)
    return found is not None and found.periodic_test


def mid_semester_tested(grade: int, subject: str) -> bool:
    """Circular 27/2020 Art. 7 cl. 2: in grades 4 and 5, Tiếng Việt and Toán also have mid-semester I and mid-semester
    II tests."""
    return grade >= 4 and subject_key(subject) in (subject_key(s) for s in MID_SEMESTER_TESTED)


class PrimarySubject(Model):
    """One subject or educational activity over one year."""

    subject: Text
    mid_level: SubjectLevel | None = Field(default=None, description="Giữa năm (cuối học kì I)")
    year_level: SubjectLevel = Field(description="Cuối năm")
    mid_score: int | None = Field(default=None, ge=1, le=10, description="Bài kiểm tra định kì cuối học kì I")
    year_score: int | None = Field(default=None, ge=1, le=10, description="Bài kiểm tra định kì cuối năm")
    teacher_comment: Text = ""
    mid_hk1_score: int | None = Field(default=None, ge=1, le=10, description="Kiểm tra giữa học kì I (lớp 4, 5)")
    mid_hk2_score: int | None = Field(default=None, ge=1, le=10, description="Kiểm tra giữa học kì II (lớp 4, 5)")


class Trait(Model):
    """A quality (phẩm chất) or competence (năng lực) with its year-end rating."""

    name: Text
    level: TraitLevel


class PrimaryYear(Model):
    school_year: str = Field(pattern=r"^\d{4}-\d{4}$")
    grade: int = Field(ge=1, le=5)
    class_name: Text
    school_name: Text = ""
    subjects: tuple[PrimarySubject, ...] = Field(min_length=1)
    qualities: tuple[Trait, ...] = Field(min_length=1, description="Phẩm chất chủ yếu")
    competences: tuple[Trait, ...] = Field(min_length=1, description="Năng lực chung và năng lực đặc thù")
    result: PrimaryResult | None = Field(default=None, description="Recomputed; if given it must agree")
    completed_primary: bool | None = Field(default=None, description="Grade 5: Hoàn thành chương trình tiểu học")
    homeroom_comment: Text = ""
    promoted: bool | None = None
    days_absent: int | None = Field(
        default=None, ge=0, description="Số ngày nghỉ: only in documents issued before absences counted sessions"
    )
    homeroom_teacher: Text = ""
    principal: Text = ""
    sessions_absent: int | None = Field(default=None, ge=0, description="Tổng số buổi nghỉ")
    awards: Text = Field(default="", description="Khen thưởng")
    principal_title: Text = Field(default="", description="e.g. 'KT. HIỆU TRƯỞNG / PHÓ HIỆU TRƯỞNG'")
