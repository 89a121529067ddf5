"""A signing batch for the crash tests: issues N distinct diplomas through the real Issuer, printing each id.

Usage: python issue_driver.py N  (settings from SEALTRAIL_* in the environment; the dev PKI is served by the test).
Re-running with the same N re-issues nothing that is issued and finishes what a crash left pending.
"""

from __future__ import annotations

import sys

import schemas
from sealtrail.demo import issuer_for
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


def main() -> None:
    issuer = issuer_for(Deployment(Settings()))
    docs = batch(int(sys.argv[1]))
    print("ready", flush=True)
    for doc in docs:
        issued = issuer.issue(doc)
        print("issued", issued.doc_id, flush=True)


if __name__ == "__main__":
    main()
