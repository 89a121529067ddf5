"""Verification: the QR page under load from a second process on loopback, and full PDF/XML validation time.

QR page: `sealtrail serve` runs in its own process over a data directory holding one issued transcript in a log
of 10^4 entries (quick mode 10^3), then grown to 10× and 100× that (growth column; quick mode 10× only). `wrk`
(Debian) loads `/v/<token>` from another process (8 connections, 2 threads) and reports requests/s and latency
percentiles. Without wrk, a separate Python process with 8 client threads does the same. Baseline, same run: the
same page with the proof cache off (SEALTRAIL_PUBLIC_PROOF_CACHE=false: checkpoint signature, node-by-node proof
and entry read on every request).

Validation: our verifier built once and reused against one built per document (trust list, context).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import QUICK, Figure, per_call, report

LOAD_SCRIPT = """
import json, statistics, sys, threading, time
import httpx
url, seconds, conns = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
lat, lock = [], threading.Lock()
end = time.perf_counter() + seconds
def worker():
    with httpx.Client(timeout=30) as c:
        while time.perf_counter() < end:
            t = time.perf_counter(); r = c.get(url); e = time.perf_counter() - t
            if r.status_code != 200: raise SystemExit(f"{url} answered {r.status_code}")
            with lock: lat.append(e)
