"""Kill the issuing process inside every step of issuing, then at random points: afterwards every document is fully
issued (signed, stored, logged) or still pending, the registry and the log agree, the audit passes, and re-running
the same batch finishes the pending ones without issuing anything twice.

The steps (each killed once, in a later document each time): rendering, a PDF signature, an XML signature, storing
the files, appending to the log, and between two documents. ``SEALTRAIL_CRASH_KILLS`` sets the number of kills at
random points on top of those (default 2; e.g. 50 for a long run by hand).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from ledger.entry import Entry
from registry.records import DocumentRecord, DocumentStatus
from sealtrail.deployment import Deployment
from sealtrail.settings import Settings
from signer.storage import BlobStore
from tests.conftest import free_port
from tests.hardening.live import ROOT, settings_env

KILLS = int(os.environ.get("SEALTRAIL_CRASH_KILLS", "2"))
# (the step, which occurrence of it in that driver's run): the first document resumed takes most of these kills
STEPS = (("render", 1), ("pdf-signature", 2), ("xml-signature", 2), ("store", 2), ("log", 1), ("issued", 1))
BATCH = 5


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    dep = Deployment(Settings(data_dir=tmp_path / "data", dev_pki_url=f"http://127.0.0.1:{free_port()}"))
    dep.engine  # noqa: B018 - migrate before the first driver runs
    services = dep.start_dev_pki_services()  # served by this process, so killing the driver leaves it up
    try:
        yield dep
    finally:
        if services:
            services.stop()


def _driver(dep: Deployment, *flags: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "issue_driver.py"), str(BATCH), *flags],
        env=settings_env(dep.settings), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def check_consistent(dep: Deployment) -> tuple[int, int]:
    """Every record issued-and-complete or pending; every log entry has its issued record; the audit is clean."""
    from sealtrail.ledgerwiring import audit_deployment, ledger_for

    ledger, _ = ledger_for(dep)
    blobs = BlobStore(dep.settings.documents_dir)
    with Session(dep.engine) as session:
        records = session.exec(select(DocumentRecord)).all()
    with dep.engine.connect() as conn:
        entries = [Entry.parse(ledger.entry(conn, i)) for i in range(ledger.size(conn))]
    logged = {e.doc_id: (i, e) for i, e in enumerate(entries) if e.type == "issue"}
    issued = pending = 0
    for r in records:
        assert r.status in (DocumentStatus.ISSUED.value, DocumentStatus.PENDING.value), r
        if r.status == DocumentStatus.PENDING.value:
            pending += 1
            assert r.id not in logged and r.leaf_index is None and r.sha256_pdf is None, r
            continue
        issued += 1
        index, entry = logged[r.id]
        assert r.leaf_index == index and (entry.pdf_sha256, entry.xml_sha256) == (r.sha256_pdf, r.sha256_xml)
        assert r.sha256_pdf and r.sha256_xml
        assert blobs.get(r.sha256_pdf, "pdf").startswith(b"%PDF") and blobs.get(r.sha256_xml, "xml").startswith(b"<")
    assert set(logged) <= {r.id for r in records}, "a log entry without its document"
    assert audit_deployment(dep) == []
    return issued, pending


@pytest.mark.slow
@pytest.mark.timeout(900)  # about 9 driver starts and 6 documents: minutes on a busy shared machine
def test_kills_during_a_signing_batch_never_leave_half_a_document(deployment: Deployment) -> None:
    rng = random.Random(11)
    seen_states: set[tuple[int, int]] = set()
    for step, nth in STEPS:  # one kill inside each step of issuing
        proc = _driver(deployment, "--trace")
        assert proc.stdout is not None
        seen = 0
        for line in proc.stdout:  # "at <step>" as a step starts, "issued <id>" after each document
            words = line.decode().split()
            if words[:2] == ["at", step] or words[:1] == [step]:
                seen += 1
                if seen == nth:
                    break
        assert seen == nth, (step, nth, proc.communicate())  # the batch reached that step before it ended
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        seen_states.add(check_consistent(deployment))
    for _ in range(KILLS):
        proc = _driver(deployment)
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, 8.0))  # a document takes ~1.5–3 s here: kills land all over the batch
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        seen_states.add(check_consistent(deployment))
    # The kills landed mid-batch at least once (some document pending), so the checks above saw real crash states.
    assert any(p > 0 for _, p in seen_states), seen_states

    proc = _driver(deployment)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-3000:]
    issued, pending = check_consistent(deployment)
    assert (issued, pending) == (BATCH, 0), (issued, pending)  # the pending ones resumed, nothing issued twice
    assert len([line for line in out.decode().splitlines() if line.startswith("issued")]) == BATCH
    with Session(deployment.engine) as session:
        assert len(session.exec(select(DocumentRecord)).all()) == BATCH

    audit = subprocess.run(
        [sys.executable, "-m", "sealtrail", "ledger", "audit"],
        env=settings_env(deployment.settings), cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert audit.returncode == 0, audit.stdout + audit.stderr
