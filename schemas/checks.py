"""Judging a transcript by the law of its school years: fill in what is computed, report every contradiction.

Each year is judged under the rules that applied to it (schemas.programme.regime): Circular 22/2021 for grades
6–12 and Circular 27/2020 for grades 1–5 from their roll-out; a secondary year before the roll-out is recorded as it
was judged under Circular 58/2011 (amended by 26/2020), never re-judged; a primary year before Circular 27 is
refused with the reason. Messages are Vietnamese (decimal commas) with the English beside them.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from schemas.common import ValidationProblem
from schemas.diploma import Diploma
from schemas.grading import (
    FAIL,
    LEVEL_ORDER,
    MAX_SESSIONS_ABSENT,
    PASS,
    PRIMARY_FAIL,
    RETEST_BELOW,
    adjusted_level,
    at_least_pass,
    base_level,
    comment_year_level,
    conduct_year,
    primary_result,
    promotion,
    semester_average,
    valid_score,
    vn,
    year_average,
)
from schemas.primary import PrimaryYear, mid_semester_tested, tested
from schemas.programme import (
    REGIME_NAMES,
    electives_needed,
    find_subject,
    legacy_levels,
    programme,
    regime,
)
from schemas.transcript import Results, SchoolYear, SemesterScores, SubjectYear, Transcript

SEMESTERS = (("hk1", "học kì I"), ("hk2", "học kì II"))
PERIODS = (("hk1", "học kì I", "semester I"), ("hk2", "học kì II", "semester II"), ("year", "cả năm", "the year"))
FINAL_GRADES = {5: "tiểu học", 9: "trung học cơ sở", 12: "trung học phổ thông"}
LEVEL_GRADES = {"primary": range(1, 6), "lower_secondary": range(6, 10), "upper_secondary": range(10, 13)}
LAW_123_IN_FORCE = date(2026, 1, 1)


def _m(vi: str, en: str) -> str:
    return f"{vi} / {en}"


class _Year:
    """Problems of one school year, each located by pupil, class and year."""

    def __init__(self, t: Transcript, y: SchoolYear | PrimaryYear, problems: list[ValidationProblem]) -> None:
        self.head = f"{t.holder.full_name}, lớp {y.class_name} ({y.school_year})"
        self.problems = problems

    def add(self, vi: str, en: str, subject: str | None = None, part: str | None = None) -> None:
        bits = [self.head, *([f"môn {subject}"] if subject else []), *([part] if part else [])]
        self.problems.append(ValidationProblem(", ".join(bits), _m(vi, en)))


def _semester(at: _Year, s: SubjectYear, sem: SemesterScores, label: str, tx_needed: int | None) -> SemesterScores:
    for name, value in [*((f"TX{i + 1}", v) for i, v in enumerate(sem.tx)), ("GK", sem.gk), ("CK", sem.ck)]:
        if not valid_score(value):
            at.add(
                f"điểm {name} = {vn(value)} phải từ 0 đến 10, tối đa một chữ số thập phân",
                f"score {name} = {value} must be 0–10 with at most one decimal",
                s.subject,
                label,
            )
    if tx_needed is not None and len(sem.tx) != tx_needed:
        at.add(
            f"có {len(sem.tx)} điểm đánh giá thường xuyên; môn này cần đúng {tx_needed} mỗi học kì "
            "(Thông tư 22, Điều 6: đến 35 tiết/năm 2 điểm, đến 70 tiết 3 điểm, trên 70 tiết 4 điểm)",
            f"{len(sem.tx)} regular (TX) scores; this subject needs exactly {tx_needed} per semester (Art. 6)",
            s.subject,
            label,
        )
    computed = semester_average(sem.tx, sem.gk, sem.ck)
    if sem.average is not None and sem.average != computed:
        at.add(
            f"điểm trung bình ghi {vn(sem.average)} nhưng tính được {vn(computed)} (ΣTX + 2·GK + 3·CK)/(số TX + 5)",
            f"average given {sem.average}, computed {computed}",
            s.subject,
            label,
        )
    return sem.model_copy(update={"average": computed})


def _subject(at: _Year, s: SubjectYear, tx_needed: int | None) -> SubjectYear:
    if s.assessment == "comment":
        for attr, label in (("hk1_level", "học kì I"), ("hk2_level", "học kì II")):
            if getattr(s, attr) is None:
                at.add("thiếu mức đánh giá Đạt/Chưa đạt", "the Đạt/Chưa đạt level is missing", s.subject, label)
        if s.retest_score is not None:
            at.add("môn đánh giá bằng nhận xét: kiểm tra lại ghi mức Đạt/Chưa đạt, không ghi điểm",
                   "a comment-assessed subject's re-test is a level, not a score", s.subject)  # fmt: skip
        if s.hk2_level is None:
            return s
        year = comment_year_level(s.hk2_level)
        if s.year_level is not None and s.year_level != year:
            at.add(
                f"mức cả năm ghi '{s.year_level}' nhưng theo Thông tư 22, Điều 9 khoản 1 là mức học kì II: '{year}'",
                f"the year level given is '{s.year_level}'; Art. 9 cl. 1 makes it the semester II level '{year}'",
                s.subject,
                "cả năm",
            )
        return s.model_copy(update={"year_level": year})
    if s.retest_level is not None:
        at.add("môn tính điểm: kiểm tra lại ghi điểm, không ghi mức",
               "a scored subject's re-test is a score, not a level", s.subject)  # fmt: skip
    if s.retest_score is not None and not valid_score(s.retest_score):
        at.add(f"điểm kiểm tra lại {vn(s.retest_score)} phải từ 0 đến 10", "re-test score must be 0–10", s.subject)
    update: dict[str, object] = {}
    for attr, label in SEMESTERS:
        sem = getattr(s, attr)
        if sem is None:
            at.add("thiếu điểm", "scores are missing", s.subject, label)
            continue
        update[attr] = _semester(at, s, sem, label, tx_needed)
    hk1, hk2 = update.get("hk1"), update.get("hk2")
    if isinstance(hk1, SemesterScores) and isinstance(hk2, SemesterScores):
        assert hk1.average is not None and hk2.average is not None
        computed = year_average(hk1.average, hk2.average)
        if s.year_average is not None and s.year_average != computed:
            at.add(
                f"điểm trung bình cả năm ghi {vn(s.year_average)} nhưng tính được {vn(computed)} (HK I + 2·HK II)/3",
                f"year average given {s.year_average}, computed {computed}",
                s.subject,
                "cả năm",
            )
        update["year_average"] = computed
    return s.model_copy(update=update)


def _inputs(
    subjects: tuple[SubjectYear, ...], period: str, retest: bool = False
) -> tuple[list[Decimal], list[str]] | None:
    """The scored averages and comment levels that decide a period's learning result (None if any is missing);
    with ``retest``, a re-test result replaces the year's (Circular 22 Art. 13)."""
    scored: list[Decimal] = []
    comments: list[str] = []
    for s in subjects:
        if s.assessment == "comment":
            level = s.retest_level if retest and s.retest_level else getattr(s, f"{period}_level")
            if level is None:
                return None
            comments.append(level)
        else:
            sem = None if period == "year" else getattr(s, period)
            avg = s.year_average if period == "year" else sem.average if sem else None
            if retest and s.retest_score is not None:
                avg = s.retest_score
            if avg is None:
                return None
            scored.append(avg)
    return scored, comments


