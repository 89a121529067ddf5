"""What the QR page may show to a visitor who proves they know the holder's date of birth.

Never shown, even then: the personal identification number and ethnicity (sensitive personal data under
Decree 13/2023/NĐ-CP). The details come from the stored signed XML, never from the request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemas
from registry.records import DocumentRecord
from schemas.envelope import signed_data
from schemas.xml import from_xml
from verifier.web import Details


def _rows(doc: Any) -> list[tuple[str, str, str]]:
    holder = doc.holder
    rows = [
        ("Họ và tên", "Full name", holder.full_name),
        ("Ngày sinh", "Date of birth", holder.birth_date.strftime("%d/%m/%Y")),
    ]
    if holder.birth_place:
        rows.append(("Nơi sinh", "Place of birth", holder.birth_place))
    if isinstance(doc, schemas.Diploma):
        rows += [
            ("Văn bằng", "Diploma", doc.title),
            ("Ngành đào tạo", "Major", doc.major or "—"),
            ("Xếp loại", "Classification", doc.classification or "—"),
            ("Năm tốt nghiệp", "Year of graduation", str(doc.graduation_year)),
            ("Số hiệu", "Diploma number", doc.diploma_number),
            ("Số vào sổ cấp bằng", "Register number", doc.register_number),
        ]
    elif isinstance(doc, schemas.Transcript):
        rows.append(("Mã học sinh", "Student code", doc.student_code))
        for school_year, class_name in [(y.school_year, y.class_name) for y in doc.primary_years] + [
            (y.school_year, y.class_name) for y in doc.years
        ]:
            rows.append((f"Năm học {school_year}", f"School year {school_year}", f"Lớp {class_name}"))
    return rows


def details_from_store(read_xml: Callable[[str], bytes]) -> Callable[[DocumentRecord], Details]:
    """``read_xml(sha256)`` returns the stored signed XML of a document."""

    def details(record: DocumentRecord) -> Details:
        assert record.sha256_xml is not None
        doc = from_xml(signed_data(read_xml(record.sha256_xml)))
        return Details(doc.holder.birth_date, _rows(doc))

    return details
