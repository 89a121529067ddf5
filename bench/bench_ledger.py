"""Ledger benchmark: batched appends against one entry per transaction, proof latency as the log grows
(10^4, 10^5, 10^6 entries; quick mode 10^2..10^4; it should grow with log n) against rehashing every leaf, and
bytes stored per entry. SQLite, on this machine. BENCH_LEDGER_MAX sets the largest size.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from bench.common import QUICK, Figure, growth_of, report
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


def _bytes_on_disk(tmp: Path, name: str, engine=None) -> int:  # type: ignore[no-untyped-def]
    """The SQLite database with its WAL and shared-memory files (the WAL folded into the database first)."""
    if engine is not None:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in tmp.glob(f"{name}.db*"))


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


def _hashes_read(engine, ledger: Ledger, size: int) -> float:  # type: ignore[no-untyped-def]
    """Mean number of stored tree hashes an inclusion proof reads: machine-independent, and it is log2(n)-ish."""
    samples = 20
    step = max(1, size // samples)
    before = ledger.nodes_read
    with engine.connect() as conn:
        for k in range(samples):
            ledger.prove_inclusion(conn, (k * step + 7) % size, size)
    return (ledger.nodes_read - before) / samples


def main(max_size: int | None = None) -> list[Figure]:
    if max_size is None:
        max_size = int(os.environ.get("BENCH_LEDGER_MAX") or (10_000 if QUICK else 1_000_000))
    sizes = [max_size // 100, max_size // 10, max_size]
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        n = 500 if QUICK else 2000
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
                "ledger.append",
                "ledger appends/s, batches of 500 (SQLite)",
                batched,
                naive,
                "/s",
                "baseline: one transaction per entry",
                higher_is_better=True,
            )
        )

        engine, ledger = _fresh(tmp, "grow")
        incl: dict[int, float] = {}
        cons: dict[int, float] = {}
        reads: dict[int, float] = {}
        append_s: dict[int, float] = {}  # seconds per entry appended while growing to this size
        stored: dict[int, float] = {}  # bytes on disk per entry at this size
        grown = 0
        empty = _bytes_on_disk(tmp, "grow", engine)  # the schema alone, not counted per entry
        for size in sizes:
            t = time.perf_counter()
            _grow_to(engine, ledger, size)
            append_s[size] = (time.perf_counter() - t) / (size - grown)
            grown = size
            stored[size] = (_bytes_on_disk(tmp, "grow", engine) - empty) / size
            incl[size], cons[size] = _proof_ms(engine, ledger, size)
            reads[size] = _hashes_read(engine, ledger, size)
        scale = {sizes[0]: 1, sizes[1]: 10, sizes[2]: 100}
        figures[0].growth = growth_of({scale[k]: v for k, v in append_s.items()})
        figures[0].growth_note = (
            f"(seconds per entry while the log grows to {sizes[0]:,} / {sizes[1]:,} / {sizes[2]:,}, batches of "
            "20,000; 1.0 = flat)"
        )
        # Baseline: a log without stored tree nodes proves inclusion by rehashing every leaf (O(n)).
        leaves = [tlog.leaf_hash(e.canonical()) for e in _entries(0, max_size)]
        t = time.perf_counter()
        tlog.inclusion_proof(max_size // 2, max_size, tlog.list_range_hash(leaves))
        naive_ms = (time.perf_counter() - t) * 1000
        del leaves
        log_growth = " / ".join(f"{math.log2(s) / math.log2(sizes[0]):.2f}" for s in sizes[1:])
        reads_text = ", ".join(f"{v:.1f} at {k:,}" for k, v in reads.items())
        for key, name, values in (("ledger.inclusion", "inclusion", incl), ("ledger.consistency", "consistency", cons)):
            figures.append(
                Figure(
                    key,
                    f"{name} proof at {max_size:,} entries",
                    values[max_size],
                    naive_ms,
                    "ms",
                    f"baseline: rehash all leaves (no stored tree); hashes read per proof: {reads_text}",
                    growth=growth_of({scale[k]: v for k, v in values.items()}),
                    growth_note=f"(at {sizes[1]:,} / {sizes[2]:,} vs {sizes[0]:,}; log2 n grows {log_growth})",
                )
            )
        with engine.connect() as conn:
            size = ledger.size(conn)
        engine.dispose()  # type: ignore[attr-defined]
        total = _bytes_on_disk(tmp, "grow") - empty
        raw = sum(len(e.canonical()) + 32 for e in _entries(0, 1000)) / 1000
        figures.append(
            Figure(
                "ledger.storage",
                "ledger bytes stored per entry (SQLite)",
                total / size,
                raw,
                "B",
                f"{size:,} entries, beyond the empty database; baseline: the entry and its leaf hash alone",
                growth=growth_of({scale[k]: v for k, v in stored.items()}),
                growth_note=f"(bytes per entry at {sizes[1]:,} / {sizes[2]:,} vs {sizes[0]:,}; 1.0 = flat)",
            )
        )
    report("ledger", figures)
    return figures


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