def _why_adjusted(subjects: tuple[SubjectYear, ...], scored: list[Decimal], comments: list[str]) -> str:
    level, which = adjusted_level(scored, comments)
    if which is None:
        return ""
    kind, index = which.split(":")
    pool = [s for s in subjects if s.assessment == ("scored" if kind == "scored" else "comment")]
    name = pool[int(index)].subject
    return (
        f" (Thông tư 22, Điều 9 khoản 3: chỉ do môn {name} mà bị hạ từ hai mức trở lên nên "
        f"được điều chỉnh từ '{base_level(scored, comments)}' lên '{level}')"
    )


def _programme(at: _Year, y: SchoolYear | PrimaryYear) -> dict[str, int]:
    """Subjects against the grade's programme (tables/programmes.json): known, not twice, assessed as the programme
    says, every compulsory one present, the required number of electives. Returns the TX count of each subject."""
    seen: dict[str, str] = {}
    tx: dict[str, int] = {}
    electives = 0
    for s in y.subjects:
        found = find_subject(y.grade, s.subject)
        if found is None:
            at.add(
                f"môn '{s.subject}' không có trong chương trình lớp {y.grade}",
                f"'{s.subject}' is not in the grade {y.grade} programme",
            )
            continue
        if found.name in seen:
            at.add(
                f"môn {found.name} ghi hai lần ('{seen[found.name]}' và '{s.subject}')",
                f"{found.name} appears twice",
            )
            continue
        seen[found.name] = s.subject
        tx[s.subject] = found.tx
        electives += found.group == "elective"
        assessment = getattr(s, "assessment", None)
        if assessment is not None and assessment != found.assessment:
            how = {"scored": "bằng nhận xét kết hợp điểm số", "comment": "bằng nhận xét"}
            at.add(
                f"môn này đánh giá {how[found.assessment]} (Thông tư 22, Điều 5), không phải {how[assessment]}",
                f"this subject is assessed '{found.assessment}', not '{assessment}' (Art. 5)",
                s.subject,
            )
    for p in programme(y.grade):
        if p.required and p.name not in seen:
            at.add(
                f"thiếu môn bắt buộc {p.name} của chương trình lớp {y.grade}",
                f"the compulsory subject {p.name} of grade {y.grade} is missing",
            )
    needed = electives_needed(y.grade)
    if needed and electives != needed:
        at.add(
            f"có {electives} môn lựa chọn; chương trình lớp {y.grade} cần đúng {needed}",
            f"{electives} elective subjects; grade {y.grade} needs exactly {needed}",
        )
    return tx


