"""Regenerates the sample documents: `uv run python -m schemas.samples.make_samples`.

Scores are drawn from a fixed seed; averages and levels are computed by schemas.grading, as school software
would export them, so the samples pass the same checks as any import.
"""

from __future__ import annotations

import json
import random
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from schemas.checks import complete_transcript
from schemas.common import Person, School, Signatory
from schemas.diploma import Diploma, EnglishLine
from schemas.primary import PrimarySubject, PrimaryYear, Trait, mid_semester_tested
from schemas.programme import find_subject, programme
from schemas.transcript import Results, SchoolYear, SemesterScores, SubjectYear, ThcsCompletion, Transcript

HERE = Path(__file__).parent
THCS_SCORED = (
    "Ngữ văn",
    "Toán",
    "Ngoại ngữ 1",
    "Giáo dục công dân",
    "Lịch sử và Địa lí",
    "Khoa học tự nhiên",
    "Công nghệ",
    "Tin học",
)
THCS_COMMENT = (
    "Giáo dục thể chất",
    "Âm nhạc",
    "Mĩ thuật",
    "Hoạt động trải nghiệm, hướng nghiệp",
    "Nội dung giáo dục của địa phương",
)
THPT_SCORED = (
    "Ngữ văn",
    "Toán",
    "Ngoại ngữ 1",
    "Lịch sử",
    "Giáo dục quốc phòng và an ninh",
    "Vật lí",
    "Hóa học",
    "Sinh học",
    "Tin học",
)
THPT_COMMENT = ("Giáo dục thể chất", "Hoạt động trải nghiệm, hướng nghiệp", "Nội dung giáo dục của địa phương")

NGUYEN_DU = School(
    code="01001503",
    name="Trường THCS Nguyễn Du",
    authority="PHÒNG GIÁO DỤC VÀ ĐÀO TẠO QUẬN HOÀN KIẾM",
    province="Thành phố Hà Nội",
    district="Quận Hoàn Kiếm",
    address="22 Phố Quang Trung, Hoàn Kiếm, Hà Nội",
)
CHU_VAN_AN = School(
    code="01000105",
    name="Trường THPT Chu Văn An",
    authority="SỞ GIÁO DỤC VÀ ĐÀO TẠO THÀNH PHỐ HÀ NỘI",
    province="Thành phố Hà Nội",
    district="Quận Tây Hồ",
    address="10 Thụy Khuê, Tây Hồ, Hà Nội",
)
SO_HN = School(
    code="01",
    name="Sở Giáo dục và Đào tạo Thành phố Hà Nội",
    authority="ỦY BAN NHÂN DÂN THÀNH PHỐ HÀ NỘI",
    province="Thành phố Hà Nội",
)
DHQG = School(
    code="QHT",
    name="Trường Đại học Khoa học Tự nhiên, Đại học Quốc gia Hà Nội",
    authority="ĐẠI HỌC QUỐC GIA HÀ NỘI",
    province="Thành phố Hà Nội",
    address="334 Nguyễn Trãi, Thanh Xuân, Hà Nội",
)
PUPILS = (
    ("Nguyễn", "Thị Thu", "Hằng", date(2010, 3, 14), 2, "001310012345"),
    ("Trần", "Đức", "Anh", date(2010, 7, 2), 1, "001210023456"),
    ("Lê", "Ngọc Bảo", "Châu", date(2010, 11, 25), 2, "001310034567"),
)


def _score(rng: random.Random, centre: float) -> Decimal:
    return Decimal(str(round(min(10.0, max(3.0, rng.gauss(centre, 1.0))), 1)))


