"""The benchmarks still run: `python -m bench` in quick mode writes every figure with a numeric ratio.

No timing is asserted (the machine is shared and noisy); this only keeps bench/ from rotting.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIGURES = {
    "dss.genuine_pool",
    "signing.soft",
    "signing.soft.overhead",
    "signing.pkcs11",
    "signing.pkcs11.overhead",
    "xades.blt",
    "render.batch",
    "render.single",
    "batch.rate",
    "batch.rss",
    "ledger.append",
    "ledger.inclusion",
    "ledger.consistency",
    "ledger.storage",
    "verify.qr_rps",
    "verify.qr_p50",
    "verify.qr_p99",
    "verify.pdf",
    "verify.xml",
}


@pytest.mark.timeout(1800)  # as the subprocess's own limit: on a loaded machine the run exceeds the suite's 300 s
def test_quick_bench_reports_every_figure_with_a_ratio(tmp_path: Path) -> None:
    env = dict(os.environ, BENCH_QUICK="1", BENCH_RESULTS_DIR=str(tmp_path))
    env.pop("SEALTRAIL_DSS_CORPUS", None)  # the corpus figures appear only where the corpus is; this set is exact
    run = subprocess.run(
        [sys.executable, "-m", "bench"], env=env, capture_output=True, text=True, timeout=1800,
        cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["meta"]["quick"] is True
    figures = {f["key"]: f for f in data["figures"]}
    assert set(figures) == FIGURES
    for key, f in figures.items():
        assert isinstance(f["ratio"], float) and math.isfinite(f["ratio"]) and f["ratio"] > 0, key
        assert f["ours"] > 0 and f["baseline"] > 0, key
    for key in ("signing.soft", "signing.pkcs11", "ledger.inclusion", "ledger.consistency", "render.batch"):
        assert set(figures[key]["growth"]) >= {"10x"}, key
    assert "SealTrail" in run.stdout and "baseline" in run.stdout  # the one table is printed