def _legacy_year(at: _Year, y: SchoolYear) -> SchoolYear:
    """A year judged under Circular 58/2011 (amended by 26/2020) before Circular 22 reached its grade: recorded as
    it was judged (học lực Giỏi/Khá/Trung bình/Yếu/Kém, hạnh kiểm Tốt/Khá/Trung bình/Yếu), never re-judged."""
    learning_levels, conduct_levels = legacy_levels()
    name = REGIME_NAMES["TT58"]
    for what, en, results, allowed in (
        ("học lực", "learning", y.learning, learning_levels),
        ("hạnh kiểm", "conduct", y.conduct, conduct_levels),
    ):
        for period, vi_label, en_label in PERIODS:
            value = getattr(results, period)
            if value is not None and value not in allowed:
                at.add(
                    f"{what} {vi_label} ghi '{value}': năm học này lớp {y.grade} đánh giá theo {name}, "
                    f"chỉ có các mức {', '.join(allowed)}",
                    f"{en} for {en_label} is '{value}', but this year was judged under Circular 58/2011",
                )
        if results.year is None:
            at.add(
                f"thiếu {what} cả năm (ghi đúng như đã xếp loại theo {name})",
                f"the year's {en} level is missing (record it as it was judged)",
            )
    for s in y.subjects:
        if s.assessment == "scored" and s.year_average is None:
            at.add("thiếu điểm trung bình cả năm", "the year average is missing", s.subject)
        for value in (s.year_average, s.retest_score):
            if value is not None and not valid_score(value):
                at.add(f"điểm {vn(value)} phải từ 0 đến 10", "scores must be 0–10", s.subject)
    if y.learning_after_retest or y.conduct_after_summer:
        at.add("kết quả sau kiểm tra lại/rèn luyện hè theo Thông tư 22 không áp dụng cho năm học này",
               "Circular 22 re-test and summer results do not apply to this year")  # fmt: skip
    return y


