"""Batch jobs on SQLite (the in-process runner) and the task function's guarantees on both databases."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from jobs import batches as jobs
from ledger.entry import Entry
from ledger.models import entries
from registry.records import DocumentRecord
from sealtrail.ledgerwiring import audit_deployment
from tests.jobs.conftest import JobEnv, transcripts


def wait_for(
    client: Any, env: JobEnv, batch_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 240
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        progress = client.get(f"/api/v1/batches/{batch_id}", headers=env.headers).json()
        if done(progress):
            return progress
        assert time.monotonic() < deadline, progress
        time.sleep(0.3)


def issue_entries(env: JobEnv) -> Counter[str]:
    """How many ``issue`` entries the log holds per document id."""
    with env.dep.engine.connect() as conn:
        parsed = [Entry.parse(bytes(d)) for d in conn.execute(select(entries.c.data)).scalars()]
    return Counter(e.doc_id for e in parsed if e.type == "issue")


def statuses(env: JobEnv, doc_ids: list[str]) -> dict[str, str | None]:
    table = DocumentRecord.__table__  # type: ignore[attr-defined]
    with env.dep.engine.connect() as conn:
        found = dict(conn.execute(select(table.c.id, table.c.status).where(table.c.id.in_(doc_ids))).all())
    return {d: found.get(d) for d in doc_ids}


def test_sqlite_batch_runs_in_process_and_each_document_is_logged_once(job_env_factory: Callable[..., JobEnv]) -> None:
    env = job_env_factory()
    client = env.client()
    response = client.post("/api/v1/documents?async=true", json=transcripts(3), headers=env.headers)
    assert response.status_code == 202, response.text
    body = response.json()
    doc_ids = [d["id"] for d in body["documents"]]
    assert len(set(doc_ids)) == 3 and body["status_url"] == f"/api/v1/batches/{body['batch']}"
    final = wait_for(client, env, body["batch"], lambda p: p["state"] not in ("queued", "running"))
    assert final["state"] == "done", final
    assert final["counts"] == {"queued": 0, "running": 0, "awaiting_token": 0, "issued": 3, "failed": 0, "cancelled": 0}
    assert final["failures"] == [] and final["finished_at"]
    assert statuses(env, doc_ids) == dict.fromkeys(doc_ids, "issued")
    assert issue_entries(env) == Counter(doc_ids)
    assert audit_deployment(env.dep) == []
    # The QR link of an issued document answers, and no pupil data is kept in the queue once issued.
    url = final["documents"][0]["url"].split("127.0.0.1:8000", 1)[-1]
    assert client.get(url).status_code == 200
    with env.dep.engine.connect() as conn:
        assert list(conn.execute(select(jobs.batch_items.c.input)).scalars()) == [None, None, None]
    # The people's page: progress by the batch's unguessable id, counts only (no names, no document ids).
    page = client.get(body["page_url"])
    assert page.status_code == 200 and "Đã cấp xong" in page.text and "3 / 3" in page.text
    assert "Refresh" not in page.headers and "default-src 'none'" in page.headers["content-security-policy"]
    assert not any(d in page.text for d in doc_ids) and "Hằng" not in page.text and "Lan" not in page.text
    assert client.get("/lo/" + "0" * 32).status_code == 404 and client.get("/lo/abc").status_code == 404


def test_a_batch_is_visible_only_to_its_own_school(job_env_factory: Callable[..., JobEnv]) -> None:
    from sealtrail.web.api import create_api_key

    env = job_env_factory()
    client = env.client()
    batch = client.post("/api/v1/documents?async=true", json=transcripts(1), headers=env.headers).json()["batch"]
    other = create_api_key(env.dep, "79000999")
    for method, path in (("get", f"/api/v1/batches/{batch}"), ("post", f"/api/v1/batches/{batch}/cancel")):
        response = getattr(client, method)(path, headers={"Authorization": f"Bearer {other}"})
        assert response.status_code == 404 and "no such batch" in response.text
    assert client.get(f"/api/v1/batches/{batch}").status_code == 401
    wait_for(client, env, batch, lambda p: p["state"] == "done")


def test_invalid_batches_are_refused_whole_before_anything_is_queued(job_env_factory: Callable[..., JobEnv]) -> None:
    env = job_env_factory()
    client = env.client()
    good, bad = transcripts(2)
    bad["years"][0]["subjects"][0]["hk1"]["gk"] = "12"
    response = client.post("/api/v1/documents?async=true", json=[good, bad], headers=env.headers)
    assert response.status_code == 422 and {p["document"] for p in response.json()["detail"]["problems"]} == {"1"}
    with env.dep.engine.connect() as conn:
        assert conn.execute(select(jobs.batches.c.id)).first() is None


@pytest.fixture(params=["sqlite", "postgresql"])
def db_env(request: pytest.FixtureRequest, job_env_factory: Callable[..., JobEnv]) -> JobEnv:
    """A deployment whose batches are NOT run by anyone: the test calls the task function itself."""
    if request.param == "sqlite":
        env = job_env_factory()
        return env
    return job_env_factory(request.getfixturevalue("pg_url"))


def item_ids(env: JobEnv, batch_id: str) -> list[int]:
    with env.dep.engine.connect() as conn:
        return list(
            conn.execute(
                select(jobs.batch_items.c.id)
                .where(jobs.batch_items.c.batch_id == batch_id)
                .order_by(jobs.batch_items.c.seq)
            ).scalars()
        )


def submit(env: JobEnv, n: int) -> tuple[str, list[str], list[int]]:
    import schemas

    raw = transcripts(n)
    sub = jobs.submit_batch(env.dep, [(r, schemas.parse_document(r)) for r in raw], "01001503", "test", run_here=False)
    return sub.batch_id, sub.doc_ids, item_ids(env, sub.batch_id)


def test_retrying_an_item_never_signs_or_logs_twice(db_env: JobEnv) -> None:
    env = db_env
    batch, doc_ids, (item,) = submit(env, 1)
    rt = jobs.runtime_for(env.dep)
    assert jobs.run_item(item, 1, rt) == "issued"
    size = sum(issue_entries(env).values())
    assert jobs.run_item(item, 2, rt) == "issued"  # the task delivered again: nothing happens
    # A run that died after issuing but before recording it: the item is "running", the document issued.
    with env.dep.engine.begin() as conn:
        conn.execute(jobs.batch_items.update().where(jobs.batch_items.c.id == item).values(state="running"))
    assert jobs.run_item(item, 3, rt) == "issued"
    # A second signer racing on the same reserved id loses, and its entry is rolled back with it.
    import schemas
    from signer.issue import AlreadyIssued

    with pytest.raises(AlreadyIssued):
        rt.issuer().issue(schemas.parse_document(transcripts(1)[0]), doc_id=doc_ids[0], token="x")
    assert issue_entries(env) == Counter(doc_ids) and sum(issue_entries(env).values()) == size
    assert jobs.batch_progress(env.dep, batch)["state"] == "done"  # type: ignore[index]
    assert audit_deployment(env.dep) == []


def test_a_run_that_died_mid_signing_is_redone_under_the_same_id(db_env: JobEnv) -> None:
    env = db_env
    batch, doc_ids, (item,) = submit(env, 1)
    rt = jobs.runtime_for(env.dep)
    # What a killed worker leaves: the item running, the document row pending, no log entry.
    with env.dep.engine.begin() as conn:
        conn.execute(jobs.batch_items.update().where(jobs.batch_items.c.id == item).values(state="running"))
    issuer = rt.issuer()
    real_append = issuer.ledger.append

    def crash(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt("worker killed")

    issuer.ledger.append = crash
    with pytest.raises(KeyboardInterrupt):
        jobs.run_item(item, 1, rt)
    issuer.ledger.append = real_append
    assert statuses(env, doc_ids) == {doc_ids[0]: "pending"} and not issue_entries(env)
    assert jobs.run_item(item, 2, rt) == "issued"
    assert statuses(env, doc_ids) == {doc_ids[0]: "issued"} and issue_entries(env) == Counter(doc_ids)
    assert jobs.batch_progress(env.dep, batch)["counts"]["issued"] == 1  # type: ignore[index]
    assert audit_deployment(env.dep) == []


def test_bad_data_fails_the_item_with_its_reason_and_the_rest_go_on(db_env: JobEnv) -> None:
    env = db_env
    batch, doc_ids, items = submit(env, 2)
    with env.dep.engine.begin() as conn:  # data that became invalid after it was queued
        conn.execute(jobs.batch_items.update().where(jobs.batch_items.c.id == items[0]).values(input={"kind": "bằng"}))
    rt = jobs.runtime_for(env.dep)
    assert jobs.run_item(items[0], 1, rt) == "failed"
    assert jobs.run_item(items[1], 1, rt) == "issued"
    progress = jobs.batch_progress(env.dep, batch)
    assert progress is not None and progress["state"] == "failed"
    (failure,) = progress["failures"]
    assert failure["id"] == doc_ids[0] and "invalid data" in failure["reason"] and "kind" in failure["reason"]
    assert statuses(env, doc_ids) == {doc_ids[0]: None, doc_ids[1]: "issued"}


def test_cancel_stops_queued_items_and_keeps_issued_ones(db_env: JobEnv) -> None:
    env = db_env
    batch, doc_ids, items = submit(env, 3)
    rt = jobs.runtime_for(env.dep)
    assert jobs.run_item(items[0], 1, rt) == "issued"
    jobs.cancel_batch(env.dep, batch)
    for item in items[1:]:  # their tasks, if delivered anyway, do nothing
        assert jobs.run_item(item, 1, rt) == "cancelled"
    progress = jobs.batch_progress(env.dep, batch)
    assert progress is not None and progress["state"] == "cancelled"
    assert progress["counts"] == {
        "queued": 0,
        "running": 0,
        "awaiting_token": 0,
        "issued": 1,
        "failed": 0,
        "cancelled": 2,
    }
    assert statuses(env, doc_ids) == {doc_ids[0]: "issued", doc_ids[1]: None, doc_ids[2]: None}
    assert issue_entries(env) == Counter(doc_ids[:1])
    if jobs.is_postgres(env.dep.engine):  # the cancelled items' queued jobs are gone; the issued one's is left
        with env.dep.engine.connect() as conn:
            job_of = dict(conn.execute(select(jobs.batch_items.c.id, jobs.batch_items.c.job_id)).all())
            queued = set(conn.exec_driver_sql("SELECT id FROM procrastinate_jobs WHERE status = 'todo'").scalars())
        assert all(job_of[i] for i in items) and queued == {job_of[items[0]]}


@pytest.mark.timeout(600)
def test_timestamp_service_down_is_retried_then_succeeds(job_env_factory: Callable[..., JobEnv]) -> None:
    env = job_env_factory()
    client = env.client()
    env.stop_pki()  # the TSA (and OCSP) stop answering
    batch = client.post("/api/v1/documents?async=true", json=transcripts(1), headers=env.headers).json()["batch"]
    retried = wait_for(client, env, batch, lambda p: p["documents"][0]["attempts"] >= 2, timeout=120)
    doc = retried["documents"][0]
    page = client.get(retried["page_url"])
    assert "Đang ký và ghi sổ" in page.text and page.headers["Refresh"] == "5"
    assert retried["state"] == "running" and doc["state"] in ("queued", "running")
    assert "attempt" in doc.get("reason", "attempt") and not issue_entries(env)
    env.start_pki()
    final = wait_for(client, env, batch, lambda p: p["state"] != "running", timeout=180)
    assert final["state"] == "done" and final["documents"][0]["attempts"] >= 2
    assert issue_entries(env) == Counter([doc["id"]])


def test_transient_failures_on_the_last_attempt_fail_the_item_with_the_reason(
    job_env_factory: Callable[..., JobEnv],
) -> None:
    env = job_env_factory(job_max_attempts=2, job_retry_wait=0.2)
    client = env.client()
    env.stop_pki()
    batch = client.post("/api/v1/documents?async=true", json=transcripts(1), headers=env.headers).json()["batch"]
    final = wait_for(client, env, batch, lambda p: p["state"] not in ("queued", "running"), timeout=180)
    assert final["state"] == "failed" and final["counts"]["failed"] == 1
    reason = final["failures"][0]["reason"]
    # With the PKI's services down the first thing to fail is the certificate check (OCSP), or the TSA.
    assert "after 2 attempts" in reason and "could not" in reason.lower(), reason
    assert not issue_entries(env)


def test_two_workers_running_the_same_item_at_once_log_it_once(
    pg_url: str, job_env_factory: Callable[..., JobEnv]
) -> None:
    """What a worker that only looked dead (its job re-queued while it kept going) would do: both sign, one logs."""
    from concurrent.futures import ThreadPoolExecutor

    env = job_env_factory(pg_url)
    batch, doc_ids, (item,) = submit(env, 1)
    rt_a, rt_b = jobs._Runtime(env.dep), jobs._Runtime(env.dep)

    def run(rt: jobs._Runtime) -> str:
        try:
            return jobs.run_item(item, 1, rt)
        except jobs.TransientError as exc:  # lost the race to create the pending row: retried later
            return f"retry: {exc}"

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, (rt_a, rt_b)))
    assert "issued" in results, results
    assert issue_entries(env) == Counter(doc_ids) and statuses(env, doc_ids) == {doc_ids[0]: "issued"}
    assert jobs.run_item(item, 2, rt_a) == "issued"
    assert jobs.batch_progress(env.dep, batch)["state"] == "done"  # type: ignore[index]
    assert audit_deployment(env.dep) == []


def test_a_fractional_retry_wait_is_rounded_up_to_procrastinates_whole_seconds(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """procrastinate waits whole seconds; 0.5 s used to become 0 (an immediate retry), now it is 1 s."""
    from sealtrail.deployment import Deployment
    from sealtrail.settings import Settings

    monkeypatch.setattr(jobs, "_runtime", jobs._runtime)  # restored afterwards, with the retry settings
    for name in ("max_attempts", "wait", "exponential_wait"):
        monkeypatch.setattr(jobs.RETRY, name, getattr(jobs.RETRY, name))
    jobs.use_deployment(Deployment(Settings(data_dir=tmp_path, job_retry_wait=0.5, job_max_attempts=3)))
    assert (jobs.RETRY.wait, jobs.RETRY.max_attempts) == (1, 3)
    jobs.use_deployment(Deployment(Settings(data_dir=tmp_path, job_retry_wait=2.0)))
    assert jobs.RETRY.wait == 2
