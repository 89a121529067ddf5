"""An item that dies of an error nobody foresaw (a bug, a broken installation) ends *failed* with a reason a
school's IT person can act on; it never stays *running* for ever, and nothing is issued or logged twice."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import schemas
from jobs import batches as jobs
from sealtrail.ledgerwiring import audit_deployment
from tests.jobs.conftest import JobEnv, transcripts
from tests.jobs.test_batches import issue_entries, item_ids, statuses


def test_an_unexpected_error_outside_the_signing_fails_the_item_with_what_to_do(
    database_url: str, job_env_factory: Callable[..., JobEnv], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = job_env_factory(database_url)
    raw = transcripts(2)
    sub = jobs.submit_batch(env.dep, [(r, schemas.parse_document(r)) for r in raw], "01001503", "t", run_here=False)
    first, second = item_ids(env, sub.batch_id)
    real = jobs._document_status
    calls: list[str] = []

    def broken_once(engine, doc_id):  # type: ignore[no-untyped-def]
        calls.append(doc_id)
        if len(calls) == 1:  # e.g. a driver bug: not a database error, not a signing error
            raise KeyError("simulated bug")
        return real(engine, doc_id)

    monkeypatch.setattr(jobs, "_document_status", broken_once)
    rt = jobs.runtime_for(env.dep)
    assert jobs.run_item(first, 1, rt) == "failed"
    assert jobs.run_item(second, 1, rt) == "issued"  # the rest of the batch goes on
    progress = jobs.batch_progress(env.dep, sub.batch_id)
    assert progress is not None and progress["state"] == "failed" and progress["counts"]["running"] == 0
    (failure,) = progress["failures"]
    assert "KeyError" in failure["reason"] and "CHƯA được cấp" in failure["reason"] and "nhật ký" in failure["reason"]
    assert statuses(env, [failure["id"]]) == {failure["id"]: None}  # nothing half-issued
    assert issue_entries(env) == {sub.doc_ids[1]: 1}
    assert audit_deployment(env.dep) == []
