"""Verification: the QR page under load on loopback (requests/s, p99) and full PDF/XML validation time.

Run: `uv run python -m bench verify` (BENCH_VERIFY_REQUESTS sets the number of page requests, default 2000).

Baselines, measured in the same run:
- QR page: a naive page that re-validates the stored signed PDF on every request (what a service without a
  registry and log would have to do) against ours (registry status + a log inclusion proof).
- PDF validation: a verifier built per request (trust list, validation context and all) against our verifier
  built once and reused.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import uvicorn

from bench.common import Figure, per_call, report


def _serve(app: object, port: int) -> uvicorn.Server:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the benchmark server did not start")
        time.sleep(0.05)
    return server


def _load(url: str, requests: int, concurrency: int) -> tuple[float, float, float]:
    """(requests per second, median ms, p99 ms) for ``requests`` GETs from ``concurrency`` client threads."""
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        with httpx.Client(timeout=30) as client:
            for _ in range(n):
                t = time.perf_counter()
                response = client.get(url)
                elapsed = time.perf_counter() - t
                if response.status_code != 200:
                    raise RuntimeError(f"{url} answered {response.status_code}")
                with lock:
                    latencies.append(elapsed)

    per_worker = max(1, requests // concurrency)
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, [per_worker] * concurrency))
    wall = time.perf_counter() - start
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / wall, statistics.median(latencies) * 1000, p99 * 1000


def main() -> list[Figure]:
    import schemas
    from sealtrail.app import create_app
    from sealtrail.demo import issuer_for
    from sealtrail.deployment import Deployment
    from sealtrail.ledgerwiring import publish_checkpoint
    from sealtrail.settings import Settings
    from tests.conftest import free_port
    from verifier.pdf import PdfVerifier

    requests = int(os.environ.get("BENCH_VERIFY_REQUESTS", "2000"))
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            dev_pki_url=f"http://127.0.0.1:{free_port()}",
            public_rate_per_minute=10_000_000,  # the benchmark is one client hammering on purpose
        )
        dep = Deployment(settings)
        services = dep.start_dev_pki_services()
        try:
            issued = issuer_for(dep).issue(schemas.parse_document(schemas.load_sample("transcript_thcs")))
            publish_checkpoint(dep)
        finally:
            if services:
                services.stop()

        app = create_app(settings)
        verifier = dep.pdf_verifier

        @app.get("/naive/{token}")
        def naive(token: str) -> dict[str, str]:
            return {"verdict": verifier.verify(issued.pdf).verdict}

        port = free_port()
        server = _serve(app, port)
        try:
            base = f"http://127.0.0.1:{port}"
            ours = _load(f"{base}/v/{issued.token}", requests, concurrency=8)
            naive_requests = max(16, requests // 50)
            slow = _load(f"{base}/naive/{issued.token}", naive_requests, concurrency=8)
        finally:
            server.should_exit = True

        pdf_reused = per_call(lambda: verifier.verify(issued.pdf), repeat=10)
        pdf_fresh = per_call(lambda: PdfVerifier(dep.trust_roots, dep.intermediates).verify(issued.pdf), repeat=10)
        xml_reused = per_call(lambda: dep.xml_verifier.verify(issued.xml), repeat=10)

    figures = [
        Figure(
            "QR page requests/s (8 clients)", 1 / ours[0], 1 / slow[0], "s", f"{ours[0]:,.0f}/s vs {slow[0]:,.1f}/s"
        ),
        Figure("QR page median latency", ours[1], slow[1], "ms", f"{requests} requests, baseline re-validates"),
        Figure("QR page p99 latency", ours[2], slow[2], "ms", "baseline: validate the PDF per request"),
        Figure(
            "full PDF validation (3 signatures)", pdf_reused * 1000, pdf_fresh * 1000, "ms", "baseline: new verifier"
        ),
        Figure("full XML validation (3 XAdES, B-LT)", xml_reused * 1000, pdf_reused * 1000, "ms", "baseline: the PDF"),
    ]
    report("verify", figures)
    return figures


if __name__ == "__main__":
    main()
