"""The worst case of a public upload check: the EU DSS project's validation files through `POST /api/v1/verify`.

The corpus is every PDF and XML under the esig/dss repository's dss-pades and dss-xades test resources
(``src/test/resources``), real-world and crafted signed files SealTrail never issued. It is never committed: get it
with ``git clone --depth 1 https://github.com/esig/dss`` (or any copy of those two folders) and point
``SEALTRAIL_DSS_CORPUS`` at the clone (or at a folder holding the files). Without it this benchmark says so and
measures only the genuine-document figures.

Each file goes through the app's upload path (in-process ASGI client; the check itself in the isolated worker pool
under the configured limits, 10 s CPU and 512 MB by default). Figures: time per file (median, p99, max), how many
files hit the limit (answered "too complex to check here"), and the answers (none may be "valid", none a 5xx).
Baselines, same run: the bound itself for the worst case; for a genuine document, a fresh process per check
(fork + import + check, what a pool without pre-started workers would pay) against the pre-started pool.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import QUICK, Figure, report

ENV = "SEALTRAIL_DSS_CORPUS"
PARTS = ("dss-pades/src/test/resources", "dss-xades/src/test/resources")
SUFFIXES = (".pdf", ".xml")


def corpus_dir() -> Path | None:
    """The corpus folder from SEALTRAIL_DSS_CORPUS, or None when unset or missing."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return None
    folder = Path(value).expanduser()
    return folder if folder.is_dir() else None


def corpus_files(folder: Path) -> list[Path]:
    """Every PDF and XML under the dss-pades and dss-xades test resources (or under ``folder`` itself when it is
    not a clone of the repository), in a stable order."""
    roots = [folder / part for part in PARTS if (folder / part).is_dir()] or [folder]
    found = {p for root in roots for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES}
    return sorted(found)


@dataclass
class FileResult:
    name: str
    size: int
    status: int
    verdict: str | None
    code: str | None  # the primary reason's code
    seconds: float


def check_corpus(post: Callable[[str, bytes], tuple[int, dict[str, Any]]], folder: Path) -> Iterator[FileResult]:
    """Each file through ``post`` (name, bytes → HTTP status, JSON body), timed."""
    for path in corpus_files(folder):
        data = path.read_bytes()
        t = time.perf_counter()
        status, body = post(path.name, data)
        seconds = time.perf_counter() - t
        reasons = body.get("reasons") or []
        code = reasons[0]["code"] if reasons and isinstance(reasons[0], dict) else None
        yield FileResult(str(path.relative_to(folder)), len(data), status, body.get("verdict"), code, seconds)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


def summary(results: list[FileResult]) -> dict[str, Any]:
    times = [r.seconds for r in results]
    return {
        "files": len(results),
        "median_s": statistics.median(times) if times else 0.0,
        "p99_s": percentile(times, 0.99),
        "max_s": max(times, default=0.0),
        "slowest": max(results, key=lambda r: r.seconds).name if results else None,
        "hit_limit": sum(r.code == "TOO_COMPLEX" for r in results),
        "valid": sum(r.verdict == "valid" for r in results),
        "server_errors": sum(r.status >= 500 for r in results),
        "statuses": dict(Counter(r.status for r in results)),
        "verdicts": dict(Counter(str(r.verdict) for r in results)),
        "primary_reasons": dict(Counter(str(r.code) for r in results).most_common(8)),
    }


FRESH = """
import sys, time
from pathlib import Path
from asn1crypto import x509
from verifier.pdf import PdfVerifier
roots = [x509.Certificate.load(Path(sys.argv[2]).read_bytes())]
others = [x509.Certificate.load(Path(sys.argv[3]).read_bytes())]
assert PdfVerifier(roots, others).verify(Path(sys.argv[1]).read_bytes(), compare_pages=False).verdict == "valid"
"""


