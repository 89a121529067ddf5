"""What the strict reading and the post-signature policy (verifier.pdf.structure_problem) add to checking an issued
PDF: `uv run python -m bench.pdf_structure_time`. Issues the verifier tests' sample documents (and a B-LTA
extension) in a temporary installation, then prints per document the median and minimum time of the structure check
alone and of ``PdfVerifier.verify`` with and without it."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import verifier.pdf as vp
from signer.archive import extend_to_lta
from tests.verifier.conftest import installation


def main(rounds: int = 20) -> None:
    with installation(Path(tempfile.mkdtemp())) as (dep, docs):
        pki = dep.dev_pki
        lta = extend_to_lta(
            docs[0].pdf, timestamp_urls=[pki.tsa_url], trust_roots=dep.trust_roots, other_certs=dep.intermediates
        )
        files = {"diploma": docs[0].pdf, "bachelor": docs[1].pdf, "transcript": docs[2].pdf, "diploma B-LTA": lta}
        real = vp.structure_problem
        for name, pdf in files.items():
            alone = []
            for _ in range(rounds):
                started = time.perf_counter()
                assert real(pdf) is None
                alone.append(time.perf_counter() - started)
            with_check, without = [], []
            for _ in range(max(3, rounds // 3)):
                vp.structure_problem = real
                started = time.perf_counter()
                assert dep.pdf_verifier.verify(pdf).verdict == "valid"
                with_check.append(time.perf_counter() - started)
                vp.structure_problem = lambda _pdf: None
                started = time.perf_counter()
                dep.pdf_verifier.verify(pdf)
                without.append(time.perf_counter() - started)
            vp.structure_problem = real
            med = statistics.median
            print(
                f"{name:14s} {len(pdf) // 1024:4d} KiB  structure check median {med(alone) * 1000:5.1f} ms "
                f"(min {min(alone) * 1000:.1f})  verify() median {med(with_check) * 1000:6.1f} ms with it, "
                f"{med(without) * 1000:6.1f} ms without"
            )


if __name__ == "__main__":
    main()
