"""End-to-end batch: 2-page transcripts issued through `Issuer` (render → 3 PAdES + 3 XAdES signatures at B-LT
against the live loopback dev PKI (OCSP, CRL, TSA) → store → ledger), on this machine's cores.

SealTrail: `Issuer.issue_many` with the render in a worker process while this process signs, stores and logs
(the two overlap on two cores), one Issuer for the whole batch. Baseline, same run: the straightforward loop, a
new Issuer (renderer, signers) per document and `issue` one after another.

Reported: documents per second, peak RSS (this process, then the render worker), and RSS after 10%, 50% and
100% of the batch to show it stays flat. BENCH_BATCH sets the batch size: default 200, so that a full run
fits in about 10 minutes; BENCH_BATCH=1000 for the 1,000-document figure; quick mode 6.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import QUICK, Figure, peak_rss_mb, report, rss_mb
from bench.fixtures import two_page_transcript
from bench.xades_blt import xades_figure


def main() -> list[Figure]:
    import schemas
    from sealtrail.deployment import Deployment
    from sealtrail.settings import Settings
    from tests.conftest import free_port

    size = int(os.environ.get("BENCH_BATCH", "6" if QUICK else "200"))
    baseline_docs = 2 if QUICK else 4
    checkpoints = sorted({max(1, size // 10), max(1, size // 2), size})
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), dev_pki_url=f"http://127.0.0.1:{free_port()}")
        dep = Deployment(settings)
        services = dep.start_dev_pki_services()
        try:
            xades = xades_figure(dep, 2 if QUICK else int(os.environ.get("BENCH_XADES", "10")))
            docs: list[schemas.Document] = [two_page_transcript(i) for i in range(max(size, baseline_docs))]

            t = time.perf_counter()
            first = None
            for doc in docs[:baseline_docs]:
                issued = dep.make_issuer().issue(doc)
                first = first or issued
            base_rate = baseline_docs / (time.perf_counter() - t)

            issuer = dep.make_issuer()
            rss: dict[int, float] = {}
            at: dict[int, float] = {}
            last = None
            t = time.perf_counter()
            for done, issued in enumerate(issuer.issue_many(iter(docs[:size]), render_workers=1), start=1):
                last = issued
                if done in checkpoints:
                    rss[done] = rss_mb()
                    at[done] = time.perf_counter() - t
            elapsed = time.perf_counter() - t
            rate = size / elapsed
        finally:
            if services:
                services.stop()
        assert first is not None and last is not None
        _check_pdfsig(last.pdf)
    peak_main, peak_worker = peak_rss_mb(), peak_rss_mb(children=True)
    growth = {f"{k}docs": v / rss[checkpoints[0]] for k, v in rss.items() if k != checkpoints[0]}
    first_n = checkpoints[0]
    per_doc_first = at[first_n] / first_n  # seconds per document over the first tenth (the pool's start included)
    rate_growth = {f"{k}docs": (at[k] / k) / per_doc_first for k in checkpoints if k != first_n}
    rss_text = ", ".join(f"{k}: {v:.0f} MiB" for k, v in rss.items())
    figures = [
        xades,
        Figure(
            "batch.rate",
            f"issue 2-page transcripts end to end, B-LT ({size} docs)",
            rate,
            base_rate,
            "doc/s",
            f"{elapsed:.0f} s in all; baseline: new Issuer per doc, {baseline_docs} docs",
            higher_is_better=True,
            growth=rate_growth,
            growth_note=f"(seconds per document over the first N docs, relative to the first {first_n}; 1.0 = flat)",
        ),
        Figure(
            "batch.rss",
            "  RSS of the issuing process at the end of the batch",
            rss[size],
            rss[checkpoints[0]],
            "MiB",
            f"after {rss_text}; peak {peak_main:.0f} MiB, render worker peak {peak_worker:.0f} MiB",
            growth=growth,
            growth_note="(RSS relative to the first checkpoint; 1.0 = flat)",
        ),
    ]
    report("batch", figures)
    return figures


def _check_pdfsig(pdf: bytes) -> None:
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        out = subprocess.run(["pdfsig", f.name], capture_output=True, text=True, timeout=60).stdout
    if out.count("Signature is Valid") != 3:
        raise RuntimeError(f"the last document of the batch does not carry 3 valid signatures:\n{out}")


if __name__ == "__main__":
    main()
