"""The EU DSS project's validation files (esig/dss: every PDF and XML under dss-pades and dss-xades
``src/test/resources``) through the public upload path: never "valid" (SealTrail issued none of them and trusts
none of their roots), never a 5xx, and every file answered within the check's bound (a file too complex for the
limits is "indeterminate: too complex to check here", never a hang).

The corpus is never committed. Point SEALTRAIL_DSS_CORPUS at a clone of https://github.com/esig/dss (or at a folder
holding those files) to run this test; bench/bench_dss.py measures the same run (median, p99, max, files stopped).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bench.bench_dss import ENV, check_corpus, corpus_dir, corpus_files, summary
from sealtrail.deployment import Deployment
from sealtrail.web.app import create_app
from signer.issue import IssuedDocument

pytestmark = pytest.mark.skipif(
    corpus_dir() is None,
    reason=f"{ENV} is not set to a clone of esig/dss (or a folder of its dss-pades/dss-xades test resources); "
    "the corpus is never committed",
)


def test_the_dss_corpus_is_never_valid_never_a_server_error_and_always_answered(
    setup: tuple[Deployment, list[IssuedDocument]],
) -> None:
    dep, _docs = setup
    folder = corpus_dir()
    assert folder is not None
    files = corpus_files(folder)
    assert files, f"{ENV}={folder} holds no PDF or XML"
    client = TestClient(create_app(dep.settings.model_copy(update={"verify_rate_per_minute": 1_000_000})))

    def post(name: str, data: bytes) -> tuple[int, dict[str, Any]]:
        response = client.post("/api/v1/verify", files={"file": (name, data)})
        return response.status_code, response.json()

    results = list(check_corpus(post, folder))
    print(summary(results))
    assert len(results) == len(files)
    assert [r.name for r in results if r.verdict == "valid"] == []
    assert [(r.name, r.status) for r in results if r.status >= 500] == []
    # Every file has an answer: a verdict, or 413 for an upload over the size limit (refused before any check).
    unanswered = [
        (r.name, r.status) for r in results if r.status != 413 and r.verdict not in ("invalid", "indeterminate")
    ]
    assert unanswered == []
    assert set(Counter(r.status for r in results)) <= {200, 413}
