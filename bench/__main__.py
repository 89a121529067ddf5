"""`python -m bench [area ...]`: run every benchmark (or the named areas), print one table, write JSON to
bench/results/ (BENCH_RESULTS_DIR overrides). BENCH_QUICK=1 runs small sizes (under 2 minutes).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path

from bench.common import QUICK, write_all

ORDER = ("signing", "render", "batch", "ledger", "verify")


def main() -> None:
    started = time.perf_counter()
    here = Path(__file__).parent
    found = {m.name.removeprefix("bench_") for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_")}
    names = [n for n in ORDER if n in found] + sorted(found - set(ORDER))
    only = set(sys.argv[1:])
    unknown = only - found
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}; known: {', '.join(names)}")
    chosen = [n for n in names if not only or n in only]
    print(f"SealTrail benchmarks ({'quick' if QUICK else 'full'} mode): {', '.join(chosen)}")
    for name in names:
        if only and name not in only:
            continue
        print(f"\n== {name} ==", flush=True)
        t = time.perf_counter()
        importlib.import_module(f"bench.bench_{name}").main()
        print(f"  ({time.perf_counter() - t:.0f} s)", flush=True)
    write_all(started)


if __name__ == "__main__":  # a spawned worker process imports this module too
    main()
