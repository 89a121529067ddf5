"""Regenerate the PNG renders under docs/ from the sample data: `uv run python docs/make_renders.py`.

Renders (unsigned) the sample transcript and diploma with the packaged templates and writes the first page of
each at 110 dpi, so readers of the repository see what SealTrail produces. Run it after changing templates.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import schemas
from schemas.xml import to_xml
from signer.render import Renderer

DOCS = Path(__file__).resolve().parent
SAMPLES = {"transcript": "transcript_thcs", "diploma": "diploma_bachelor", "transcript-primary": "transcript_primary"}
QR = "https://xacthuc.truong.edu.vn/v/GZBGIN62AOEODWRMZ3CBBPAWVY#ST1:6BFOXN*TS0BI$ZDFRH%20JCK"


def main() -> None:
    renderer = Renderer()
    with tempfile.TemporaryDirectory() as tmp:
        for name, sample in SAMPLES.items():
            try:
                doc = schemas.parse_document(schemas.load_sample(sample))
            except FileNotFoundError:
                continue
            rendered = renderer.render(doc, doc_id="MAU-2025-000001", qr_payload=QR, xml=to_xml(doc))
            pdf = Path(tmp) / f"{name}.pdf"
            pdf.write_bytes(rendered.pdf)
            for page in (1, 2) if name.startswith("transcript") else (1,):
                suffix = "" if page == 1 else f"-page{page}"
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
