"""The English wording of signed translations: subjects, ratings, classifications, titles and dates.

Names of people and places are never translated (the pupil's name keeps its diacritics). A word not in these
tables is printed as written in Vietnamese, so nothing is ever invented; the Vietnamese original prevails.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from jinja2 import Environment

ATTACHMENT = "Structured data of this translation, with the original's data and hashes (XML)"

SUBJECTS = {
    "Toán": "Mathematics",
    "Ngữ văn": "Literature",
    "Tiếng Việt": "Vietnamese Language",
    "Ngoại ngữ 1": "Foreign Language 1",
    "Ngoại ngữ 2": "Foreign Language 2",
    "Tiếng dân tộc thiểu số": "Ethnic Minority Language",
    "Giáo dục công dân": "Civic Education",
    "Giáo dục kinh tế và pháp luật": "Economic and Legal Education",
    "Đạo đức": "Ethics",
    "Tự nhiên và Xã hội": "Nature and Society",
    "Khoa học": "Science",
    "Khoa học tự nhiên": "Natural Sciences",
    "Lịch sử": "History",
    "Địa lí": "Geography",
    "Lịch sử và Địa lí": "History and Geography",
    "Vật lí": "Physics",
    "Hóa học": "Chemistry",
    "Sinh học": "Biology",
    "Công nghệ": "Technology",
    "Tin học": "Informatics",
    "Tin học và Công nghệ": "Informatics and Technology",
    "Giáo dục thể chất": "Physical Education",
    "Âm nhạc": "Music",
    "Mĩ thuật": "Fine Arts",
    "Nghệ thuật": "Arts",
    "Hoạt động trải nghiệm": "Experiential Activities",
    "Hoạt động trải nghiệm, hướng nghiệp": "Experiential and Career Guidance Activities",
    "Nội dung giáo dục của địa phương": "Local Education Content",
    "Giáo dục quốc phòng và an ninh": "National Defence and Security Education",
}
TRAITS = {  # primary: qualities (phẩm chất) and competences (năng lực), Circular 27/2020
    "Yêu nước": "Patriotism",
    "Nhân ái": "Compassion",
    "Chăm chỉ": "Diligence",
    "Trung thực": "Honesty",
    "Trách nhiệm": "Responsibility",
    "Tự chủ và tự học": "Self-reliance and self-study",
    "Giao tiếp và hợp tác": "Communication and cooperation",
    "Giải quyết vấn đề và sáng tạo": "Problem solving and creativity",
    "Ngôn ngữ": "Language",
    "Tính toán": "Numeracy",
    "Khoa học": "Science",
    "Công nghệ": "Technology",
    "Tin học": "Informatics",
    "Thẩm mĩ": "Aesthetics",
    "Thể chất": "Physical fitness",
}
# Learning and conduct results, and comment-assessed subjects (Circular 22/2021).
RESULTS = {"Tốt": "Very good", "Khá": "Good", "Đạt": "Satisfactory", "Chưa đạt": "Unsatisfactory"}
# Years judged before Circular 22 (Circular 58/2011, amended by 26/2020): học lực and hạnh kiểm, as recorded.
LEGACY_RESULTS = {"Giỏi": "Excellent", "Trung bình": "Average", "Yếu": "Weak", "Kém": "Poor"}
# The legend printed under a translated transcript: every level, its English and what it means.
LEGEND = (
    ("Tốt", "Very good", "the highest of the four levels of Circular 22/2021 (learning and conduct)"),
    ("Khá", "Good", "the second level"),
    ("Đạt", "Satisfactory", "the third level; also a comment-assessed subject passed"),
    ("Chưa đạt", "Unsatisfactory", "the lowest level; a comment-assessed subject not passed"),
)
LEGACY_LEGEND = (
    ("Giỏi", "Excellent", "the highest learning level of Circular 58/2011 (years before Circular 22)"),
    ("Khá", "Good", "the second level"),
    ("Trung bình", "Average", "the third level"),
    ("Yếu", "Weak", "the fourth level"),
    ("Kém", "Poor", "the lowest learning level"),
)
PRIMARY_LEGEND = (
    ("Hoàn thành xuất sắc", "Completed with distinction", "the highest year-end result of Circular 27/2020"),
    ("Hoàn thành tốt", "Completed well", "the second result"),
    ("Hoàn thành", "Completed", "the third result"),
    ("Chưa hoàn thành", "Not yet completed", "the grade's programme is not completed"),
)
PRIMARY_RESULTS = {  # Circular 27/2020
    "Hoàn thành xuất sắc": "Completed with distinction",
    "Hoàn thành tốt": "Completed well",
    "Hoàn thành": "Completed",
    "Chưa hoàn thành": "Not yet completed",
}
PRIMARY_SUBJECT_LEVELS = {"T": "Completed well", "H": "Completed", "C": "Not yet completed"}
PRIMARY_TRAIT_LEVELS = {"T": "Good", "Đ": "Satisfactory", "C": "Needs improvement"}
CLASSIFICATIONS = {
    "Xuất sắc": "Excellent",
    "Giỏi": "Very good",
    "Khá": "Good",
    "Trung bình khá": "Fairly good",
    "Trung bình": "Average",
}
SCHOOL_LEVELS = {
    "primary": "Primary School",
    "lower_secondary": "Lower Secondary School",
    "upper_secondary": "Upper Secondary School",
}
DIPLOMA_TITLES = {
    "upper_secondary": "Upper Secondary School Graduation Diploma",
    "lower_secondary": "Lower Secondary School Graduation Diploma",
    "college": "College Diploma",
    "bachelor": "Bachelor's Degree",
    "engineer": "Engineer's Degree",
    "master": "Master's Degree",
    "doctor": "Doctoral Degree",
}
TITLES = {  # the signer's title on a diploma
    "HIỆU TRƯỞNG": "Principal / Rector",
    "GIÁM ĐỐC": "Director",
    "GIÁM ĐỐC SỞ GIÁO DỤC VÀ ĐÀO TẠO": "Director of the Department of Education and Training",
    "CHỦ TỊCH": "Chairperson",
}
GENDERS = {1: "Male", 2: "Female"}
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
# Spelling variants in use (old and new tone-mark placement, y/i): both the tables and the text are looked up in
# one form, so "Hoá học" and "Hóa học" find the same entry.
_VARIANTS = (("oá", "óa"), ("oà", "òa"), ("oả", "ỏa"), ("oã", "õa"), ("oạ", "ọa"), ("lý", "lí"), ("Mỹ", "Mĩ"))
_SCHOOL_NAMES = (
    (re.compile(r"^Trường Tiểu học (.+)$", re.I), "{} Primary School"),
    (re.compile(r"^Trường (?:THCS|Trung học cơ sở) (.+)$", re.I), "{} Lower Secondary School"),
    (re.compile(r"^Trường (?:THPT|Trung học phổ thông) (.+)$", re.I), "{} Upper Secondary School"),
    (re.compile(r"^Trường (?:TH, THCS và THPT|Phổ thông) (.+)$", re.I), "{} School"),
)
_UNITS = {"thành phố", "tỉnh", "quận", "huyện", "thị xã", "phường", "xã", "thị trấn"}
_AUTHORITIES = (
    (re.compile(r"^BỘ GIÁO DỤC VÀ ĐÀO TẠO$", re.I), "Ministry of Education and Training"),
    (re.compile(r"^SỞ GIÁO DỤC VÀ ĐÀO TẠO (.+)$", re.I), "Department of Education and Training, {}"),
    (re.compile(r"^PHÒNG GIÁO DỤC VÀ ĐÀO TẠO (.+)$", re.I), "Bureau of Education and Training, {}"),
    (re.compile(r"^ỦY BAN NHÂN DÂN (.+)$", re.I), "People's Committee of {}"),
)


def _key(text: str) -> str:
    text = unicodedata.normalize("NFC", text.strip())
    for old, new in _VARIANTS:
        text = text.replace(old, new)
    return text


def _lookup(table: dict[str, str], text: str | None) -> str:
    if not text:
        return ""
    return {_key(k): v for k, v in table.items()}.get(_key(text), text)


def english_date(day: date | None) -> str:
    """'5 September 2025'."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}" if day else ""