def _retests(at: _Year, y: SchoolYear, subjects: tuple[SubjectYear, ...], learning_year: str | None) -> str | None:
    """Circular 22 Art. 13: a pupil whose year learning result is Chưa đạt re-takes tests in the scored subjects
    whose year average is below 5,0 and the comment subjects at Chưa đạt; the re-test result replaces the year's and
    the learning result is judged again by Art. 9. Returns the learning result after the re-tests."""
    taken = [s for s in subjects if s.retest_score is not None or s.retest_level is not None]
    if not taken:
        if y.learning_after_retest is not None:
            at.add("ghi kết quả sau kiểm tra lại nhưng không có môn nào kiểm tra lại",
                   "a result after re-tests is given but no subject was re-tested")  # fmt: skip
        return None
    if learning_year != FAIL:
        at.add(
            f"chỉ kiểm tra lại khi kết quả học tập cả năm Chưa đạt (đang là '{learning_year}') (Thông tư 22, Điều 13)",
            "re-tests are only for a year learning result of Chưa đạt (Art. 13)",
        )
    for s in taken:
        below = s.year_average is not None and s.year_average < RETEST_BELOW
        if not (below or s.year_level == FAIL):
            at.add(
                "chỉ kiểm tra lại môn có điểm trung bình cả năm dưới 5,0 hoặc mức Chưa đạt (Thông tư 22, Điều 13)",
                "only subjects with a year average below 5.0 or at Chưa đạt are re-tested (Art. 13)",
                s.subject,
            )
    inputs = _inputs(subjects, "year", retest=True)
    if inputs is None:
        return y.learning_after_retest
    after = adjusted_level(*inputs)[0]
    if y.learning_after_retest is not None and y.learning_after_retest != after:
        at.add(
            f"kết quả học tập sau kiểm tra lại ghi '{y.learning_after_retest}' nhưng tính được '{after}'",
            f"learning after re-tests given '{y.learning_after_retest}', computed '{after}' (Art. 13)",
        )
    return after


def _year(t: Transcript, y: SchoolYear, problems: list[ValidationProblem]) -> SchoolYear:
    at = _Year(t, y, problems)
    if y.grade not in LEVEL_GRADES[t.level]:
        at.add(f"lớp {y.grade} không thuộc cấp học của học bạ này", f"grade {y.grade} is not in this level")
    if y.days_absent is not None:
        at.add(
            "ghi số buổi nghỉ (sessions_absent), không ghi số ngày: Thông tư 22, Điều 12 tính theo buổi",
            "record sessions absent (sessions_absent), not days: Art. 12 counts sessions (buổi)",
        )
    if regime(y.grade, y.school_year) == "TT58":
        return _legacy_year(at, y)
    for what, results in (("kết quả học tập", y.learning), ("kết quả rèn luyện", y.conduct)):
        for period, vi_label, _ in PERIODS:
            value = getattr(results, period)
            if value is not None and value not in LEVEL_ORDER:
                at.add(
                    f"{what} {vi_label} ghi '{value}': năm học {y.school_year} lớp {y.grade} đánh giá theo "
                    f"{REGIME_NAMES['TT22']}, chỉ có các mức Tốt, Khá, Đạt, Chưa đạt",
                    f"'{value}' is not a Circular 22 level (Tốt/Khá/Đạt/Chưa đạt)",
                )
    tx = _programme(at, y)
    subjects = tuple(_subject(at, s, tx.get(s.subject)) for s in y.subjects)
    learning: dict[str, str | None] = {}
    for period, vi_label, en_label in PERIODS:
        inputs = _inputs(subjects, period)
        computed = adjusted_level(*inputs)[0] if inputs else None
        given = getattr(y.learning, period)
        if given is not None and computed is not None and given != computed:
            why = _why_adjusted(subjects, *inputs) if inputs else ""
            at.add(
                f"kết quả học tập {vi_label} ghi '{given}' nhưng tính được '{computed}'{why}",
                f"learning result for {en_label} given '{given}', computed '{computed}' (Circular 22 Art. 9)",
            )
        learning[period] = computed or given
    conduct = {p: getattr(y.conduct, p) for p in ("hk1", "hk2", "year")}
    if conduct["hk1"] in LEVEL_ORDER and conduct["hk2"] in LEVEL_ORDER:
        computed_conduct = conduct_year(str(conduct["hk1"]), str(conduct["hk2"]))
        if conduct["year"] is not None and conduct["year"] != computed_conduct:
            at.add(
                f"kết quả rèn luyện cả năm ghi '{conduct['year']}' nhưng với học kì I '{conduct['hk1']}' và học kì II "
                f"'{conduct['hk2']}' là '{computed_conduct}' (Thông tư 22, Điều 8)",
                f"the year's conduct given '{conduct['year']}' but HK I/HK II make it '{computed_conduct}' (Art. 8)",
            )
        conduct["year"] = computed_conduct
    after_retest = _retests(at, y, subjects, learning["year"])
    if (y.conduct_after_summer is not None or y.summer_training) and conduct["year"] != FAIL:
        at.add(
            "chỉ rèn luyện trong hè khi kết quả rèn luyện cả năm Chưa đạt (Thông tư 22, Điều 14)",
            "summer training is only for a year conduct result of Chưa đạt (Art. 14)",
        )
    final_learning = after_retest or learning["year"]
    final_conduct = y.conduct_after_summer or conduct["year"]
    sessions = y.sessions_absent or 0
    promoted = _promotion(at, y, final_learning, final_conduct, sessions)
    return y.model_copy(
        update={
            "subjects": subjects,
            "learning": Results.model_validate(learning),
            "conduct": Results.model_validate(conduct),
            "learning_after_retest": after_retest,
            "sessions_absent": sessions,
            "promoted": promoted,
        }
    )


