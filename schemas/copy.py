"""Certified electronic copies (bản sao điện tử): a new document naming its original."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from schemas.common import Model, Person, School, Text


class CertifiedCopy(Model):
    kind: Literal["copy"] = "copy"
    original_doc_id: str = Field(min_length=1)
    original_kind: Literal["transcript", "diploma"]
    original_sha256_pdf: str = Field(pattern=r"^[0-9a-f]{64}$")
    holder: Person
    issuer: School
    copy_number: int = Field(ge=1)
    issue_date: date
    issue_place: Text
    requested_by: Text = ""