def _place(upper: str) -> str:
    """'THÀNH PHỐ HÀ NỘI' → 'Thành phố Hà Nội': a place written in capitals, in the usual case (the kind of unit
    in lower case after its first letter, the name capitalised)."""
    words = upper.title().split()
    for size in (2, 1):
        if len(words) > size and " ".join(words[:size]).casefold() in _UNITS:
            return " ".join([words[0], *(w.lower() for w in words[1:size]), *words[size:]])
    return " ".join(words)


def school_name(name: str) -> str:
    """'Trường THCS Nguyễn Du' → 'Nguyễn Du Lower Secondary School (Trường THCS Nguyễn Du)'; other names as written."""
    for pattern, form in _SCHOOL_NAMES:
        match = pattern.match(name.strip())
        if match:
            return f"{form.format(match.group(1))} ({name.strip()})"
    return name


def authority(name: str) -> str:
    """The issuing authority's kind in English, its place as written ('SỞ … HÀ NỘI' → '…, Thành phố Hà Nội')."""
    for pattern, form in _AUTHORITIES:
        match = pattern.match(name.strip())
        if match:
            return form.format(*(_place(g) for g in match.groups()))
    return name


def signer_title(title: str) -> str:
    """'HIỆU TRƯỞNG' → 'Principal / Rector (HIỆU TRƯỞNG)'; an unknown title as written."""
    known = {_key(k).casefold(): v for k, v in TITLES.items()}.get(_key(title).casefold())
    return f"{known} ({title})" if known else title


def diploma_title(doc: object) -> str:
    english = getattr(doc, "english", None)
    if english is not None and english.title:
        return str(english.title)
    return DIPLOMA_TITLES.get(str(getattr(doc, "level", "")), str(getattr(doc, "title", "")))


def classification(doc: object) -> str:
    english = getattr(doc, "english", None)
    if english is not None and english.classification:
        return str(english.classification)
    return _lookup(CLASSIFICATIONS, str(getattr(doc, "classification", "")))


def install(env: Environment) -> None:
    """The filters and tables the English templates use."""
    env.filters.update(
        en_date=english_date,
        en_subject=lambda s: _lookup(SUBJECTS, s),
        en_trait=lambda s: _lookup(TRAITS, s),
        en_result=lambda s: _lookup({**RESULTS, **LEGACY_RESULTS}, s),
        en_primary_result=lambda s: _lookup(PRIMARY_RESULTS, s),
        en_title=signer_title,
        en_gender=lambda g: GENDERS.get(int(g), ""),
        en_school=school_name,
        en_authority=authority,
        en_diploma_title=diploma_title,
        en_classification=classification,
    )
    env.globals.update(
        EN_SCHOOL_LEVELS=SCHOOL_LEVELS,
        EN_PRIMARY_SUBJECT_LEVELS=PRIMARY_SUBJECT_LEVELS,
        EN_PRIMARY_TRAIT_LEVELS=PRIMARY_TRAIT_LEVELS,
        EN_LEGEND=LEGEND,
        EN_LEGACY_LEGEND=LEGACY_LEGEND,
        EN_PRIMARY_LEGEND=PRIMARY_LEGEND,
    )