def _year(
    rng: random.Random,
    year: int,
    grade: int,
    class_name: str,
    scored: tuple[str, ...],
    comment: tuple[str, ...],
    ability: float,
    teacher: str,
) -> SchoolYear:
    subjects = []
    for name in scored:
        found = find_subject(grade, name)
        assert found is not None, name
        sems = {
            sem: SemesterScores(
                tx=tuple(_score(rng, ability) for _ in range(found.tx)),
                gk=_score(rng, ability),
                ck=_score(rng, ability),
            )
            for sem in ("hk1", "hk2")
        }
        subjects.append(SubjectYear(subject=name, assessment="scored", **sems))
    for name in comment:
        subjects.append(
            SubjectYear(subject=name, assessment="comment", hk1_level="Đạt", hk2_level="Đạt", year_level="Đạt")
        )
    return SchoolYear(
        school_year=f"{year}-{year + 1}",
        grade=grade,
        class_name=class_name,
        subjects=tuple(subjects),
        learning=Results(),
        conduct=Results(hk1="Tốt", hk2="Tốt", year="Tốt"),
        homeroom_comment="Chăm ngoan, tích cực tham gia hoạt động tập thể; cần phát huy năng lực tự học.",
        sessions_absent=rng.randint(0, 8),
        homeroom_teacher=teacher,
        principal="Lê Văn Hùng",
    )


def _json(doc: Any) -> Any:
    return json.loads(doc.model_dump_json(exclude_none=True))


def transcript_thcs(family: str, middle: str, given: str, born: date, gender: int, pid: str, seed: int) -> Transcript:
    rng = random.Random(seed)
    ability = rng.uniform(6.8, 8.6)
    holder = Person(
        family_name=family,
        middle_name=middle,
        given_name=given,
        birth_date=born,
        birth_place="Hà Nội",
        gender=gender,
        personal_id=pid,
        ethnicity="Kinh",
    )
    years = tuple(
        _year(rng, 2021 + i, 6 + i, f"{6 + i}A1", THCS_SCORED, THCS_COMMENT, ability, "Phạm Thị Mai") for i in range(4)
    )
    t = Transcript(
        level="lower_secondary",
        record_id=f"HB{pid}",
        student_code=f"0100150321{seed:04d}",
        holder=holder,
        school=NGUYEN_DU,
        years=years,
        issue_date=date(2025, 6, 5),
        issue_place="Hà Nội",
        signatories=(
            Signatory(role="homeroom_teacher", title="Giáo viên chủ nhiệm", name="Phạm Thị Mai"),
            Signatory(role="principal", title="Hiệu trưởng", name="Lê Văn Hùng"),
            Signatory(role="seal", title="Trường THCS Nguyễn Du"),
        ),
    )
    complete, problems = complete_transcript(t)
    assert not problems, problems
    return complete


def _photo() -> str:
    """A stand-in 3×4 photo (a plain silhouette drawn here, no real person), as a PNG data URI."""
    import base64
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGB", (120, 160), (214, 222, 232))
    draw = ImageDraw.Draw(img)
    draw.ellipse((35, 25, 85, 80), fill=(120, 130, 145))
    draw.rounded_rectangle((15, 85, 105, 170), radius=30, fill=(120, 130, 145))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def transcript_thcs_2026() -> Transcript:
    """A pupil finishing grade 9 in 2025-2026: no THCS diploma any more, the principal confirms completion of the
    programme in the học bạ (Law 123/2025/QH15, in force 1 January 2026)."""
    rng = random.Random(26)
    holder = Person(
        family_name="Hoàng",
        middle_name="Gia",
        given_name="Bảo",
        birth_date=date(2011, 8, 21),
        birth_place="Hà Nội",
        gender=1,
        personal_id="001211078901",
        ethnicity="Kinh",
    )
    years = tuple(
        _year(rng, 2022 + i, 6 + i, f"{6 + i}A2", THCS_SCORED, THCS_COMMENT, 7.6, "Vũ Thị Ngọc") for i in range(4)
    )
    deputy = {"principal": "Ngô Thị Thanh", "principal_title": "KT. HIỆU TRƯỞNG / PHÓ HIỆU TRƯỞNG"}
    years = (*years[:2], years[2].model_copy(update={**deputy, "awards": "Học sinh Giỏi"}), years[3])
    t = Transcript(
        level="lower_secondary",
        record_id="HB001211078901",
        student_code="01001503220042",
        holder=holder,
        school=NGUYEN_DU,
        years=years,
        issue_date=date(2026, 6, 15),
        issue_place="Hà Nội",
        signatories=(
            Signatory(role="homeroom_teacher", title="Giáo viên chủ nhiệm", name="Vũ Thị Ngọc"),
            Signatory(role="principal", title="Hiệu trưởng", name="Lê Văn Hùng"),
            Signatory(role="seal", title="Trường THCS Nguyễn Du"),
        ),
        completion=ThcsCompletion(
            decision_number="112/QĐ-THCSND", decision_date=date(2026, 6, 10), principal="Lê Văn Hùng"
        ),
        register_number="45/2022",
        photo=_photo(),
        residence="18 Ngõ Huế, phường Hai Bà Trưng, Hà Nội",
        father_name="Hoàng Văn Minh",
        mother_name="Trần Thị Lan",
    )
    complete, problems = complete_transcript(t)
    assert not problems, problems
    return complete


