"""A signing batch for the crash tests: issues N distinct diplomas through the real Issuer, printing each id.

Usage: python issue_driver.py N  (settings from SEALTRAIL_* in the environment; the dev PKI is served by the test).
Re-running with the same N re-issues nothing that is issued and finishes what a crash left pending.
With ``--trace`` it also prints ``at <step>`` as each step of issuing starts (render, PDF signature, XML signature,
file store, log append), so that a test can kill it inside a chosen step.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import schemas
from sealtrail.deployment import Deployment
from sealtrail.settings import Settings


def batch(n: int) -> list[schemas.Document]:
    docs = []
    for i in range(n):
        data = schemas.load_sample("diploma_thpt")
        data["holder"]["given_name"] = ["An", "Bình", "Chi", "Dũng", "Giang", "Hà", "Khoa", "Lan"][i % 8]
        data["diploma_number"] = f"HN {9000000 + i}"
        data["register_number"] = f"2025/THPT-{9000 + i}"
        docs.append(schemas.parse_document(data))
    return docs


def trace(cls: type, method: str, step: str) -> None:
    """Print ``at <step>`` each time ``cls.method`` starts (the step itself then runs unchanged)."""
    inner: Callable[..., Any] = getattr(cls, method)

    @functools.wraps(inner)
    def traced(*args: Any, **kwargs: Any) -> Any:
        print("at", step, flush=True)
        return inner(*args, **kwargs)

    setattr(cls, method, traced)


def main() -> None:
    from signer.xades import XadesSigner

    issuer = Deployment(Settings()).make_issuer()
    if "--trace" in sys.argv:
        trace(type(issuer.renderer), "render", "render")
        trace(type(issuer.pades), "sign", "pdf-signature")
        trace(XadesSigner, "sign", "xml-signature")
        trace(type(issuer.blobs), "put", "store")
        trace(type(issuer.ledger), "append", "log")
    docs = batch(int(sys.argv[1]))
    print("ready", flush=True)
    for doc in docs:
        issued = issuer.issue(doc)
        print("issued", issued.doc_id, flush=True)


if __name__ == "__main__":
    main()
