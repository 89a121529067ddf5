"""A client that hangs up stops the work: a real uvicorn server on loopback, a real socket closed mid-check.

The check's worker is killed (and replaced) when the client disconnects, for a single upload and for a ZIP bulk
check half-way; the server's own counters (``/metrics``) and log say so, and the worker process is gone. The
crafted file needs 10–20 s of CPU and the limits are set far above that, so only the disconnect can stop it."""

from __future__ import annotations

import io
import re
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from sealtrail.deployment import Deployment
from signer.issue import IssuedDocument
from tests.conftest import free_port
from tests.hardening.live import ROOT, settings_env
from tests.verifier.hostile_pdf import many_signatures
from tests.verifier.test_bounded import gone

Installed = tuple[Deployment, list[IssuedDocument]]
PATIENCE = 300.0  # seconds to wait for the server to act (a loaded machine); never what a test asserts on


@contextmanager
def server(dep: Deployment, log: Path) -> Iterator[tuple[str, int]]:
    env = settings_env(dep.settings) | {
        "SEALTRAIL_VERIFY_CPU_SECONDS": "3600",
        "SEALTRAIL_VERIFY_WALL_SECONDS": "3600",
        "SEALTRAIL_VERIFY_WORKERS": "1",
        "SEALTRAIL_VERIFY_RATE_PER_MINUTE": "1000",
    }
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "sealtrail.web.app:app_factory", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + PATIENCE
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.2)


def post_and_hang_up(
    url: str, path: str, filename: str, content: bytes, started: float, accept: str = "application/json"
) -> None:
    """Send a multipart upload over a plain socket, wait until the server has handed it to a worker, hang up."""
    boundary = "sealtrailboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAccept: {accept}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    wait_for(lambda: metric(url, "sealtrail_verify_checks_total") > started, "the check to start")
    sock.close()


def descendants(pid: int) -> list[int]:
    """The direct children of a process (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def stopped_pids(log: Path) -> list[int]:
    found = re.findall(r"verification stopped \(cancelled\); worker (\d+) replaced", log.read_text())
    return [int(pid) for pid in found]


@pytest.mark.parametrize("path", ["/api/v1/verify", "/kiem-tra"])
def test_a_single_upload_stops_when_the_client_hangs_up(setup: Installed, tmp_path: Path, path: str) -> None:
    dep, docs = setup
    log = tmp_path / "server.log"
    with server(dep, log) as (url, pid):
        # The check workers were started with the server, before any upload (forkserver → workers).
        workers = [w for child in descendants(pid) for w in descendants(child)]
        assert workers, "no pre-started check workers under the server"
        post_and_hang_up(url, path, "slow.xml", many_signatures(docs[0].xml, 230), 0)
        cancelled = 'sealtrail_verify_stopped_total{cause="cancelled"}'
        wait_for(lambda: metric(url, cancelled) == 1, "the check to be stopped")
        (stopped,) = stopped_pids(log)
        wait_for(lambda: gone(stopped), "the stopped worker to end")
        assert metric(url, 'sealtrail_verify_stopped_total{cause="cpu"}') == 0
        # The replacement worker answers the next client.
        answer = httpx.post(f"{url}/api/v1/verify", files={"file": ("d.pdf", docs[0].pdf)}, timeout=PATIENCE)
        assert answer.status_code == 200 and answer.json()["verdict"] == "valid"


@pytest.mark.parametrize("accept", ["application/json", "application/x-ndjson"])
def test_a_zip_bulk_check_stops_when_the_client_hangs_up(setup: Installed, tmp_path: Path, accept: str) -> None:
    """Answered as one JSON document, or streamed as JSON lines (the stream is cut when the client leaves)."""
    dep, docs = setup
    slow = many_signatures(docs[0].xml, 230)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(3):
            archive.writestr(f"slow-{i}.xml", slow + b" " * i)
    log = tmp_path / "server.log"
    with server(dep, log) as (url, _pid):
        post_and_hang_up(url, "/api/v1/verify/bulk", "many.zip", buffer.getvalue(), 0, accept)
        cancelled = 'sealtrail_verify_stopped_total{cause="cancelled"}'
        wait_for(lambda: metric(url, cancelled) == 1, "the check to be stopped")
        (stopped,) = stopped_pids(log)
        wait_for(lambda: gone(stopped), "the stopped worker to end")
        # Only the first file was ever handed to a worker: the ZIP's other two were never started.
        answer = httpx.post(f"{url}/api/v1/verify", files={"file": ("d.xml", docs[0].xml)}, timeout=PATIENCE)
        assert answer.status_code == 200 and answer.json()["verdict"] == "valid"
        assert metric(url, "sealtrail_verify_checks_total") == 2
