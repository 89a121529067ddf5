"""Signed English translations (bản dịch): a new document that carries an issued original's data, names it by
id, SHA-256 hashes and log entry, and is rendered in English for admissions abroad. The original prevails."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field

from schemas.common import Model, Person, School, Text
from schemas.diploma import Diploma
from schemas.transcript import Transcript

HEX64 = r"^[0-9a-f]{64}$"


class Translation(Model):
    kind: Literal["translation"] = "translation"
    language: Literal["en"] = "en"
    original_doc_id: str = Field(min_length=1)
    original_kind: Literal["transcript", "diploma"]
    original_sha256_pdf: str = Field(pattern=HEX64, description="SHA-256 of the original's issued PDF")
    original_sha256_xml: str = Field(pattern=HEX64, description="SHA-256 of the original's signed XML")
    original_leaf_index: int = Field(ge=0, description="The original's issue entry in the public log")
    original_issue_date: date
    original_qr: str = Field(min_length=1, description="The QR payload printed on the original (link and seal)")
    holder: Person
    issuer: School
    issue_date: date
    issue_place: Text
    original: Annotated[Transcript | Diploma, Field(discriminator="kind")]
