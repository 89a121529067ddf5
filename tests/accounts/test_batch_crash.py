"""The principal's "approve and sign the class" is a batch job: a worker killed (SIGKILL) in the middle of it and a
second worker that takes over issue every document exactly once, with the teacher's, the principal's and the
seal's signatures all valid, and the log audits clean."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

import schemas
from jobs import approval
from jobs import batches as jobs
from ledger.entry import Entry
from ledger.models import entries
from registry.records import DocumentRecord
from signer.storage import BlobStore
from tests.accounts.conftest import SCHOOL_A, World, make_deployment, populate, staff_actor, teacher_signed
from tests.jobs.conftest import JobEnv
from tests.jobs.test_worker import kill_mid_batch, start_worker
from workflow import operations as wf
from workflow.states import WorkItem

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(1200)]


def _class(n: int) -> list[dict]:  # type: ignore[type-arg]
    """``n`` pupils of class 9A1, each with their own personal id."""
    base = schemas.load_sample("class_9a1")[0]
    out = []
    for i in range(n):
        doc = dict(base, holder=dict(base["holder"], personal_id=f"0013100{i:05d}", given_name=f"Hằng {i}"))
        out.append(doc)
    return out


def _states(world: World, batch: str) -> Counter[str]:
    progress = jobs.batch_progress(world.dep, batch)
    assert progress is not None
    return Counter({k: v for k, v in progress["counts"].items() if v})


def assert_each_issued_exactly_once(
    dep: object, ids: list[str], env: dict[str, str]
) -> dict[str, DocumentRecord | None]:
    """After the crash and the resume: every work item and document issued, one `issue` log entry per document,
    and `sealtrail ledger audit` passes. Returns the documents' records by id."""
    with Session(dep.engine) as session:  # type: ignore[attr-defined]
        work = [session.get(WorkItem, i) for i in ids]
        doc_ids = [str(w.doc_id) for w in work if w is not None]
        assert {w.state for w in work if w is not None} == {"issued"}
        records = {d: session.get(DocumentRecord, d) for d in doc_ids}
    assert {r.status for r in records.values() if r is not None} == {"issued"}
    with dep.engine.connect() as conn:  # type: ignore[attr-defined]
        logged = [Entry.parse(bytes(d)) for d in conn.execute(select(entries.c.data)).scalars()]
    assert Counter(e.doc_id for e in logged if e.type == "issue") == Counter(doc_ids)  # exactly once each
    audit = subprocess.run(
        [sys.executable, "-m", "sealtrail", "ledger", "audit"],
        cwd=ROOT, env=os.environ | env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert audit.returncode == 0 and "audit passed" in audit.stdout, audit.stdout + audit.stderr
    return records


def test_a_worker_killed_mid_class_leaves_every_document_issued_exactly_once(
    pg_url: str, dev_pki: object, tmp_path: Path
) -> None:
    from sealtrail.web.app import create_app

    dep = make_deployment(tmp_path, pg_url, dev_pki)
    world = World(dep, create_app(dep.settings), populate(dep))
    ids = teacher_signed(world, _class(5))
    batch = approval.start_batch(world.app.state.accounts, None, staff_actor(world, "principal-a"), SCHOOL_A, ids)  # type: ignore[attr-defined]
    with dep.engine.connect() as conn:  # one task per document, committed with the batch
        assert conn.exec_driver_sql("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'").scalar() == 5
    env = {
        "SEALTRAIL_DATA_DIR": str(dep.settings.data_dir),
        "SEALTRAIL_DATABASE_URL": pg_url,
        "SEALTRAIL_DEV_PKI_URL": dep.settings.dev_pki_url,
        "SEALTRAIL_JOB_HEARTBEAT": "1",
        "SEALTRAIL_JOB_STALLED_AFTER": "4",
    }
    log = tmp_path / "worker.log"
    job_env = JobEnv(dep, "", None, env)
    first = start_worker(job_env, log, concurrency=1)
    interrupted = kill_mid_batch(dep, batch, first, log)  # while it signs, after one document, before the last
    assert interrupted
    page = world.login("principal-a").get(f"/can-bo/{SCHOOL_A}/lo-ky/{batch}").text
    assert "Đang ký" in page and 'http-equiv="refresh"' in page  # the page shows the job's state, not a guess

    second = start_worker(job_env, log, concurrency=1)
    try:
        deadline = time.monotonic() + 400
        while (progress := jobs.batch_progress(dep, batch))["state"] == "running":  # type: ignore[index]
            assert second.poll() is None, log.read_text()
            assert time.monotonic() < deadline, (progress, log.read_text())
            time.sleep(0.5)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0, log.read_text()

    assert progress["state"] == "done" and progress["counts"]["issued"] == 5, progress  # type: ignore[index]
    assert "re-queued job" in log.read_text()
    records = assert_each_issued_exactly_once(dep, ids, env)
    record = records[interrupted[0]]
    assert record is not None
    pdf = tmp_path / "redone.pdf"
    pdf.write_bytes(BlobStore(dep.settings.documents_dir).get(str(record.sha256_pdf), "pdf"))
    out = subprocess.run(["pdfsig", str(pdf)], capture_output=True, text=True, timeout=60).stdout
    assert out.count("Signature Validation: Signature is Valid.") == 3, out
    names = [n.strip() for n in re.findall(r"Signer Certificate Common Name: (.+)", out)]
    roles = {
        str(dep.signing_keys[r].certificate.subject.native["common_name"]): r
        for r in ("homeroom_teacher", "principal", "seal")
    }
    assert [roles[n] for n in names] == ["homeroom_teacher", "principal", "seal"], out


def test_the_principal_cancels_a_queued_batch_and_signs_it_again_later(
    pg_url: str, dev_pki: object, tmp_path: Path
) -> None:
    """No worker runs here, so the batch waits in the queue: cancelling drops its tasks and puts the work items back
    (teacher-signed, nothing signed by the principal); "sign again" queues them anew and they are issued once."""
    from sealtrail.web.app import create_app

    dep = make_deployment(tmp_path, pg_url, dev_pki)
    world = World(dep, create_app(dep.settings), populate(dep))
    ids = teacher_signed(world, _class(2))
    principal = world.login("principal-a")
    csrf = world.csrf["principal-a"]
    started = principal.post(f"/can-bo/{SCHOOL_A}/duyet-ky", data={"items": ids, "csrf_token": csrf})
    location = started.headers["location"]
    batch = location.rsplit("/", 1)[1]
    assert 'id="cancel"' in principal.get(location).text
    assert principal.post(f"{location}/huy", data={"csrf_token": csrf}).status_code == 303
    page = principal.get(location).text
    assert "Đã huỷ lô ký" in page and 'id="resume"' in page and "Ký lại 2 hồ sơ" in page
    assert _states(world, batch) == Counter({"cancelled": 2})
    with dep.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM procrastinate_jobs").scalar() == 0
    with Session(dep.engine) as session:
        assert {session.get(WorkItem, i).state for i in ids} == {"teacher_signed"}  # type: ignore[union-attr]
    flow = wf.signing_flow(dep)
    docs = [str(wf.get_item(world.app.state.accounts, SCHOOL_A, i).doc_id) for i in ids]  # type: ignore[attr-defined,union-attr]
    assert all([t.status for t in flow.tasks(d)] == ["done", "held", "held"] for d in docs)

    again = principal.post(f"{location}/tiep-tuc", data={"csrf_token": csrf})
    new_batch = again.headers["location"].rsplit("/", 1)[1]
    assert new_batch != batch
    jobs.run_open_items(dep)  # what `sealtrail worker` does
    assert _states(world, new_batch) == Counter({"issued": 2})
    assert jobs.batch_progress(dep, batch)["total"] == 0  # type: ignore[index]  # its items moved to the new batch
    with dep.engine.connect() as conn:
        logged = [Entry.parse(bytes(d)) for d in conn.execute(select(entries.c.data)).scalars()]
    assert Counter(e.doc_id for e in logged if e.type == "issue") == Counter(docs)
