"""Faults while issuing: a timestamp authority that stalls, a database whose connections are killed. Each gives a
clear error (or recovers), leaves the document pending, and a retry finishes it under the same id: nothing lost,
nothing issued twice. (An unplugged or restarted PKCS#11 token is covered by tests/hsm/test_pkcs11.py.)"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from sqlmodel import Session, select

import schemas
from registry.records import DocumentRecord, DocumentStatus
from sealtrail.deployment import Deployment
from sealtrail.settings import Settings
from signer.pdf import PadesSigner, SigningError
from tests.conftest import free_port
from tests.hardening.issue_driver import batch
from tests.hardening.test_crash import check_consistent


@pytest.fixture
def stalling_tsa() -> Iterator[str]:
    """A loopback 'TSA' that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/tsa"
    finally:
        stop.set()
        thread.join()
        for s in held:
            s.close()
        server.close()


def _deployment(tmp_path, database_url: str | None = None) -> Deployment:  # type: ignore[no-untyped-def]
    return Deployment(
        Settings(data_dir=tmp_path, database_url=database_url, dev_pki_url=f"http://127.0.0.1:{free_port()}")
    )


def _records(dep: Deployment) -> list[DocumentRecord]:
    with Session(dep.engine) as session:
        return list(session.exec(select(DocumentRecord)).all())


def test_a_stalled_tsa_gives_a_clear_error_and_a_retry_finishes_the_same_document(tmp_path, stalling_tsa) -> None:  # type: ignore[no-untyped-def]
    dep = _deployment(tmp_path)
    services = dep.start_dev_pki_services()
    try:
        good = dep.make_issuer()
        stalled = dataclasses.replace(
            good,
            pades=PadesSigner(
                trust_roots=dep.trust_roots, other_certs=dep.intermediates, timestamp_urls=[stalling_tsa]
            ),
            timestamp_urls=[stalling_tsa],
        )
        (doc,) = batch(1)
        started = time.monotonic()
        with pytest.raises(SigningError) as info:
            stalled.issue(doc)
        assert time.monotonic() - started < 60  # the timeout, not a hang
        assert (
            "tsa" in str(info.value).lower()
            or "timestamp" in str(info.value).lower()
            or "dấu thời gian" in str(info.value).lower()
        ), info.value
        (pending,) = _records(dep)
        assert pending.status == DocumentStatus.PENDING.value
        assert check_consistent(dep) == (0, 1)

        issued = good.issue(doc)  # the TSA is back: the retry finishes the same document
        assert issued.doc_id == pending.id and issued.token == pending.token
        assert check_consistent(dep) == (1, 0)
        assert good.issue(doc).doc_id == pending.id  # and issuing it again does not make a second one
        assert len(_records(dep)) == 1
    finally:
        if services:
            services.stop()


@pytest.mark.postgres
def test_database_connections_killed_mid_batch(tmp_path, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    """pg_terminate_backend on every connection of the database between (and during) issues: the pool reconnects
    (pre-ping) or the issue fails clearly and the retry finishes it; nothing lost, nothing twice."""
    import sqlalchemy

    from tests.conftest import PG_ADMIN_URL

    dep = _deployment(tmp_path, pg_url)
    services = dep.start_dev_pki_services()
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = pg_url.rsplit("/", 1)[1]

    def terminate() -> int:
        with admin.connect() as conn:
            return len(
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                ).all()
            )

    try:
        issuer = dep.make_issuer()
        docs = batch(4)
        issuer.issue(docs[0])
        assert terminate() >= 1  # the pool's idle connection is gone
        issuer.issue(docs[1])  # pre-ping notices and reconnects
        failures = 0
        for doc in docs[2:]:
            killer = threading.Timer(1.0, terminate)  # kill the connections while this one is being signed
            killer.start()
            try:
                issuer.issue(doc)
            except sqlalchemy.exc.OperationalError:
                failures += 1
                issuer.issue(doc)  # the retry
            killer.join()
        assert check_consistent(dep) == (4, 0)
        assert len(_records(dep)) == 4
    finally:
        admin.dispose()
        if services:
            services.stop()


def _fsize_limited(limit: int):  # type: ignore[no-untyped-def]
    def apply() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_leaves_the_document_pending_and_the_same_command_finishes_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`sealtrail issue` under RLIMIT_FSIZE (no file may grow 32 KiB past the database's size, like a disk that fills
    up while the signed PDF is stored): a clear error, the document pending, no log entry; the same command then
    finishes it."""
    import json
    import subprocess
    import sys

    from tests.hardening.live import ROOT, settings_env

    dep = _deployment(tmp_path / "data")
    dep.engine  # noqa: B018 - migrate first (the database file is written without the limit)
    dep.dev_pki  # noqa: B018
    data = tmp_path / "diploma.json"
    data.write_text(json.dumps(schemas.load_sample("diploma_thpt"), ensure_ascii=False), encoding="utf-8")
    command = [sys.executable, "-m", "sealtrail", "issue", "--kind", "diploma", "--data", str(data),
               "--out", str(tmp_path / "out" / "vb.pdf")]  # fmt: skip
    env = settings_env(dep.settings)
    limit = (dep.settings.resolved_data_dir / "sealtrail.db").stat().st_size + 32 * 1024
    full = subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, preexec_fn=_fsize_limited(limit)
    )
    assert full.returncode == 1, full.stdout + full.stderr
    assert "chạy lại đúng lệnh này" in full.stderr and "still pending" in full.stderr, full.stderr[-2000:]
    print(full.stderr.strip().splitlines()[-1])
    assert check_consistent(dep) in ((0, 1), (0, 0))  # pending, or stopped before its row: never half-issued

    again = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert check_consistent(dep) == (1, 0)
    (record,) = _records(dep)
    assert record.id in again.stdout  # the same document, finished
    assert (tmp_path / "out" / "vb.pdf").read_bytes().startswith(b"%PDF")