def _promotion(at: _Year, y: SchoolYear, learning: str | None, conduct: str | None, sessions: int) -> bool | None:
    """Circular 22 Art. 12 (and the final grades, where nobody is 'promoted': grade 9 ends with the THCS completion
    confirmation, grade 12 with the graduation exam)."""
    if learning is None or conduct is None:
        return y.promoted
    eligible = promotion(learning, conduct, sessions)
    reasons = [
        *([f"kết quả học tập '{learning}'"] if not at_least_pass(learning) else []),
        *([f"kết quả rèn luyện '{conduct}'"] if not at_least_pass(conduct) else []),
        *([f"nghỉ {sessions} buổi (quá {MAX_SESSIONS_ABSENT} buổi)"] if sessions > MAX_SESSIONS_ABSENT else []),
    ]
    if y.grade in FINAL_GRADES:
        if y.promoted:
            at.add(
                f"lớp {y.grade} là lớp cuối cấp {FINAL_GRADES[y.grade]}: không xét 'được lên lớp'",
                f"grade {y.grade} is the last of its level: there is no promotion to record",
            )
        return None if y.promoted is None or y.promoted else y.promoted
    if y.promoted and not eligible:
        at.add(
            f"ghi 'được lên lớp' nhưng {', '.join(reasons)} (Thông tư 22, Điều 12: cần học tập và rèn luyện từ Đạt "
            f"trở lên, nghỉ không quá {MAX_SESSIONS_ABSENT} buổi)",
            "recorded as promoted, but Art. 12 needs both results at Đạt or above and at most 45 sessions absent",
        )
    if y.promoted is False and eligible:
        at.add(
            "ghi 'không được lên lớp' nhưng đủ điều kiện lên lớp (Thông tư 22, Điều 12)",
            "recorded as not promoted, but Art. 12's conditions are met",
        )
    return eligible


def _completion(t: Transcript, problems: list[ValidationProblem]) -> None:
    """Law 123/2025/QH15 (in force 1/1/2026): the principal confirms completion of the THCS programme in the học bạ,
    in place of the abolished lower-secondary diploma."""
    c = t.completion
    if c is None:
        return
    where = f"{t.holder.full_name}, xác nhận hoàn thành chương trình THCS"

    def add(vi: str, en: str) -> None:
        problems.append(ValidationProblem(where, _m(vi, en)))

    last = t.years[-1] if t.years else None
    if t.level != "lower_secondary" or last is None or last.grade != 9:
        add("chỉ học bạ THCS có năm lớp 9 mới ghi xác nhận hoàn thành chương trình THCS",
            "only a lower-secondary record ending in grade 9 carries the completion confirmation")  # fmt: skip
        return
    if c.decision_date < LAW_123_IN_FORCE:
        add(
            f"quyết định ngày {c.decision_date:%d/%m/%Y} trước khi Luật 123/2025/QH15 có hiệu lực (01/01/2026); "
            "học sinh hoàn thành trước đó được cấp bằng tốt nghiệp THCS",
            "decided before Law 123/2025/QH15 took effect (1 Jan 2026); earlier pupils received the THCS diploma",
        )
    if c.decision_date.year < int(last.school_year[5:]):
        add(f"quyết định ngày {c.decision_date:%d/%m/%Y} trước khi năm học {last.school_year} kết thúc",
            "the decision predates the end of the grade 9 year")  # fmt: skip
    if c.decision_date > t.issue_date:
        add("ngày quyết định sau ngày cấp học bạ", "the decision is dated after the record's issue date")
    final_learning = last.learning_after_retest or last.learning.year
    final_conduct = last.conduct_after_summer or last.conduct.year
    sessions = last.sessions_absent or 0
    if regime(9, last.school_year) == "TT22" and not promotion(final_learning, final_conduct, sessions):
        add(
            f"lớp 9 có kết quả học tập '{final_learning}', rèn luyện '{final_conduct}', nghỉ "
            f"{last.sessions_absent or 0} buổi: chưa đủ điều kiện hoàn thành chương trình THCS",
            "the grade 9 results do not complete the lower-secondary programme",
        )