def main() -> list[Figure]:
    import schemas
    from sealtrail.deployment import Deployment
    from sealtrail.settings import Settings
    from sealtrail.web.app import create_app
    from tests.conftest import free_port
    from verifier.checking import check_upload
    from verifier.isolation import CheckPool, Limits

    folder = corpus_dir()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp), dev_pki_url=f"http://127.0.0.1:{free_port()}", verify_rate_per_minute=1_000_000
        )
        dep = Deployment(settings)
        services = dep.start_dev_pki_services()
        try:
            issued = dep.make_issuer().issue(schemas.parse_document(schemas.load_sample("transcript_thcs")))
            from sealtrail.ledgerwiring import publish_checkpoint

            publish_checkpoint(dep)
        finally:
            if services:
                services.stop()

        # A genuine document: the pre-started pool against a fresh process per check.
        repeat = 3 if QUICK else 10
        t = time.perf_counter()
        pool = CheckPool(Limits(workers=1))
        pool_start = time.perf_counter() - t
        try:
            check_upload(dep, issued.pdf, pool=pool)  # warm-up
            pooled = []
            for _ in range(repeat):
                t = time.perf_counter()
                assert check_upload(dep, issued.pdf, pool=pool).report.verdict == "valid"
                pooled.append(time.perf_counter() - t)
        finally:
            pool.close()
        pdf, root, ca = Path(tmp) / "doc.pdf", Path(tmp) / "root.der", Path(tmp) / "ca.der"
        pdf.write_bytes(issued.pdf)
        root.write_bytes(dep.trust_roots[0].dump())
        ca.write_bytes(dep.intermediates[0].dump())
        fresh = []
        for _ in range(repeat):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", FRESH, str(pdf), str(root), str(ca)], check=True)
            fresh.append(time.perf_counter() - t)
        inproc = []
        for _ in range(repeat):
            t = time.perf_counter()
            check_upload(dep, issued.pdf)
            inproc.append(time.perf_counter() - t)
        figures = [
            Figure(
                "dss.genuine_pool",
                "genuine PDF upload check, isolated (pre-started worker)",
                statistics.median(pooled) * 1000,
                statistics.median(fresh) * 1000,
                "ms",
                f"baseline: a fresh process per check; in-process without isolation "
                f"{statistics.median(inproc) * 1000:.0f} ms; pool start {pool_start:.1f} s (once)",
            )
        ]

        if folder is None:
            print(f"  {ENV} is not set to a folder: the DSS corpus figures are skipped (see bench/bench_dss.py)")
            report("dss", figures)
            return figures

        from fastapi.testclient import TestClient

        app = create_app(dep.settings)
        client = TestClient(app)

        def post(name: str, data: bytes) -> tuple[int, dict[str, Any]]:
            response = client.post("/api/v1/verify", files={"file": (name, data)})
            try:
                return response.status_code, response.json()
            except ValueError:
                return response.status_code, {}

        results = []
        for result in check_corpus(post, folder):
            results.append(result)
            if result.seconds > 5 or result.verdict == "valid" or result.status >= 500:
                print(f"    {result.name}: {result.status} {result.verdict} {result.code} {result.seconds:.1f} s")
        s = summary(results)
        s["stopped"] = dict(app.state.upload_checker.pool.stopped)  # cause → count (cpu, memory, wall, crash)
        print(f"  DSS corpus: {s}")
        limits = Limits()
        bound = float(settings.verify_wall_seconds)
        note = (
            f"{s['files']} files; {s['hit_limit']} hit the limit ({limits.cpu_seconds} s CPU, "
            f"{limits.memory_bytes >> 20} MB; stopped: {s['stopped']}); valid: {s['valid']}; "
            f"5xx: {s['server_errors']}; baseline: the wall-clock bound"
        )
        figures += [
            Figure("dss.max", "DSS corpus upload check, slowest file", s["max_s"], bound, "s", note),
            Figure("dss.p99", "  DSS corpus p99 per file", s["p99_s"], bound, "s"),
            Figure("dss.median", "  DSS corpus median per file", s["median_s"], bound, "s"),
        ]
        dep.engine.dispose()
    report("dss", figures)
    return figures


if __name__ == "__main__":
    main()
