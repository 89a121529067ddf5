"""Render benchmark: 2-page transcripts (Jinja2 + WeasyPrint → PDF/A-3b with the XML attached and signature fields).

Baseline, measured in the same run: the straightforward way, and how SealTrail rendered before #10: a new
Renderer (template environment, font configuration, stylesheet) per document, the QR code as an SVG path,
one document after another in one process.

SealTrail: `Renderer.render_many` over a process pool on the machine's cores (2 here), each worker holding one
Renderer for the whole batch, and the QR as a 1-bit PNG. The single-process figure separates the two gains.
"""

from __future__ import annotations

import os
import time

from bench.common import QUICK, Figure, growth_of, per_call, report
from bench.fixtures import render_job
from signer.render import RenderedDocument, Renderer, RenderJob, qr_svg_data_uri


class StraightforwardRenderer(Renderer):
    """The baseline: the QR as an SVG path (the pre-#10 code), and built anew for every document."""

    @staticmethod
    def _qr_uri(payload: str) -> str:
        return qr_svg_data_uri(payload)


def _baseline(job: RenderJob) -> RenderedDocument:
    return StraightforwardRenderer().render(job.doc, doc_id=job.doc_id, qr_payload=job.qr_payload, xml=job.xml)


def _check(out: RenderedDocument) -> None:
    if out.page_count != 2 or len(out.slots) != 3:
        raise RuntimeError(f"unexpected render: {out.page_count} pages, {len(out.slots)} signature fields")


def batch_seconds_per_doc(renderer: Renderer, n: int, workers: int) -> float:
    jobs = [render_job(i) for i in range(n)]
    t = time.perf_counter()
    for out in renderer.render_many(jobs, workers=workers):
        _check(out)
    return (time.perf_counter() - t) / n


def main() -> list[Figure]:
    repeat, n, scales = (2, 3, (1, 10)) if QUICK else (4, 4, (1, 10))
    workers = os.cpu_count() or 2
    job = render_job()
    renderer = Renderer()
    _check(_baseline(job))
    base_t = per_call(lambda: _baseline(job), repeat, warmup=1)
    single_t = per_call(
        lambda: renderer.render(job.doc, doc_id=job.doc_id, qr_payload=job.qr_payload, xml=job.xml), repeat, warmup=1
    )
    # The pool is started once (spawning the workers and importing WeasyPrint takes seconds) and kept by the
    # Renderer for every later batch, as a long-running issuing process does; the warm-up batch pays for it.
    batch_seconds_per_doc(renderer, 2 * workers, workers)
    per_doc = {k: batch_seconds_per_doc(renderer, n * k, workers) for k in scales}
    renderer.close()
    figures = [
        Figure(
            "render.batch",
            f"render 2-page transcript, batch on {workers} processes",
            per_doc[scales[-1]] * 1000,
            base_t * 1000,
            "ms",
            f"per document, batch of {n * scales[-1]}; baseline: fresh renderer + SVG QR per doc",
            growth=growth_of(per_doc),
            growth_note=f"(batches of {'/'.join(str(n * k) for k in scales)}; pool already started)",
        ),
        Figure(
            "render.single",
            "  render 2-page transcript, one process",
            single_t * 1000,
            base_t * 1000,
            "ms",
            "renderer reused, PNG QR; no pool",
        ),
    ]
    report("render", figures)
    return figures


if __name__ == "__main__":
    main()
