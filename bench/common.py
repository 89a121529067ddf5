"""Shared helpers for the benchmarks: timing, result tables, JSON output."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


@dataclass
class Figure:
    name: str
    ours: float
    baseline: float
    unit: str
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.baseline / self.ours if self.ours else float("inf")


def per_call(fn: Callable[[], object], repeat: int, warmup: int = 2) -> float:
    """Median seconds per call over ``repeat`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def report(area: str, figures: list[Figure]) -> None:
    width = max(len(f.name) for f in figures)
    print(f"\n== {area} ==")
    print(f"{'figure':{width}}  {'ours':>12}  {'baseline':>12}  {'ratio':>7}  note")
    for f in figures:
        print(
            f"{f.name:{width}}  {f.ours:>10.3f} {f.unit:2}  {f.baseline:>10.3f} {f.unit:2}  {f.ratio:>6.1f}x  {f.note}"
        )
    RESULTS.mkdir(exist_ok=True)
    data = [dict(asdict(f), ratio=f.ratio) for f in figures]
    (RESULTS / f"{area}.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
