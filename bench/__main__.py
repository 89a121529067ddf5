"""`python -m bench`: run every benchmark and print one table per area (JSON in bench/results/)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

here = Path(__file__).parent
names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
only = set(sys.argv[1:])
for name in names:
    if only and name.removeprefix("bench_") not in only:
        continue
    module = importlib.import_module(f"bench.{name}")
    module.main()
