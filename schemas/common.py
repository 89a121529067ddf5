"""Shared pieces of every document: people, schools, signatories, and validation errors."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date
from enum import IntEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from errors import PermanentError


def nfc(text: str) -> str:
    """Normalise Vietnamese text to NFC so that 'Hằng' typed on any keyboard is stored as the same bytes."""
    return unicodedata.normalize("NFC", text).strip()


# Control characters (NUL, escapes), format characters (right-to-left overrides and isolates, zero-width spaces and
# joiners, BOM), surrogates, private-use and unassigned code points: none belongs in a record. They would make a
# name print one way and compare another, or break signing later (a NUL fails XML serialisation).
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}
_ALLOWED_CONTROLS = {"\n", "\t"}


def printable(text: str, *, single_line: bool = False) -> str:
    """``text`` unchanged when every character is printable Unicode (tabs and newlines too unless ``single_line``);
    ValueError naming the first offending code point otherwise."""
    for ch in text:
        if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES and (single_line or ch not in _ALLOWED_CONTROLS):
            raise ValueError(
                f"có ký tự không in được U+{ord(ch):04X} (ký tự điều khiển, định dạng hoặc vô hình) / holds the "
                f"non-printable character U+{ord(ch):04X} (a control, format or invisible character)"
            )
    return text


def _name(text: str) -> str:
    return printable(text, single_line=True)


Text = Annotated[str, AfterValidator(nfc), AfterValidator(printable)]
Name = Annotated[str, AfterValidator(nfc), AfterValidator(_name)]
"""A person's name or any one-line label: printable Unicode only, no line breaks or tabs."""


class Model(BaseModel):
    """Base for all document models: strict about unknown fields, immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Gender(IntEnum):
    """QCVN 109:2017 coding (`gioitinh`)."""

    UNKNOWN = 0
    MALE = 1
    FEMALE = 2


class Person(Model):
    """A pupil or graduate. Names are kept as written, in Họ + chữ đệm + tên order."""

    family_name: Name = Field(min_length=1, description="Họ")
    middle_name: Name = Field(default="", description="Chữ đệm")
    given_name: Name = Field(min_length=1, description="Tên")
    birth_date: date
    birth_place: Text = ""
    gender: Gender = Gender.UNKNOWN
    personal_id: str | None = Field(default=None, pattern=r"^\d{12}$", description="Mã định danh cá nhân")
    learner_code: str | None = Field(default=None, description="Mã hồ sơ học tập suốt đời")
    ethnicity: Text | None = Field(default=None, description="Dân tộc — sensitive personal data, never public")
    nationality: Text = "Việt Nam"

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.family_name, self.middle_name, self.given_name) if p)

    @property
    def masked_name(self) -> str:
        """What a public page may show: initials of family and middle names, the given name in full."""
        initials = [p[0] + "." for p in (self.family_name, *self.middle_name.split()) if p]
        return " ".join([*initials, self.given_name])


class School(Model):
    """An issuing institution (school, university, or education department)."""

    code: str = Field(min_length=1, description="Mã trường (matruong)")
    name: Text = Field(min_length=1)
    authority: Text = Field(description="Cơ quan chủ quản, e.g. SỞ GIÁO DỤC VÀ ĐÀO TẠO THÀNH PHỐ HÀ NỘI")
    province: Text
    district: Text = ""
    address: Text = ""


SignatoryRole = Literal["homeroom_teacher", "principal", "seal"]


class Signatory(Model):
    """Someone (or the institution's seal) who signs the document, in signing order."""

    role: SignatoryRole
    title: Name = Field(description="e.g. 'Giáo viên chủ nhiệm', 'Hiệu trưởng'")
    name: Name = ""


@dataclass(frozen=True)
class ValidationProblem:
    """One thing wrong with the input, located precisely enough for a teacher to fix it."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class SchemaError(PermanentError, ValueError):
    """Input that does not describe a valid document. Carries every problem found, not only the first."""

    def __init__(self, problems: list[ValidationProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