def transcript_thpt() -> Transcript:
    rng = random.Random(77)
    holder = Person(
        family_name="Phạm",
        middle_name="Minh",
        given_name="Khôi",
        birth_date=date(2007, 9, 9),
        birth_place="Hà Nội",
        gender=1,
        personal_id="001207045678",
        ethnicity="Kinh",
    )
    years = tuple(
        _year(rng, 2022 + i, 10 + i, f"{10 + i}A3", THPT_SCORED, THPT_COMMENT, 7.9, "Đỗ Thanh Hà") for i in range(3)
    )
    t = Transcript(
        level="upper_secondary",
        record_id="HB001207045678",
        student_code="0100010522",
        holder=holder,
        school=CHU_VAN_AN,
        years=years,
        issue_date=date(2025, 6, 20),
        issue_place="Hà Nội",
    )
    complete, problems = complete_transcript(t)
    assert not problems, problems
    return complete


def diploma_thpt() -> Diploma:
    return Diploma(
        title="BẰNG TỐT NGHIỆP TRUNG HỌC PHỔ THÔNG",
        level="upper_secondary",
        holder=Person(
            family_name="Nguyễn",
            middle_name="Thị Thu",
            given_name="Hằng",
            birth_date=date(2007, 3, 14),
            birth_place="Hà Nội",
            gender=2,
            personal_id="001307012345",
        ),
        graduation_year=2025,
        diploma_number="HN 0123456",
        register_number="2025/THPT-0456",
        issue_date=date(2025, 9, 5),
        issue_place="Hà Nội",
        issuer=SO_HN,
        signer_title="GIÁM ĐỐC SỞ GIÁO DỤC VÀ ĐÀO TẠO",
        signer_name="Trần Thế Cương",
    )


def diploma_bachelor() -> Diploma:
    return Diploma(
        title="BẰNG CỬ NHÂN",
        level="bachelor",
        holder=Person(
            family_name="Võ",
            middle_name="Hoàng",
            given_name="Yến",
            birth_date=date(2003, 1, 5),
            birth_place="Nghệ An",
            gender=2,
            personal_id="040303056789",
        ),
        major="Khoa học máy tính",
        classification="Giỏi",
        graduation_year=2025,
        diploma_number="QHT.2025.001234",
        register_number="QHT-CN-2025-0789",
        issue_date=date(2025, 7, 15),
        issue_place="Hà Nội",
        issuer=DHQG,
        signer_title="HIỆU TRƯỞNG",
        signer_name="Vũ Hoàng Linh",
        english=EnglishLine(title="THE DEGREE OF BACHELOR", classification="Very good", major="Computer Science"),
    )


