"""The load generator of the soak test (a separate process): QR page requests and upload checks for SECONDS.

Usage: python load_client.py BASE_URL TOKEN FILE SECONDS OUT.json — writes status counts and latencies per kind.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx


def main() -> None:
    base, token, path, seconds, out = sys.argv[1], sys.argv[2], Path(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    upload = path.read_bytes()
    end = time.monotonic() + seconds
    results: dict[str, dict[str, list]] = {}  # type: ignore[type-arg]
    lock = threading.Lock()

    def run(kind: str) -> None:
        statuses: Counter[int] = Counter()
        latencies: list[float] = []
        with httpx.Client(base_url=base, timeout=60) as client:
            while time.monotonic() < end:
                started = time.perf_counter()
                try:
                    if kind == "qr":
                        status = client.get(f"/v/{token}").status_code
                    else:
                        status = client.post("/api/v1/verify", files={"file": (path.name, upload)}).status_code
                except httpx.HTTPError as exc:
                    status = -1
                    print(kind, repr(exc), file=sys.stderr)
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1
        with lock:
            entry = results.setdefault(kind, {"latencies": [], "statuses": []})
            entry["latencies"] += latencies
            entry["statuses"] += [[s, n] for s, n in statuses.items()]

    threads = [threading.Thread(target=run, args=(k,)) for k in ("qr", "qr", "qr", "upload")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    Path(out).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
