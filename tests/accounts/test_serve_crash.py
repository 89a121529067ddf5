"""SQLite: the serving process runs the principal's batch in a thread. Killed (SIGKILL) in the middle of it and
started again, it picks the batch up from the job rows and every document is issued exactly once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyotp
import pytest

from jobs import batches as jobs
from signer.storage import BlobStore
from tests.accounts.conftest import PASSWORD, SCHOOL_A, World, csrf_of, make_deployment, populate, teacher_signed
from tests.accounts.test_batch_crash import _class, assert_each_issued_exactly_once
from tests.conftest import free_port
from tests.jobs.test_worker import kill_mid_batch

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "sealtrail", "serve", "--port", str(port)],
            cwd=ROOT, env=os.environ | env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        assert server.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.3)


def test_a_server_killed_mid_class_resumes_at_restart_and_issues_each_document_once(
    dev_pki: object, tmp_path: Path
) -> None:
    from sealtrail.web.app import create_app

    dep = make_deployment(tmp_path, f"sqlite:///{tmp_path / 'st.db'}", dev_pki)
    world = World(dep, create_app(dep.settings), populate(dep))
    ids = teacher_signed(world, _class(5))
    env = {
        "SEALTRAIL_DATA_DIR": str(dep.settings.data_dir),
        "SEALTRAIL_DATABASE_URL": dep.settings.effective_database_url,
        "SEALTRAIL_DEV_PKI_URL": dep.settings.dev_pki_url,
        "SEALTRAIL_SESSION_COOKIE_SECURE": "false",
    }
    port, log = free_port(), tmp_path / "serve.log"
    server = _serve(env, port, log)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=False, timeout=60)
        totp = pyotp.TOTP(world.totp["principal-a"]).now()
        signed_in = client.post("/dang-nhap", data={"username": "principal-a", "password": PASSWORD, "totp": totp})
        assert signed_in.status_code == 303, signed_in.text
        csrf = csrf_of(dep, client)  # type: ignore[arg-type]
        started = client.post(f"/can-bo/{SCHOOL_A}/duyet-ky", data={"items": ids, "csrf_token": csrf})
        assert started.status_code == 303 and "/lo-ky/" in started.headers["location"], started.text
        batch = started.headers["location"].rsplit("/", 1)[1]
    except BaseException:
        server.send_signal(signal.SIGKILL)
        server.wait(30)
        raise
    interrupted = kill_mid_batch(dep, batch, server, log)  # while it signs, after one document, before the last
    assert interrupted

    server = _serve(env, port, log)  # picks the open items up again
    try:
        deadline = time.monotonic() + 400
        while (progress := jobs.batch_progress(dep, batch))["state"] == "running":  # type: ignore[index]
            assert server.poll() is None and time.monotonic() < deadline, (progress, log.read_text())
            time.sleep(0.5)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    assert progress["state"] == "done" and progress["counts"]["issued"] == 5, progress  # type: ignore[index]
    record = assert_each_issued_exactly_once(dep, ids, env)[interrupted[0]]
    assert record is not None
    pdf = tmp_path / "redone.pdf"
    pdf.write_bytes(BlobStore(dep.settings.documents_dir).get(str(record.sha256_pdf), "pdf"))
    out = subprocess.run(["pdfsig", str(pdf)], capture_output=True, text=True, timeout=60).stdout
    assert out.count("Signature Validation: Signature is Valid.") == 3, out
    assert len(re.findall(r"Signer Certificate Common Name", out)) == 3
