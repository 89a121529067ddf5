"""Diplomas (văn bằng) per Circular 21/2019/TT-BGDĐT."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from schemas.common import Model, Person, School, Signatory, Text

# "lower_secondary": the THCS diploma, issued until Law 123/2025/QH15 ended it on 1 January 2026; those issued
# before stay valid and verifiable (schemas.checks.check_diploma refuses new ones).
DiplomaLevel = Literal["upper_secondary", "college", "bachelor", "engineer", "master", "doctor", "lower_secondary"]


class EnglishLine(Model):
    """Optional English rendering, printed no larger than the Vietnamese."""

    title: Text
    classification: Text = ""
    major: Text = ""


class Diploma(Model):
    kind: Literal["diploma"] = "diploma"
    title: Text = Field(description="e.g. 'BẰNG TỐT NGHIỆP TRUNG HỌC PHỔ THÔNG', 'BẰNG CỬ NHÂN'")
    level: DiplomaLevel
    holder: Person
    major: Text = ""
    classification: Text = Field(default="", description="Xếp loại, e.g. 'Giỏi', 'Khá'")
    graduation_year: int = Field(ge=1950, le=2100)
    diploma_number: str = Field(min_length=1, description="Số hiệu")
    register_number: str = Field(min_length=1, description="Số vào sổ cấp bằng")
    issue_date: date
    issue_place: Text = Field(description="Place name for the date line, e.g. 'Hà Nội'")
    issuer: School
    signer_title: Text = Field(description="e.g. 'GIÁM ĐỐC SỞ GIÁO DỤC VÀ ĐÀO TẠO'")
    signer_name: Text
    signatories: tuple[Signatory, ...] = ()
    english: EnglishLine | None = None
