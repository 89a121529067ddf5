"""Signed English translations (bản dịch): a new document that carries an issued original's data, names it by
id, SHA-256 hashes and log entry, and is rendered in English for admissions abroad. The original prevails."""

from __future__ import annotations

from datetime import date
from typing import Literal, Self

from pydantic import Field, model_validator

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
    # The original's data, exactly as issued: one of the two, the one ``original_kind`` names (two optional
    # elements rather than a union, so the published XSD stays deterministic).
    transcript: Transcript | None = None
    diploma: Diploma | None = None

    @model_validator(mode="after")
    def _one_original(self) -> Self:
        given = [k for k in ("transcript", "diploma") if getattr(self, k) is not None]
        if given != [self.original_kind]:
            raise ValueError(f"the original's data must be given as '{self.original_kind}' (and only that)")
        return self

    @property
    def original(self) -> Transcript | Diploma:
        found = self.transcript or self.diploma
        assert found is not None
        return found
