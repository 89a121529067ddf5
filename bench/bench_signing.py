"""Signing benchmark: SealTrail's PadesSigner (key loaded once, container sized up front) against a plain
pyHanko `sign_pdf` with `SimpleSigner.load_pkcs12` per document, both at PAdES B-B on the same 2-page PDF.
"""

from __future__ import annotations

import tempfile
from io import BytesIO
from pathlib import Path

import weasyprint
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers

from bench.common import Figure, per_call, report
from hsm_adapters.soft import SoftKeyBackend
from sealtrail.devpki import create_dev_pki
from signer.pdf import PadesSigner, SignatureRequest


def two_page_pdf() -> bytes:
    rows = "".join(f"<tr><td>Môn học số {i}</td><td>8.{i % 10}</td><td>Đạt</td></tr>" for i in range(70))
    html = f"<h1>Học bạ — Nguyễn Thị Thu Hằng</h1><table>{rows}</table>"
    return weasyprint.HTML(string=html).write_pdf(pdf_variant="pdf/a-3b")


def main(repeat: int = 20) -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        pki = create_dev_pki(Path(tmp) / "pki", "http://127.0.0.1:9")
        p12 = pki.p12_path("principal")
        pdf = two_page_pdf()

        def baseline() -> None:
            signer = signers.SimpleSigner.load_pkcs12(str(p12))
            meta = signers.PdfSignatureMetadata(field_name="Sig1")
            signers.sign_pdf(IncrementalPdfFileWriter(BytesIO(pdf)), meta, signer=signer)

        pades = PadesSigner(trust_roots=[pki.root], timestamp_urls=[], long_term=False)
        backend = SoftKeyBackend.from_pkcs12(p12)
        request = SignatureRequest("Sig1", "principal", "benchmark")

        def ours() -> None:
            pades.sign(pdf, backend, request)

        base_t = per_call(baseline, repeat)
        ours_t = per_call(ours, repeat)
    figures = [Figure("sign 2-page PDF, soft key, B-B", ours_t * 1000, base_t * 1000, "ms", f"n={repeat}")]
    report("signing", figures)
    return figures


if __name__ == "__main__":
    main()
