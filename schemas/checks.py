"""Recomputing a transcript's averages and levels: fill in what is missing, report every contradiction."""

from __future__ import annotations

from decimal import Decimal

from schemas.common import ValidationProblem
from schemas.grading import (
    FAIL,
    PASS,
    PRIMARY_FAIL,
    TX_COUNT,
    learning_level,
    primary_result,
    semester_average,
    valid_score,
    year_average,
)
from schemas.primary import PrimaryYear, tested
from schemas.transcript import Results, SchoolYear, SemesterScores, SubjectYear, Transcript

SEMESTERS = (("hk1", "học kì I"), ("hk2", "học kì II"))


def _where(t: Transcript, y: SchoolYear, subject: str | None = None, part: str | None = None) -> str:
    bits = [f"{t.holder.full_name}, lớp {y.class_name} ({y.school_year})"]
    if subject:
        bits.append(f"môn {subject}")
    if part:
        bits.append(part)
    return ", ".join(bits)


def _semester(
    t: Transcript, y: SchoolYear, s: SubjectYear, sem: SemesterScores, label: str, problems: list[ValidationProblem]
) -> SemesterScores:
    where = _where(t, y, s.subject, label)
    for name, value in [*((f"TX{i + 1}", v) for i, v in enumerate(sem.tx)), ("GK", sem.gk), ("CK", sem.ck)]:
        if not valid_score(value):
            problems.append(
                ValidationProblem(where, f"điểm {name} = {value} phải từ 0 đến 10, tối đa một chữ số thập phân")
            )
    if not TX_COUNT[0] <= len(sem.tx) <= TX_COUNT[1]:
        problems.append(
            ValidationProblem(where, f"có {len(sem.tx)} điểm thường xuyên; cần từ {TX_COUNT[0]} đến {TX_COUNT[1]}")
        )
    computed = semester_average(sem.tx, sem.gk, sem.ck)
    if sem.average is not None and sem.average != computed:
        problems.append(
            ValidationProblem(
                where, f"điểm trung bình ghi {sem.average} nhưng tính được {computed} (ΣTX + 2·GK + 3·CK)/(n + 5)"
            )
        )
    return sem.model_copy(update={"average": computed})


def _subject(t: Transcript, y: SchoolYear, s: SubjectYear, problems: list[ValidationProblem]) -> SubjectYear:
    if s.assessment == "comment":
        for attr, label in (("hk1_level", "học kì I"), ("hk2_level", "học kì II"), ("year_level", "cả năm")):
            if getattr(s, attr) is None:
                problems.append(ValidationProblem(_where(t, y, s.subject, label), "thiếu mức đánh giá Đạt/Chưa đạt"))
        return s
    update: dict[str, object] = {}
    for attr, label in SEMESTERS:
        sem = getattr(s, attr)
        if sem is None:
            problems.append(ValidationProblem(_where(t, y, s.subject, label), "thiếu điểm"))
            continue
        update[attr] = _semester(t, y, s, sem, label, problems)
    hk1, hk2 = update.get("hk1"), update.get("hk2")
    if isinstance(hk1, SemesterScores) and isinstance(hk2, SemesterScores):
        assert hk1.average is not None and hk2.average is not None
        computed = year_average(hk1.average, hk2.average)
        if s.year_average is not None and s.year_average != computed:
            problems.append(
                ValidationProblem(
                    _where(t, y, s.subject, "cả năm"),
                    f"điểm trung bình cả năm ghi {s.year_average} nhưng tính được {computed} (HK1 + 2·HK2)/3",
                )
            )
        update["year_average"] = computed
    return s.model_copy(update=update)


def _level(subjects: tuple[SubjectYear, ...], period: str) -> str | None:
    scored: list[Decimal] = []
    comments: list[str] = []
    for s in subjects:
        if s.assessment == "comment":
            level = getattr(s, f"{period}_level")
            if level is None:
                return None
            comments.append(level)
        else:
            avg = s.year_average if period == "year" else getattr(s, period).average if getattr(s, period) else None
            if avg is None:
                return None
            scored.append(avg)
    return learning_level(scored, comments)


def _primary_year(t: Transcript, y: PrimaryYear, problems: list[ValidationProblem]) -> PrimaryYear:
    where = f"{t.holder.full_name}, lớp {y.class_name} ({y.school_year})"
    for s in y.subjects:
        if tested(y.grade, s.subject) and s.year_score is None:
            problems.append(ValidationProblem(where, f"môn {s.subject}: thiếu điểm kiểm tra định kì cuối năm"))
        if not tested(y.grade, s.subject) and (s.year_score is not None or s.mid_score is not None):
            problems.append(ValidationProblem(where, f"môn {s.subject}: lớp {y.grade} không có bài kiểm tra định kì"))
    scores = [s.year_score for s in y.subjects if s.year_score is not None]
    computed = primary_result(
        [s.year_level for s in y.subjects], [q.level for q in (*y.qualities, *y.competences)], scores
    )
    if y.result is not None and y.result != computed:
        low = [f"{s.subject} {s.year_score}" for s in y.subjects if s.year_score is not None and s.year_score < 9]
        detail = f" (điểm kiểm tra: {', '.join(low)})" if low else ""
        problems.append(ValidationProblem(where, f"kết quả ghi '{y.result}' nhưng tính được '{computed}'{detail}"))
    completed = y.completed_primary
    if y.grade == 5:
        done = computed != PRIMARY_FAIL
        if completed is not None and completed != done:
            problems.append(
                ValidationProblem(
                    where, f"'hoàn thành chương trình tiểu học' ghi {completed} nhưng kết quả là '{computed}'"
                )
            )
        completed = done
    elif completed:
        problems.append(ValidationProblem(where, f"lớp {y.grade} chưa thể hoàn thành chương trình tiểu học"))
    return y.model_copy(update={"result": computed, "completed_primary": completed})


def complete_transcript(t: Transcript) -> tuple[Transcript, list[ValidationProblem]]:
    """Return the transcript with every average and learning level filled in, and every contradiction found."""
    problems: list[ValidationProblem] = []
    if t.level == "primary":
        primary = tuple(_primary_year(t, y, problems) for y in t.primary_years)
        return t.model_copy(update={"primary_years": primary}), problems
    years = []
    for y in t.years:
        subjects = tuple(_subject(t, y, s, problems) for s in y.subjects)
        learning: dict[str, str | None] = {}
        for period, label in (("hk1", "học kì I"), ("hk2", "học kì II"), ("year", "cả năm")):
            computed = _level(subjects, period)
            given = getattr(y.learning, period)
            if given is not None and computed is not None and given != computed:
                problems.append(
                    ValidationProblem(
                        _where(t, y, None, label), f"kết quả học tập ghi '{given}' nhưng tính được '{computed}'"
                    )
                )
            learning[period] = computed or given
        if y.promoted and learning.get("year") == "Chưa đạt" and y.conduct.year == "Chưa đạt":
            problems.append(
                ValidationProblem(_where(t, y), "được lên lớp dù kết quả học tập và rèn luyện đều Chưa đạt")
            )
        years.append(y.model_copy(update={"subjects": subjects, "learning": Results(**learning)}))
    return t.model_copy(update={"years": tuple(years)}), problems


__all__ = ["FAIL", "PASS", "complete_transcript"]