QUALITIES = ("Yêu nước", "Nhân ái", "Chăm chỉ", "Trung thực", "Trách nhiệm")
COMPETENCES = (
    "Tự chủ và tự học",
    "Giao tiếp và hợp tác",
    "Giải quyết vấn đề và sáng tạo",
    "Ngôn ngữ",
    "Tính toán",
    "Khoa học",
    "Công nghệ",
    "Tin học",
    "Thẩm mĩ",
    "Thể chất",
)
HOA_BINH = School(
    code="01011001",
    name="Trường Tiểu học Hoà Bình",
    authority="PHÒNG GIÁO DỤC VÀ ĐÀO TẠO QUẬN HOÀN KIẾM",
    province="Thành phố Hà Nội",
    district="Quận Hoàn Kiếm",
    address="12 Phố Hàng Bài, Hoàn Kiếm, Hà Nội",
)


def transcript_primary() -> Transcript:
    """A pupil through grades 1–5: good years, one 'Hoàn thành' year, completes the primary programme."""
    rng = random.Random(5)
    holder = Person(
        family_name="Đặng",
        middle_name="Ngọc Bảo",
        given_name="Châu",
        birth_date=date(2014, 2, 18),
        birth_place="Hà Nội",
        gender=2,
        personal_id="001314067890",
        ethnicity="Kinh",
    )
    years = []
    for i in range(5):
        grade = 1 + i
        weak = grade == 3
        items = []
        for p in programme(grade):
            if not p.required:
                continue
            name = p.name
            level = "H" if weak and name == "Toán" else "T"
            score = (rng.randint(6, 8) if weak and name == "Toán" else rng.randint(9, 10)) if p.periodic_test else None
            mid = rng.randint(7, 10) if p.periodic_test else None
            mids = {}
            if mid_semester_tested(grade, name):
                mids = {"mid_hk1_score": rng.randint(7, 10), "mid_hk2_score": rng.randint(8, 10)}
            items.append(
                PrimarySubject(subject=name, mid_level="T", year_level=level, mid_score=mid, year_score=score, **mids)
            )
        years.append(
            PrimaryYear(
                school_year=f"{2020 + i}-{2021 + i}",
                grade=grade,
                class_name=f"{grade}A2",
                subjects=tuple(items),
                qualities=tuple(Trait(name=q, level="T") for q in QUALITIES),
                competences=tuple(Trait(name=c, level="Đ" if weak and c == "Tính toán" else "T") for c in COMPETENCES),
                homeroom_comment="Em ngoan, chăm học, tích cực tham gia hoạt động của lớp.",
                sessions_absent=rng.randint(0, 6),
                awards="Học sinh Xuất sắc" if not weak else "",
                homeroom_teacher="Nguyễn Thị Lan",
                principal="Trần Quốc Bảo",
            )
        )
    t = Transcript(
        level="primary",
        record_id="HB001314067890",
        student_code="0101100118",
        holder=holder,
        school=HOA_BINH,
        primary_years=tuple(years),
        issue_date=date(2025, 6, 2),
        issue_place="Hà Nội",
        signatories=(
            Signatory(role="homeroom_teacher", title="Giáo viên chủ nhiệm", name="Nguyễn Thị Lan"),
            Signatory(role="principal", title="Hiệu trưởng", name="Trần Quốc Bảo"),
            Signatory(role="seal", title="Trường Tiểu học Hoà Bình"),
        ),
    )
    complete, problems = complete_transcript(t)
    assert not problems, problems
    return complete


def main() -> None:
    outputs: dict[str, Any] = {
        "transcript_thcs": _json(transcript_thcs(*PUPILS[0], seed=1)),
        "transcript_thcs_2026": _json(transcript_thcs_2026()),
        "transcript_thpt": _json(transcript_thpt()),
        "transcript_primary": _json(transcript_primary()),
        "diploma_thpt": _json(diploma_thpt()),
        "diploma_bachelor": _json(diploma_bachelor()),
        "class_9a1": [_json(transcript_thcs(*p, seed=i + 1)) for i, p in enumerate(PUPILS)],
    }
    for name, data in outputs.items():
        (HERE / f"{name}.json").write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
