"""A verifier worker for the fuzz tests: reads length-prefixed cases on stdin, answers one JSON line per case.

Started by tests/hardening/conftest.py under RLIMIT_AS. Each answer carries the verdict (or the refusal message
of a bulk ZIP), any unexpected exception (which would be a 500 in the app), the wall time and tracemalloc's peak.
"""

from __future__ import annotations

import json
import struct
import sys
import time
import traceback
import tracemalloc
from pathlib import Path
from typing import Any

from sealtrail.deployment import load_pem_certs
from verifier.bulk import BulkError, check_zip
from verifier.pdf import PdfVerifier
from verifier.xml import XmlVerifier, looks_like_xml


def main() -> None:
    trust = Path(sys.argv[1])
    roots, intermediates = load_pem_certs(trust / "roots.pem"), load_pem_certs(trust / "intermediates.pem")
    pdf, xml = PdfVerifier(roots, intermediates), XmlVerifier(roots, intermediates)

    def auto(data: bytes) -> tuple[str, Any]:
        return ("xml", xml.verify(data)) if looks_like_xml(data) else ("pdf", pdf.verify(data))

    stdin, stdout = sys.stdin.buffer, sys.stdout
    stdout.write("ready\n")
    stdout.flush()
    while header := stdin.read(8):
        head_len, data_len = struct.unpack(">II", header)
        kind = json.loads(stdin.read(head_len))["kind"]
        data = stdin.read(data_len)
        out: dict[str, Any] = {"verdict": None, "refused": None, "error": None}
        tracemalloc.start()
        started = time.perf_counter()
        try:
            if kind == "pdf":
                out["verdict"] = pdf.verify(data).verdict
            elif kind == "xml":
                out["verdict"] = xml.verify(data).verdict
            elif kind == "auto":
                out["verdict"] = auto(data)[1].verdict
            elif kind == "zip":
                try:
                    out["verdict"] = [item.verdict for item in check_zip(data, auto)]
                except BulkError as exc:
                    out["refused"] = str(exc)
            else:
                raise ValueError(kind)
        except BaseException as exc:  # anything escaping the verifier would be a 500 in the app
            out["error"] = "".join(traceback.format_exception_only(exc)).strip()[:2000]
            out["trace"] = traceback.format_exc()[-3000:]
        out["seconds"] = time.perf_counter() - started
        out["peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        stdout.write(json.dumps(out) + "\n")
        stdout.flush()


if __name__ == "__main__":
    main()
