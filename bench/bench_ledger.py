"""Ledger benchmark: batched appends against one entry per transaction, proof latency as the log grows
(10^4, 10^5, 10^6 entries; it should grow with log n), and bytes stored per entry. SQLite, on this machine.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from bench.common import Figure, report
from ledger import tlog
from ledger.entry import Entry
from ledger.note import NoteSigner
from ledger.store import Ledger
from sealtrail.db import make_engine, migrate

ORIGIN = "bench.sealtrail/log"
WHEN = datetime(2025, 9, 5, tzinfo=UTC)


def _entries(lo: int, hi: int) -> list[Entry]:
    return [Entry("issue", f"VB-2025-{i:08d}", f"{i:064x}", f"{i + 1:064x}", "", WHEN) for i in range(lo, hi)]


def _fresh(tmp: Path, name: str) -> tuple[object, Ledger]:
    url = f"sqlite:///{tmp / name}.db"
    migrate(url)
    return make_engine(url), Ledger(ORIGIN, NoteSigner(ORIGIN, ed25519.Ed25519PrivateKey.generate()))


def _grow_to(engine, ledger: Ledger, target: int, batch: int = 20_000) -> None:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        size = ledger.size(conn)
    while size < target:
        hi = min(target, size + batch)
        with engine.begin() as conn:
            ledger.append(conn, _entries(size, hi))
        size = hi
    with engine.begin() as conn:
        ledger.checkpoint(conn)


def _proof_ms(engine, ledger: Ledger, size: int, repeat: int = 50) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    incl, cons = [], []
    step = max(1, size // repeat)
    with engine.connect() as conn:
        for k in range(repeat):
            index = (k * step + 7) % size
            t = time.perf_counter()
            ledger.prove_inclusion(conn, index, size)
            incl.append(time.perf_counter() - t)
            t = time.perf_counter()
            ledger.prove_consistency(conn, max(1, index), size)
            cons.append(time.perf_counter() - t)
    return statistics.median(incl) * 1000, statistics.median(cons) * 1000


def main(max_size: int = int(os.environ.get("BENCH_LEDGER_MAX", "1000000"))) -> list[Figure]:
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        n = 2000
        engine, ledger = _fresh(tmp, "naive")
        t = time.perf_counter()
        for e in _entries(0, n):
            with engine.begin() as conn:
                ledger.append(conn, [e])
        naive = n / (time.perf_counter() - t)
        engine, ledger = _fresh(tmp, "batched")
        t = time.perf_counter()
        for lo in range(0, n, 500):
            with engine.begin() as conn:
                ledger.append(conn, _entries(lo, lo + 500))
        batched = n / (time.perf_counter() - t)
        figures.append(
            Figure(
                "appends/s (batches of 500 vs 1/tx)",
                1 / batched * 1e6,
                1 / naive * 1e6,
                "us",
                f"{batched:,.0f}/s vs {naive:,.0f}/s",
            )
        )

        engine, ledger = _fresh(tmp, "grow")
        naive_root_ms = None
        for size in (10**4, 10**5, 10**6):
            if size > max_size:
                break
            _grow_to(engine, ledger, size)
            incl, cons = _proof_ms(engine, ledger, size)
            if naive_root_ms is None:
                leaves = [tlog.leaf_hash(e.canonical()) for e in _entries(0, size)]
                t = time.perf_counter()
                tlog.inclusion_proof(size // 2, size, tlog.list_range_hash(leaves))
                naive_root_ms = (time.perf_counter() - t) * 1000
            figures.append(
                Figure(
                    f"inclusion proof at {size:>9,} entries",
                    incl,
                    naive_root_ms,
                    "ms",
                    "baseline: rehash all leaves of 10^4",
                )
            )
            figures.append(Figure(f"consistency proof at {size:>7,} entries", cons, naive_root_ms, "ms", ""))
        db = tmp / "grow.db"
        with engine.connect() as conn:
            size = ledger.size(conn)
        engine.dispose()  # type: ignore[attr-defined]
        total = db.stat().st_size + sum(p.stat().st_size for p in tmp.glob("grow.db-*"))
        figures.append(Figure("bytes stored per entry (SQLite)", total / size, 0, "B", f"{size:,} entries"))
    report("ledger", figures)
    return figures


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