ts = [threading.Thread(target=worker) for _ in range(conns)]
start = time.perf_counter(); [t.start() for t in ts]; [t.join() for t in ts]
wall = time.perf_counter() - start; lat.sort()
print(json.dumps({"rps": len(lat) / wall, "p50": lat[len(lat) // 2] * 1000,
                  "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, "tool": "python"}))
"""


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def load(url: str, seconds: float, conns: int = 8) -> dict[str, float | str]:
    """Requests/s, median and p99 (ms) for ``url``, from a separate process (wrk if installed)."""
    wrk = shutil.which("wrk")
    if wrk:
        out = subprocess.run(
            [wrk, "-t2", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--latency", url],
            capture_output=True, text=True, timeout=seconds + 60, check=True,
        ).stdout  # fmt: skip
        if "Non-2xx" in out:
            raise RuntimeError(f"wrk saw error responses from {url}:\n{out}")
        pct = {p: _ms(v, u) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)}
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        return {"rps": rps, "p50": pct["50"], "p99": pct["99"], "tool": "wrk"}
    out = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, url, str(seconds), str(conns)],
        capture_output=True, text=True, timeout=seconds + 120, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)  # type: ignore[no-any-return]


def _serve(data_dir: Path, port: int, pki_url: str, cache: bool) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        SEALTRAIL_DATA_DIR=str(data_dir),
        SEALTRAIL_DEV_PKI_URL=pki_url,
        SEALTRAIL_PUBLIC_RATE_PER_MINUTE="100000000",  # one client hammering on purpose
        SEALTRAIL_PUBLIC_PROOF_CACHE="true" if cache else "false",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "sealtrail", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sealtrail serve exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("sealtrail serve did not start within 120 s")


def _grow_log(dep: object, total: int) -> None:
    """Pad the log with synthetic entries so the page proves inclusion in a log of realistic size."""
    from datetime import UTC, datetime

    from ledger.entry import Entry
    from sealtrail.ledgerwiring import ledger_for, publish_checkpoint

    ledger, _ = ledger_for(dep)  # type: ignore[arg-type]
    engine = dep.engine  # type: ignore[attr-defined]
    when = datetime.now(UTC)
    with engine.connect() as conn:
        size = ledger.size(conn)
    while size < total:
        hi = min(total, size + 5000)
        batch = [Entry("issue", f"PAD-{i:08d}", f"{i:064x}", f"{i + 1:064x}", "", when) for i in range(size, hi)]
        with engine.begin() as conn:
            ledger.append(conn, batch)
        size = hi
    publish_checkpoint(dep)  # type: ignore[arg-type]


def main() -> list[Figure]:
    import schemas
    from sealtrail.deployment import Deployment
    from sealtrail.settings import Settings
    from tests.conftest import free_port
    from verifier.pdf import PdfVerifier

    seconds = 4.0 if QUICK else 15.0
    log_size = 1_000 if QUICK else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        pki_url = f"http://127.0.0.1:{free_port()}"
        settings = Settings(data_dir=data_dir, dev_pki_url=pki_url)
        dep = Deployment(settings)
        services = dep.start_dev_pki_services()
        try:
            issued = dep.make_issuer().issue(schemas.parse_document(schemas.load_sample("transcript_thcs")))
            _grow_log(dep, log_size)
        finally:
            if services:
                services.stop()
        verifier = dep.pdf_verifier
        pdf_reused = per_call(lambda: verifier.verify(issued.pdf), repeat=3 if QUICK else 10)
        pdf_fresh = per_call(
            lambda: PdfVerifier(dep.trust_roots, dep.intermediates).verify(issued.pdf), repeat=3 if QUICK else 10
        )
        xml_reused = per_call(lambda: dep.xml_verifier.verify(issued.xml), repeat=3 if QUICK else 10)
        dep.engine.dispose()

        # The QR page at the log size, then with the log grown 10x and 100x (the proof behind the page grows with
        # log n; the cache keeps one proven answer per leaf and tree size).
        sizes = (log_size, 10 * log_size) if QUICK else (log_size, 10 * log_size, 100 * log_size)
        results: dict[tuple[int, bool], dict[str, float | str]] = {}
        for size in sizes:
            if size != log_size:
                grown = Deployment(settings)
                _grow_log(grown, size)
                grown.engine.dispose()
            for cache in (True, False):
                port = free_port()
                proc = _serve(data_dir, port, pki_url, cache)
                try:
                    url = f"http://127.0.0.1:{port}/v/{issued.token}"
                    page = httpx.get(url, timeout=30)
                    if page.status_code != 200 or "HB-" not in page.text:
                        raise RuntimeError(f"the QR page did not answer as expected: {page.status_code}")
                    load(url, 1.0)  # warm-up
                    results[size, cache] = load(url, seconds)
                finally:
                    proc.terminate()
                    proc.wait(30)
    ours, base = results[log_size, True], results[log_size, False]
    tool = f"{ours['tool']}, 8 connections, {seconds:.0f} s, log of {log_size:,} entries"
    rps_growth = {
        f"{k}x": float(results[size, True]["rps"]) / float(ours["rps"])
        for k, size in zip((10, 100)[: len(sizes) - 1], sizes[1:], strict=True)
    }
    base_growth = ", ".join(f"{float(results[size, False]['rps']) / float(base['rps']):.2f}" for size in sizes[1:])
    figures = [
        Figure(
            "verify.qr_rps",
            "QR page requests/s (second process)",
            float(ours["rps"]),
            float(base["rps"]),
            "/s",
            f"{tool}; baseline: proof cache off",
            higher_is_better=True,
            growth=rps_growth,
            growth_note=f"(requests/s with a log of {' / '.join(f'{n:,}' for n in sizes[1:])} entries; baseline: "
            f"{base_growth})",
        ),
        Figure("verify.qr_p50", "  QR page median latency", float(ours["p50"]), float(base["p50"]), "ms"),
        Figure("verify.qr_p99", "  QR page p99 latency", float(ours["p99"]), float(base["p99"]), "ms"),
        Figure(
            "verify.pdf",
            "full PDF validation (3 signatures, B-LT)",
            pdf_reused * 1000,
            pdf_fresh * 1000,
            "ms",
            "baseline: a new verifier per document",
        ),
        Figure(
            "verify.xml",
            "full XML validation (3 XAdES, B-LT)",
            xml_reused * 1000,
            pdf_reused * 1000,
            "ms",
            "baseline: the same document's PDF",
        ),
    ]
    report("verify", figures)
    return figures


if __name__ == "__main__":
    main()
