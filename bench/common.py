"""Shared helpers for the benchmarks: quick mode, timing, RSS, the one results table and its JSON."""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(os.environ.get("BENCH_RESULTS_DIR") or Path(__file__).parent / "results")
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
"""BENCH_QUICK=1: small sizes everywhere (the whole run in under 2 minutes), same figures, same JSON."""

ALL: list[Figure] = []


@dataclass
class Figure:
    """One row of the table: SealTrail against a naive baseline measured in the same run.

    ``ratio`` is always "how many times better SealTrail is": baseline/ours for costs (time, bytes), ours/baseline
    for rates (``higher_is_better``). ``growth`` maps a work multiplier (10, 100) to the figure's value at that
    much work divided by its value at 1× (per-unit costs: 1.0 means flat; log-n costs grow slowly).
    """

    key: str
    name: str
    ours: float
    baseline: float
    unit: str
    note: str = ""
    higher_is_better: bool = False
    growth: dict[str, float] = field(default_factory=dict)
    growth_note: str = ""

    @property
    def ratio(self) -> float:
        if self.higher_is_better:
            return self.ours / self.baseline if self.baseline else math.inf
        return self.baseline / self.ours if self.ours else math.inf


def per_call(
    fn: Callable[[], object], repeat: int, warmup: int = 2, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Median seconds per call over ``repeat`` calls after ``warmup`` calls.

    ``clock=time.process_time`` counts this process's CPU time only: on a machine shared with other work, the
    time other processes take the CPU away does not count, which makes single-process figures far steadier."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t = clock()
        fn()
        samples.append(clock() - t)
    return statistics.median(samples)


def per_item(fn: Callable[[], object], n: int, clock: Callable[[], float] = time.perf_counter) -> float:
    """Mean seconds per call over ``n`` back-to-back calls (a batch of n)."""
    t = clock()
    for _ in range(n):
        fn()
    return (clock() - t) / n


def growth_of(values: dict[int, float]) -> dict[str, float]:
    """{10: v10, 100: v100} relative to values[1] → {"10x": v10/v1, "100x": v100/v1}."""
    base = values[1]
    return {f"{k}x": v / base for k, v in sorted(values.items()) if k != 1 and base}


def rss_mb() -> float:
    """This process's resident set size now, in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def _growth_text(f: Figure) -> str:
    parts = [f"{k}: {v:.2f}" for k, v in f.growth.items()]
    text = ", ".join(parts)
    return f"{text} {f.growth_note}".strip()


def report(area: str, figures: list[Figure]) -> None:
    """Record an area's figures (printed together at the end by `print_table`) and write its JSON."""
    ALL.extend(figures)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{area}.json").write_text(json.dumps([as_json(f) for f in figures], indent=2), encoding="utf-8")
    for f in figures:
        print(
            f"  [{area}] {f.name}: {_fmt(f.ours)} {f.unit} vs {_fmt(f.baseline)} {f.unit} ({f.ratio:.1f}x)", flush=True
        )


def as_json(f: Figure) -> dict[str, object]:
    return dict(asdict(f), ratio=f.ratio)


def table(figures: list[Figure]) -> str:
    rows = [("figure", "SealTrail", "baseline", "ratio", "per unit at 10x / 100x work", "note")]
    for f in figures:
        rows.append(
            (
                f.name,
                f"{_fmt(f.ours)} {f.unit}",
                f"{_fmt(f.baseline)} {f.unit}",
                f"{f.ratio:.1f}x",
                _growth_text(f) or "-",
                f.note,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        cells = [r[0].ljust(widths[0]), r[1].rjust(widths[1]), r[2].rjust(widths[2]), r[3].rjust(widths[3])]
        cells += [r[4].ljust(widths[4]), r[5]]
        lines.append(" | ".join(cells).rstrip())
        if n == 0:
            lines.append("-|-".join("-" * w for w in widths[:5]) + "-|------")
    return "\n".join(lines)


def write_all(started: float) -> Path:
    """Print the one table of every figure recorded and write bench/results/bench.json."""
    print("\n" + table(ALL))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "bench.json"
    meta = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": QUICK,
        "seconds": round(time.perf_counter() - started, 1),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
    }
    out.write_text(json.dumps({"meta": meta, "figures": [as_json(f) for f in ALL]}, indent=2), encoding="utf-8")
    print(f"\n{len(ALL)} figures in {meta['seconds']} s; JSON in {out}")
    return out
