"""Batch jobs retry only transient errors: a wrong PIN or an unreadable PDF fails the item at once with its message
for a person; a timestamp/OCSP outage is retried and the item issued once the services are back."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from asn1crypto import pem
from sqlmodel import Session, select

import errors
import schemas
from hsm_adapters.pkcs11 import import_certificates, import_private_key
from jobs import approval
from jobs import batches as jobs
from sealtrail.deployment import Deployment
from sealtrail.devpki import SIGNER_ROLES, DevPki
from sealtrail.settings import Settings
from tests.accounts import conftest as accounts_fixtures
from tests.accounts.conftest import SCHOOL_A, World, finish_batch, staff_actor, teacher_signed
from tests.conftest import SOFTHSM_MODULE, SoftHsm, free_port
from tests.jobs.conftest import JobEnv, transcripts
from workflow.signing import SigningTask
from workflow.states import WorkItem

ROOT = Path(__file__).resolve().parents[2]
world = accounts_fixtures.world  # the accounts tests' fixtures, for the approval batch below
cheap_argon2 = accounts_fixtures.cheap_argon2
# OpenSC's PKCS#11 spy: loads the real module named in $PKCS11SPY and logs every call into $PKCS11SPY_OUTPUT.
SPY = next((p for p in (Path("/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so"),) if p.is_file()), None)


def _submit(dep: Deployment, n: int) -> tuple[str, list[int]]:
    """A batch of ``n`` transcripts queued without running it here; returns the batch id and its item ids."""
    raw = transcripts(n)
    batch = jobs.submit_batch(dep, [(r, schemas.parse_document(r)) for r in raw], SCHOOL_A, "test", run_here=False)
    with dep.engine.connect() as conn:
        ids = conn.execute(
            jobs.batch_items.select()
            .with_only_columns(jobs.batch_items.c.id)
            .where(jobs.batch_items.c.batch_id == batch.batch_id)
        ).scalars()
        return batch.batch_id, sorted(int(i) for i in ids)


@pytest.mark.skipif(SPY is None, reason="OpenSC's pkcs11-spy.so is needed to count C_Login calls")
@pytest.mark.timeout(600)
def test_a_wrong_pin_fails_the_whole_batch_with_one_login_attempt(
    softhsm: SoftHsm, dev_pki: DevPki, tmp_path: Path
) -> None:
    """Three documents signed with HSM keys behind a wrong PIN: `sealtrail worker` tries C_Login once (counted by
    OpenSC's PKCS#11 spy between SealTrail and the real SoftHSM2), then fails every item at once with the message
    (before, each item was retried up to 8 times, every attempt counting towards locking the token)."""
    token = f"pin-{free_port()}"
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", token, "--pin", softhsm.pin, "--so-pin", "87654321"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    for role in SIGNER_ROLES:
        config = softhsm.config(token, role)
        import_private_key(config, pem.unarmor((dev_pki.directory / "keys" / f"{role}.key.pem").read_bytes())[2])
        import_certificates(config, [dev_pki.cert(role), dev_pki.issuing_ca])
    data = tmp_path / "var"
    data.mkdir()
    (data / "pki").symlink_to(dev_pki.directory)
    spy_log = tmp_path / "spy.log"
    env = {
        "SEALTRAIL_DATA_DIR": str(data),
        "SEALTRAIL_DEV_PKI_URL": f"http://127.0.0.1:{free_port()}",
        "SEALTRAIL_KEY_BACKEND": "pkcs11",
        "SEALTRAIL_PKCS11_MODULE": str(SPY),
        "SEALTRAIL_PKCS11_TOKEN_LABEL": token,
        "SEALTRAIL_PKCS11_PIN_FILE": str(softhsm.wrong_pin_file),
        "SEALTRAIL_JOB_RETRY_WAIT": "0.2",
    }
    dep = Deployment(Settings(**{k.removeprefix("SEALTRAIL_").lower(): v for k, v in env.items()}))
    batch, items = _submit(dep, 3)

    worker = subprocess.run(
        [sys.executable, "-m", "sealtrail", "worker"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=os.environ | env | {"PKCS11SPY": str(SOFTHSM_MODULE), "PKCS11SPY_OUTPUT": str(spy_log)},
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr[-3000:]

    calls = spy_log.read_text(errors="replace")
    assert len(re.findall(r"\bC_Login\b", calls)) == 1, calls[-3000:]
    assert "CKR_PIN_INCORRECT" in calls
    progress = jobs.batch_progress(dep, batch)
    assert progress is not None and progress["state"] == "failed", progress
    assert [d["attempts"] for d in progress["documents"]] == [1, 1, 1], progress
    for failure in progress["failures"]:
        assert "Mã PIN" in failure["reason"] and "PIN" in failure["reason"] and "is wrong" in failure["reason"]
        assert "after" not in failure["reason"] and softhsm.pin not in failure["reason"]
    assert len(items) == 3


def test_a_timestamp_and_ocsp_outage_is_retried_then_issued(job_env_factory: Callable[..., JobEnv]) -> None:
    env = job_env_factory()
    env.stop_pki()  # the TSA and the OCSP responder stop answering
    rt = jobs.runtime_for(env.dep)
    batch, (item,) = _submit(env.dep, 1)
    with pytest.raises(jobs.TransientError) as raised:
        jobs.run_item(item, 1, rt)
    cause = raised.value.__cause__
    assert isinstance(cause, errors.SealTrailError) and cause.transient, repr(cause)
    progress = jobs.batch_progress(env.dep, batch)
    assert progress is not None
    (doc,) = progress["documents"]
    assert doc["state"] == "queued" and doc["attempts"] == 1 and "attempt 1" in doc["reason"], doc
    env.start_pki()
    assert jobs.run_item(item, 2, rt) == "issued"
    final = jobs.batch_progress(env.dep, batch)
    assert final is not None and final["state"] == "done" and final["documents"][0]["attempts"] == 2


def test_an_unreadable_pdf_fails_the_item_at_once_and_goes_back_to_the_teacher(world: World) -> None:
    """The principal approves a class whose teacher-signed PDF turns out unreadable: the job does not retry it
    (it would fail again), the item fails after one attempt with the reason, and the work item goes back with
    advice to return it to the homeroom teacher."""
    ctx = world.app.state.accounts  # type: ignore[attr-defined]
    (item_id,) = teacher_signed(world, [schemas.load_sample("class_9a1")[0]])
    garbage = world.dep.blobs.put(b"%PDF-1.7\n this is not a PDF any more\n", "pdf")
    with Session(world.dep.engine) as session:
        item = session.get(WorkItem, item_id)
        assert item is not None and item.doc_id
        teacher = session.exec(
            select(SigningTask).where(SigningTask.doc_id == item.doc_id, SigningTask.role == "homeroom_teacher")
        ).one()
        teacher.output_pdf_sha256 = garbage  # what the principal's step will sign
        session.add(teacher)
        session.commit()

    batch = approval.start_batch(ctx, None, staff_actor(world, "principal-a"), SCHOOL_A, [item_id])
    progress = finish_batch(world, batch)
    assert progress["state"] == "failed" and progress["documents"][0]["attempts"] == 1, progress
    reason = progress["failures"][0]["reason"]
    assert "not a readable PDF" in reason and "Tệp không phải PDF" in reason and "after" not in reason, reason
    with Session(world.dep.engine) as session:
        back = session.get(WorkItem, item_id)
    assert back is not None and back.state == "teacher_signed", back
    assert back.last_error and back.last_error.startswith("Dữ liệu có vấn đề"), back.last_error
