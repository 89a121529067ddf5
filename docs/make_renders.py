"""Regenerate the PNG renders under docs/ from the sample data: `uv run python docs/make_renders.py`.

Renders (unsigned) the sample transcript and diploma with the packaged templates, and their signed English
translations' layout, and writes the first page of each at 110 dpi (transcripts: two pages), so readers of the
repository see what SealTrail produces. Run it after changing templates.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import schemas
from schemas.xml import to_xml
from signer.render import Renderer

DOCS = Path(__file__).resolve().parent
SAMPLES = {
    "transcript": "transcript_thcs",
    "diploma": "diploma_bachelor",
    "transcript-primary": "transcript_primary",
    "transcript-thpt": "transcript_thpt",
    "transcript-thcs-2026": "transcript_thcs_2026",  # the THCS completion (Law 123/2025/QH15), on its last page
}
TRANSLATED = {"translation-transcript": "transcript_thpt", "translation-diploma": "diploma_bachelor"}
QR = "https://xacthuc.truong.edu.vn/v/GZBGIN62AOEODWRMZ3CBBPAWVY#ST1:6BFOXN*TS0BI$ZDFRH%20JCK"
ORIGINAL_QR = "https://xacthuc.truong.edu.vn/v/KQ3M7TXYWZ2HRB4LNCVD5JSPAE#ST1:6BFOXN*TS0BI$ZDFRH%20JCK"


def _translation(original: schemas.Transcript | schemas.Diploma) -> schemas.Translation:
    """A translation of a sample, with placeholder hashes (the render does not sign or log anything)."""
    school = original.school if isinstance(original, schemas.Transcript) else original.issuer
    return schemas.Translation(
        original_doc_id="MAU-2025-000001",
        original_kind=original.kind,
        original_sha256_pdf="0" * 64,
        original_sha256_xml="0" * 64,
        original_leaf_index=0,
        original_issue_date=original.issue_date,
        original_qr=ORIGINAL_QR,
        holder=original.holder,
        issuer=school,
        issue_date=date(2025, 9, 5),
        issue_place=school.province,
        **{original.kind: original},
    )


def _documents() -> list[tuple[str, schemas.Document]]:
    docs: list[tuple[str, schemas.Document]] = []
    for name, sample in {**SAMPLES, **TRANSLATED}.items():
        try:
            doc = schemas.parse_document(schemas.load_sample(sample))
        except FileNotFoundError:
            continue
        if name in TRANSLATED and isinstance(doc, schemas.Transcript | schemas.Diploma):
            docs.append((name, _translation(doc)))
        else:
            docs.append((name, doc))
    return docs


def main() -> None:
    renderer = Renderer()
    with tempfile.TemporaryDirectory() as tmp:
        for name, doc in _documents():
            doc_id = "MAU-2025-000001-EN" if name in TRANSLATED else "MAU-2025-000001"
            rendered = renderer.render(doc, doc_id=doc_id, qr_payload=QR, xml=to_xml(doc))
            pdf = Path(tmp) / f"{name}.pdf"
            pdf.write_bytes(rendered.pdf)
            pages = (1, 2) if "transcript" in name else (1,)
            if name == "transcript-thcs-2026":
                pages = (1, rendered.page_count)
            for page in pages:
                suffix = "" if page == 1 else ("-last" if page == rendered.page_count > 2 else f"-page{page}")
                out = DOCS / f"{name}{suffix}"
                subprocess.run(
                    [
                        "pdftoppm",
                        "-r",
                        "110",
                        "-png",
                        "-singlefile",
                        "-f",
                        str(page),
                        "-l",
                        str(page),
                        str(pdf),
                        str(out),
                    ],
                    check=True,
                )
                print(f"wrote {out}.png")


if __name__ == "__main__":
    main()
