"""Fixtures for the hardening tests: real signed documents, a loopback server that records every request it gets
(to prove that nothing makes the server fetch a URL), and a verifier worker process under resource limits."""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import schemas
from sealtrail.deployment import Deployment
from sealtrail.settings import Settings
from signer.issue import IssuedDocument
from tests.conftest import free_port

HERE = Path(__file__).parent
# Resource bounds for checking one hostile file (asserted by the fuzz tests; see docs/security.md).
CASE_SECONDS = 20.0  # wall-clock time for one check, in a worker process on a loaded 2-core machine
WORKER_ADDRESS_SPACE = 2 * 1024**3  # RLIMIT_AS of the worker process: a runaway allocation fails, it cannot swap
CASE_PEAK_PYTHON_BYTES = 256 * 1024**2  # tracemalloc peak for one check


@dataclass
class Recorder:
    """A loopback HTTP server that answers 200 to everything and records each request line."""

    port: int
    hits: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder(free_port())

    class Handler(BaseHTTPRequestHandler):
        def _hit(self) -> None:
            rec.hits.append(f"{self.command} {self.path}")
            body = b'<!ENTITY x "pwned">'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_HEAD = _hit

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", rec.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Signed:
    dep: Deployment
    docs: list[IssuedDocument]

    @property
    def pdf(self) -> bytes:
        return self.docs[0].pdf

    @property
    def xml(self) -> bytes:
        return self.docs[0].xml


@pytest.fixture(scope="session")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signed]:
    """A deployment with a diploma and a transcript issued (B-LT PDF and XAdES XML) and a checkpoint published."""
    from sealtrail.ledgerwiring import publish_checkpoint

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("hardening"),
        dev_pki_url=f"http://127.0.0.1:{free_port()}",
        public_rate_per_minute=100_000,
        verify_rate_per_minute=100_000,
    )
    dep = Deployment(settings)
    services = dep.start_dev_pki_services()
    try:
        issuer = dep.make_issuer()
        samples = ("diploma_thpt", "transcript_thcs")
        docs = [issuer.issue(schemas.parse_document(schemas.load_sample(n))) for n in samples]
        publish_checkpoint(dep)
        yield Signed(dep, docs)
    finally:
        if services:
            services.stop()


def _limit_worker() -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_ADDRESS_SPACE, WORKER_ADDRESS_SPACE))


class Worker:
    """A verifier process under RLIMIT_AS; each case is answered with its verdict, time and tracemalloc peak.

    A case that hangs past ``CASE_SECONDS`` kills the worker and fails the test; a crash of the worker (e.g. a
    segfault in a C parser) fails it too. The worker is restarted for the next case."""

    def __init__(self, trust_dir: Path) -> None:
        self.trust_dir = trust_dir
        self.proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": str(HERE.parent.parent)}
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "fuzz_worker.py"), str(self.trust_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            preexec_fn=_limit_worker,
            env=env,
        )
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert ready.strip() == b"ready", ready
        return proc

    def check(self, kind: str, data: bytes) -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None
        head = json.dumps({"kind": kind}).encode()
        proc.stdin.write(struct.pack(">II", len(head), len(data)) + head + data)
        proc.stdin.flush()
        answer: list[bytes] = []
        reader = threading.Thread(target=lambda: answer.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(CASE_SECONDS)
        if reader.is_alive() or not answer or not answer[0]:
            proc.kill()
            proc.wait()
            self.proc = None
            hung = reader.is_alive()
            raise AssertionError(
                f"{kind} check {'hung for more than ' + str(CASE_SECONDS) + ' s' if hung else 'crashed the worker'} "
                f"(exit {proc.returncode}); first bytes {data[:60]!r}"
            )
        return dict(json.loads(answer[0]))

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def worker(signed: Signed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    from asn1crypto import pem

    trust = tmp_path_factory.mktemp("trust")
    (trust / "roots.pem").write_bytes(b"".join(pem.armor("CERTIFICATE", c.dump()) for c in signed.dep.trust_roots))
    (trust / "intermediates.pem").write_bytes(
        b"".join(pem.armor("CERTIFICATE", c.dump()) for c in signed.dep.intermediates)
    )
    w = Worker(trust)
    try:
        yield w
    finally:
        w.close()


def assert_bounded(result: dict[str, Any]) -> None:
    """The answer is a verdict that is never 'valid' for damaged input, or a clear refusal, within the bounds."""
    assert result["error"] is None, result
    assert result["seconds"] < CASE_SECONDS, result
    assert result["peak"] < CASE_PEAK_PYTHON_BYTES, result
