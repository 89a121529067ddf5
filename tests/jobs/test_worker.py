"""`sealtrail worker` on PostgreSQL with real procrastinate: a worker killed mid-batch (SIGKILL) and a second
worker finish the batch with every document signed and logged exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from jobs import batches as jobs
from registry.records import DocumentRecord
from signer.storage import BlobStore
from tests.jobs.conftest import JobEnv, transcripts
from tests.jobs.test_batches import issue_entries, statuses

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(1200)]


def start_worker(env: JobEnv, log: Path, concurrency: int) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sealtrail", "worker", "--concurrency", str(concurrency)],
            cwd=ROOT, env=os.environ | env.env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def item_states(env: JobEnv, batch: str) -> Counter[str]:
    items = jobs.batch_items.c
    with env.dep.engine.connect() as conn:
        rows = conn.execute(select(items.state, func.count()).where(items.batch_id == batch).group_by(items.state))
        return Counter(dict(rows.all()))  # type: ignore[arg-type]


def kill_mid_batch(dep: object, batch: str, process: subprocess.Popen, log: Path, total: int = 5) -> list[str]:  # type: ignore[type-arg]
    """SIGKILL ``process`` while it signs the batch (at least one document issued, not the last); return the ids of
    the items it left ``running``."""
    deadline = time.monotonic() + 300
    try:
        while True:
            counts = jobs.batch_progress(dep, batch)["counts"]  # type: ignore[arg-type,index]
            if 1 <= counts["issued"] < total and counts["running"]:
                break
            assert counts["issued"] < total, "the batch finished before the process could be killed"
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, (counts, log.read_text())
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    with dep.engine.connect() as conn:  # type: ignore[attr-defined]
        items = jobs.batch_items.c
        return list(
            conn.execute(select(items.doc_id).where(items.batch_id == batch, items.state == "running")).scalars()
        )


def test_a_killed_worker_leaves_nothing_signed_or_logged_twice(
    pg_url: str, job_env_factory: Callable[..., JobEnv], tmp_path: Path
) -> None:
    env = job_env_factory(pg_url)
    client = env.client()
    response = client.post("/api/v1/documents?async=true", json=transcripts(6), headers=env.headers)
    assert response.status_code == 202, response.text
    batch, doc_ids = response.json()["batch"], [d["id"] for d in response.json()["documents"]]
    with env.dep.engine.connect() as conn:  # the tasks were committed with the batch, one per document
        queued = conn.exec_driver_sql("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'").scalar()
    assert queued == 6

    log = tmp_path / "worker.log"
    first = start_worker(env, log, concurrency=1)
    interrupted = kill_mid_batch(env.dep, batch, first, log, total=6)  # while signing, after one, before the last
    at_kill = item_states(env, batch)
    with env.dep.engine.connect() as conn:
        doing = conn.exec_driver_sql("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'").scalar()
    assert interrupted and doing == 1, (at_kill, doing)

    second = start_worker(env, log, concurrency=2)
    try:
        deadline = time.monotonic() + 400
        while (progress := client.get(f"/api/v1/batches/{batch}", headers=env.headers).json())["state"] == "running":
            assert second.poll() is None, log.read_text()
            assert time.monotonic() < deadline, (progress, log.read_text())
            time.sleep(0.5)
    finally:
        second.send_signal(signal.SIGTERM)  # a graceful stop
        assert second.wait(60) == 0, log.read_text()

    assert progress["state"] == "done" and progress["counts"]["issued"] == 6, progress
    assert statuses(env, doc_ids) == dict.fromkeys(doc_ids, "issued")
    assert issue_entries(env) == Counter(doc_ids)  # exactly one log entry per document
    assert "re-queued job" in log.read_text()  # the second worker took over the dead one's job
    redone = {d["id"]: d["attempts"] for d in progress["documents"] if d["id"] in interrupted}
    assert all(a >= 2 for a in redone.values()), redone
    with env.dep.engine.connect() as conn:
        left = conn.exec_driver_sql("SELECT status, count(*) FROM procrastinate_jobs GROUP BY status").all()
    assert left == [], left  # every job succeeded (and was deleted)

    audit = subprocess.run(
        [sys.executable, "-m", "sealtrail", "ledger", "audit"],
        cwd=ROOT, env=os.environ | env.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert audit.returncode == 0 and "audit passed" in audit.stdout, audit.stdout + audit.stderr
    with env.dep.engine.connect() as conn:
        table = DocumentRecord.__table__  # type: ignore[attr-defined]
        sha = conn.execute(select(table.c.sha256_pdf).where(table.c.id == interrupted[0])).scalar_one()
    pdf = tmp_path / "redone.pdf"
    pdf.write_bytes(BlobStore(env.dep.settings.documents_dir).get(sha, "pdf"))
    out = subprocess.run(["pdfsig", str(pdf)], capture_output=True, text=True, timeout=60).stdout
    assert out.count("Signature Validation: Signature is Valid.") == 3, out


def test_the_worker_retries_while_the_timestamp_service_is_down(
    pg_url: str, job_env_factory: Callable[..., JobEnv], tmp_path: Path
) -> None:
    env = job_env_factory(pg_url)
    client = env.client()
    log = tmp_path / "worker.log"
    worker = start_worker(env, log, concurrency=1)  # it finds this PKI served and starts no services of its own
    try:
        deadline = time.monotonic() + 120
        while "SealTrail worker on queue" not in log.read_text():  # it has looked at the PKI's port
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        env.stop_pki()  # the TSA and OCSP stop answering
        response = client.post("/api/v1/documents?async=true", json=transcripts(1), headers=env.headers)
        batch = response.json()["batch"]
        deadline = time.monotonic() + 300
        while (progress := client.get(f"/api/v1/batches/{batch}", headers=env.headers).json())["documents"][0][
            "attempts"
        ] < 2:
            assert worker.poll() is None and time.monotonic() < deadline, (progress, log.read_text())
            time.sleep(0.5)
        assert progress["state"] == "running" and not issue_entries(env)
        assert "attempt 1" in progress["documents"][0]["reason"]  # the first failure, kept for the staff
        env.start_pki()
        while (progress := client.get(f"/api/v1/batches/{batch}", headers=env.headers).json())["state"] == "running":
            assert worker.poll() is None and time.monotonic() < deadline, (progress, log.read_text())
            time.sleep(0.5)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    assert progress["state"] == "done" and progress["documents"][0]["attempts"] >= 2, progress
    assert issue_entries(env) == Counter(d["id"] for d in progress["documents"])
    assert "will be retried" in log.read_text()