def check_diploma(d: Diploma) -> list[ValidationProblem]:
    """Law 123/2025/QH15 (in force 1/1/2026) abolished the lower-secondary (THCS) diploma: the principal confirms
    completion in the học bạ instead (Transcript.completion). THCS diplomas issued before stay valid."""
    if d.level == "lower_secondary" and d.issue_date >= LAW_123_IN_FORCE:
        return [
            ValidationProblem(
                f"{d.holder.full_name}, {d.title}",
                _m(
                    "từ 01/01/2026 không cấp bằng tốt nghiệp THCS (Luật 123/2025/QH15); hiệu trưởng xác nhận hoàn "
                    "thành chương trình THCS trong học bạ",
                    "from 1 January 2026 no lower-secondary diploma is issued (Law 123/2025/QH15); the principal "
                    "confirms completion in the học bạ",
                ),
            )
        ]
    return []


def _primary_year(t: Transcript, y: PrimaryYear, problems: list[ValidationProblem]) -> PrimaryYear:
    at = _Year(t, y, problems)
    if y.grade not in LEVEL_GRADES[t.level]:
        at.add(f"lớp {y.grade} không thuộc cấp học của học bạ này", f"grade {y.grade} is not in this level")
    if regime(y.grade, y.school_year) == "TT30":
        at.add(
            f"năm học {y.school_year} lớp {y.grade} đánh giá theo {REGIME_NAMES['TT30']} (trước khi Thông tư 27/2020 "
            "áp dụng cho lớp này); SealTrail chưa ghi được học bạ theo quy định đó, và không đánh giá lại theo "
            "Thông tư 27",
            "this year was judged under Circular 30/2014 (before Circular 27/2020 reached the grade); SealTrail cannot "
            "record it yet and never re-judges it under Circular 27",
        )
        return y
    if y.days_absent is not None:
        at.add("ghi số buổi nghỉ (sessions_absent), không ghi số ngày", "record sessions absent, not days")
    _programme(at, y)
    for s in y.subjects:
        if tested(y.grade, s.subject):
            for attr, vi, en in (("mid_score", "cuối học kì I", "end of semester I"),
                                 ("year_score", "cuối năm", "end of year")):  # fmt: skip
                if getattr(s, attr) is None:
                    at.add(
                        f"thiếu điểm kiểm tra định kì {vi} (Thông tư 27, Điều 7)",
                        f"the {en} periodic test score is missing (Circular 27 Art. 7)",
                        s.subject,
                    )
        elif s.year_score is not None or s.mid_score is not None:
            at.add(f"lớp {y.grade} không có bài kiểm tra định kì (Thông tư 27, Điều 7)",
                   f"grade {y.grade} has no periodic test in this subject (Art. 7)", s.subject)  # fmt: skip
        if mid_semester_tested(y.grade, s.subject):
            for attr, vi in (("mid_hk1_score", "giữa học kì I"), ("mid_hk2_score", "giữa học kì II")):
                if getattr(s, attr) is None:
                    at.add(
                        f"thiếu điểm kiểm tra {vi} (lớp 4, 5; Thông tư 27, Điều 7)",
                        "grades 4–5 have mid-semester tests in Tiếng Việt and Toán (Art. 7)",
                        s.subject,
                    )
        elif s.mid_hk1_score is not None or s.mid_hk2_score is not None:
            at.add("kiểm tra giữa học kì chỉ có ở môn Tiếng Việt, Toán lớp 4, 5 (Thông tư 27, Điều 7)",
                   "mid-semester tests exist only for Tiếng Việt and Toán in grades 4–5", s.subject)  # fmt: skip
    scores = [s.year_score for s in y.subjects if s.year_score is not None]
    computed = primary_result(
        [s.year_level for s in y.subjects], [q.level for q in (*y.qualities, *y.competences)], scores
    )
    if y.result is not None and y.result != computed:
        low = [f"{s.subject} {s.year_score}" for s in y.subjects if s.year_score is not None and s.year_score < 9]
        detail = f" (điểm kiểm tra: {', '.join(low)})" if low else ""
        at.add(
            f"kết quả ghi '{y.result}' nhưng tính được '{computed}'{detail}",
            f"result given '{y.result}', computed '{computed}' (Circular 27 Art. 10)",
        )
    completed = y.completed_primary
    done = computed != PRIMARY_FAIL
    if y.grade == 5:
        if completed is not None and completed != done:
            at.add(
                f"'hoàn thành chương trình tiểu học' ghi {completed} nhưng kết quả là '{computed}'",
                "the primary completion does not match the year's result",
            )
        completed = done
    elif completed:
        at.add(f"lớp {y.grade} chưa thể hoàn thành chương trình tiểu học",
               f"grade {y.grade} cannot complete the primary programme")  # fmt: skip
    promoted = y.promoted
    if y.grade == 5:
        if y.promoted:
            at.add("lớp 5 là lớp cuối cấp: ghi 'hoàn thành chương trình tiểu học', không ghi 'được lên lớp'",
                   "grade 5 completes the primary programme; there is no promotion to record")  # fmt: skip
        promoted = None
    else:
        if y.promoted and not done:
            at.add(
                f"ghi 'được lên lớp' nhưng kết quả là '{computed}' (Thông tư 27/2020)",
                "recorded as promoted with a Chưa hoàn thành result",
            )
        promoted = done if y.promoted is None else y.promoted
    return y.model_copy(
        update={
            "result": computed,
            "completed_primary": completed,
            "promoted": promoted,
            "sessions_absent": y.sessions_absent or 0,
        }
    )


