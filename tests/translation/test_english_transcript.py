"""The English translation of a transcript follows the law: "Promoted" only when promoted (never in grades 9 and
12), absences in sessions, the THCS completion, and a legend of the levels."""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path

import schemas
from schemas.translation import Translation
from schemas.xml import to_xml
from signer.render import Renderer

QR = "https://xacthuc.truong.edu.vn/v/GZBGIN62AOEODWRMZ3CBBPAWVY"


def _english(name: str, tmp_path: Path) -> str:
    original = schemas.parse_document(schemas.load_sample(name))
    assert isinstance(original, schemas.Transcript)
    doc = Translation(
        original_doc_id="HB-2026-0001",
        original_kind="transcript",
        original_sha256_pdf="a" * 64,
        original_sha256_xml="b" * 64,
        original_leaf_index=7,
        original_issue_date=original.issue_date,
        original_qr=QR,
        holder=original.holder,
        issuer=original.school,
        issue_date=date(2026, 7, 1),
        issue_place="Hà Nội",
        transcript=original,
    )
    rendered = Renderer().render(doc, doc_id="TR-TEST", qr_payload=QR, xml=to_xml(doc))
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(rendered.pdf)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(text.split())


def test_promoted_only_when_promoted_sessions_not_days_and_the_completion(tmp_path: Path) -> None:
    text = _english("transcript_thcs_2026", tmp_path)
    assert text.count("Promoted to the next grade.") == 3  # grades 6–8; grade 9 completes the programme
    assert "Completed the lower-secondary education programme." in text
    assert "decision 112/QĐ-THCSND of 10 June 2026" in text and "Law 123/2025/QH15" in text
    assert "Sessions (half-days) absent in the year:" in text and "Days absent" not in text
    assert "school year completed" not in text


def test_the_legend_names_every_level(tmp_path: Path) -> None:
    text = _english("transcript_thpt", tmp_path)
    assert text.count("Promoted to the next grade.") == 2  # grades 10 and 11, never 12
    assert "Levels used in this transcript" in text
    for vi, en in (("Tốt", "Very good"), ("Khá", "Good"), ("Đạt", "Satisfactory"), ("Chưa đạt", "Unsatisfactory")):
        assert f"{vi} {en}" in text
    assert "more than 45 sessions" in text
