"""Soak: public verification (QR page and upload check) under sustained load from a second process, against a
real uvicorn server, while a signing batch issues documents into the same installation. No errors, memory flat,
no request left hanging.

``SEALTRAIL_SOAK_SECONDS`` sets the length (default 30 s; at most 60 s in the suite, longer by hand).
Bounds: every request answered 200, none hanging (p99 under 30 s for the QR page and 60 s for the upload check:
bounds a loaded machine cannot fail, since speed is measured by the benchmarks, never asserted in tests; the p50 and
p99 are printed), server RSS growth between the first and last third of the run < 60 MB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hardening.conftest import Signed
from tests.hardening.live import ROOT, live_server, settings_env

SECONDS = float(os.environ.get("SEALTRAIL_SOAK_SECONDS", "30"))
QR_P99, UPLOAD_P99, RSS_GROWTH = 30.0, 60.0, 60 * 1024**2  # hang bounds, not speed targets


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise LookupError("VmRSS")


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@pytest.mark.slow
def test_public_verification_under_load_while_signing(signed: Signed, tmp_path: Path) -> None:
    pdf = tmp_path / "hoc-ba.pdf"
    pdf.write_bytes(signed.pdf)
    out = tmp_path / "load.json"
    with live_server(signed.dep.settings) as server:
        import httpx

        for _ in range(5):  # warm-up, so that first-use allocations do not count as growth
            httpx.get(f"{server.url}/v/{signed.docs[0].token}", timeout=30)
            httpx.post(f"{server.url}/api/v1/verify", files={"file": ("a.pdf", signed.pdf)}, timeout=60)
        load = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "load_client.py"), server.url, signed.docs[0].token,
             str(pdf), str(SECONDS), str(out)],
            cwd=ROOT, stderr=subprocess.PIPE,
        )  # fmt: skip
        signing = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "issue_driver.py"), "3"],
            env=settings_env(signed.dep.settings), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        samples: list[int] = []
        started = time.monotonic()
        while load.poll() is None:
            samples.append(_rss(server.proc.pid))
            time.sleep(1)
            assert time.monotonic() - started < SECONDS + 120, "the load generator hung"
        _, load_err = load.communicate()
        sign_out, sign_err = signing.communicate(timeout=300)
    assert load.returncode == 0, load_err.decode()[-2000:]
    assert signing.returncode == 0, sign_err.decode()[-2000:]
    assert sign_out.decode().count("issued") == 3  # the batch finished while the load ran

    results = json.loads(out.read_text())
    for kind, bound in (("qr", QR_P99), ("upload", UPLOAD_P99)):
        statuses = dict((s, n) for s, n in results[kind]["statuses"])
        latencies = results[kind]["latencies"]
        assert set(statuses) == {200}, (kind, statuses, load_err.decode()[-1000:])  # no errors, and no 429 either
        assert len(latencies) >= 5, (kind, len(latencies))
        assert _p99(latencies) < bound, (kind, _p99(latencies))
        print(f"{kind}: {len(latencies)} requests, p50 {sorted(latencies)[len(latencies) // 2]:.3f} s, "
              f"p99 {_p99(latencies):.3f} s")  # fmt: skip
    third = max(1, len(samples) // 3)
    first, last = sorted(samples[:third])[third // 2], sorted(samples[-third:])[third // 2]
    print(f"server RSS: first third median {first / 1e6:.0f} MB, last third median {last / 1e6:.0f} MB")
    assert last - first < RSS_GROWTH, (first, last, samples)