def _names(t: Transcript, problems: list[ValidationProblem]) -> None:
    """No blank signer names: every year names its homeroom teacher and the principal who confirmed it, and every
    person signing the document has a name (the seal signs with the school's name in its title)."""
    years: list[SchoolYear | PrimaryYear] = [*t.years, *t.primary_years]
    for y in years:
        at = _Year(t, y, problems)
        if not y.homeroom_teacher:
            at.add("thiếu họ tên giáo viên chủ nhiệm xác nhận năm học", "the homeroom teacher's name is missing")
        if not y.principal:
            at.add(
                "thiếu họ tên hiệu trưởng (hoặc phó hiệu trưởng) xác nhận năm học", "the principal's name is missing"
            )
    for s in t.signatories:
        if s.role != "seal" and not s.name:
            problems.append(
                ValidationProblem(
                    f"{t.holder.full_name}, người ký '{s.title}'",
                    _m("thiếu họ tên người ký", "a signatory without a name is never issued"),
                )
            )


def _photo(t: Transcript, problems: list[ValidationProblem]) -> None:
    """The cover photo must be the image it claims to be (PNG or JPEG), so a render never shows a broken image."""
    if t.photo is None:
        return
    import base64
    import binascii

    head, _, body = t.photo.partition(",")
    try:
        data = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        data = b""
    magic = b"\x89PNG\r\n\x1a\n" if "png" in head else b"\xff\xd8\xff"
    if not data.startswith(magic):
        problems.append(
            ValidationProblem(f"{t.holder.full_name}, ảnh", _m("ảnh không phải tệp PNG/JPEG hợp lệ", "not a PNG/JPEG"))
        )


def complete_transcript(t: Transcript) -> tuple[Transcript, list[ValidationProblem]]:
    """Return the transcript with every computed field filled in, and every contradiction with the law found."""
    problems: list[ValidationProblem] = []
    _names(t, problems)
    _photo(t, problems)
    if t.level == "primary":
        primary = tuple(_primary_year(t, y, problems) for y in t.primary_years)
        if t.completion is not None:
            _completion(t, problems)
        return t.model_copy(update={"primary_years": primary}), problems
    years = tuple(_year(t, y, problems) for y in t.years)
    done = t.model_copy(update={"years": years})
    _completion(done, problems)
    return done, problems


__all__ = ["FAIL", "PASS", "complete_transcript"]
