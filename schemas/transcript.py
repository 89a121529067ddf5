"""Transcripts (học bạ): grades 6–12 under Circular 22/2021, primary under Circular 27/2020."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from schemas.common import Model, Person, School, Signatory, Text
from schemas.primary import PrimaryYear

Level4 = Literal["Tốt", "Khá", "Đạt", "Chưa đạt"]
# Circular 22/2021 levels, and the Circular 58/2011 (amended by 26/2020) levels of years judged before its roll-out:
# học lực Giỏi/Khá/Trung bình/Yếu/Kém, hạnh kiểm Tốt/Khá/Trung bình/Yếu. Which are allowed depends on the year.
Level = Literal["Tốt", "Khá", "Đạt", "Chưa đạt", "Giỏi", "Trung bình", "Yếu", "Kém"]
CommentLevel = Literal["Đạt", "Chưa đạt"]
Score = Decimal


class SemesterScores(Model):
    """Scores of one scored subject in one semester. ``average`` if given must equal the recomputed one."""

    tx: tuple[Score, ...] = Field(description="Điểm đánh giá thường xuyên")
    gk: Score = Field(description="Điểm giữa kì")
    ck: Score = Field(description="Điểm cuối kì")
    average: Score | None = None


class SubjectYear(Model):
    """One subject over one school year: scored (0–10) or comment-assessed (Đạt/Chưa đạt)."""

    subject: Text
    assessment: Literal["scored", "comment"]
    hk1: SemesterScores | None = None
    hk2: SemesterScores | None = None
    year_average: Score | None = None
    hk1_level: CommentLevel | None = None
    hk2_level: CommentLevel | None = None
    year_level: CommentLevel | None = None
    teacher_comment: Text = ""
    retest_score: Score | None = Field(default=None, description="Điểm kiểm tra lại (Thông tư 22, Điều 13)")
    retest_level: CommentLevel | None = Field(default=None, description="Mức kiểm tra lại, môn đánh giá bằng nhận xét")


class Results(Model):
    hk1: Level | None = None
    hk2: Level | None = None
    year: Level | None = None


class SchoolYear(Model):
    """One school year of a grade 6–12 transcript."""

    school_year: str = Field(pattern=r"^\d{4}-\d{4}$", description="e.g. '2024-2025'")
    grade: int = Field(ge=6, le=12)
    class_name: Text
    school_name: Text = ""
    subjects: tuple[SubjectYear, ...]
    learning: Results
    conduct: Results
    homeroom_comment: Text = ""
    promoted: bool | None = None
    days_absent: int | None = Field(
        default=None, ge=0, description="Số ngày nghỉ: only in documents issued before absences counted sessions"
    )
    homeroom_teacher: Text = ""
    principal: Text = ""
    sessions_absent: int | None = Field(default=None, ge=0, description="Tổng số buổi nghỉ (Thông tư 22, Điều 12)")
    learning_after_retest: Level | None = Field(
        default=None, description="Kết quả học tập cả năm sau kiểm tra lại (Thông tư 22, Điều 13); recomputed"
    )
    summer_training: Text = Field(default="", description="Nhiệm vụ rèn luyện trong hè (Thông tư 22, Điều 14)")
    conduct_after_summer: CommentLevel | None = Field(
        default=None, description="Kết quả rèn luyện trong hè, Đạt / Chưa đạt (Thông tư 22, Điều 14)"
    )
    awards: Text = Field(default="", description="Khen thưởng")
    principal_title: Text = Field(
        default="", description="Who confirmed the year for the principal, e.g. 'KT. HIỆU TRƯỞNG / PHÓ HIỆU TRƯỞNG'"
    )


class ThcsCompletion(Model):
    """The principal's confirmation that the pupil completed the lower-secondary programme, recorded in the học bạ
    (Law 123/2025/QH15 amending the Law on Education, in force 1 January 2026, which ended the THCS diploma)."""

    decision_number: Text = Field(min_length=1, description="Số quyết định, e.g. '45/QĐ-THCSND'")
    decision_date: date
    principal: Text = Field(min_length=1, description="Hiệu trưởng xác nhận")
    principal_title: Text = "Hiệu trưởng"


class Transcript(Model):
    kind: Literal["transcript"] = "transcript"
    level: Literal["primary", "lower_secondary", "upper_secondary"]
    record_id: str = Field(min_length=1, description="Mã định danh học bạ (madinhdanhhocba)")
    student_code: str = Field(min_length=1, description="Mã học sinh (mahocsinh)")
    holder: Person
    school: School
    years: tuple[SchoolYear, ...] = Field(default=(), description="Grades 6–12 (Circular 22/2021)")
    primary_years: tuple[PrimaryYear, ...] = Field(default=(), description="Grades 1–5 (Circular 27/2020)")
    issue_date: date
    issue_place: Text
    signatories: tuple[Signatory, ...] = ()
    completion: ThcsCompletion | None = Field(
        default=None, description="Xác nhận hoàn thành chương trình THCS (Luật 123/2025/QH15)"
    )
    register_number: Text = Field(default="", description="Số đăng bộ")
    residence: Text = Field(default="", description="Nơi ở hiện nay")
    father_name: Text = Field(default="", description="Họ và tên cha (hotencha)")
    mother_name: Text = Field(default="", description="Họ và tên mẹ (hotenme)")
    guardian_name: Text = Field(default="", description="Người giám hộ (hotennguoigiamho)")
    photo: str | None = Field(
        default=None,
        pattern=r"^data:image/(png|jpeg);base64,[A-Za-z0-9+/]+={0,2}$",
        max_length=400_000,
        description="Ảnh học sinh (3×4) on the cover: a PNG or JPEG data URI of at most about 300 KB",
    )

    @model_validator(mode="after")
    def _years_match_level(self) -> Transcript:
        if self.level == "primary" and (self.years or not self.primary_years):
            raise ValueError("a primary transcript has primary_years (grades 1–5) and no years")
        if self.level != "primary" and (self.primary_years or not self.years):
            raise ValueError("a secondary transcript has years (grades 6–12) and no primary_years")
        return self
