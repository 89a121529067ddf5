"""`sealtrail serve`-like app in a uvicorn subprocess on a free loopback port, for tests that need a real server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from sealtrail.settings import Settings
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LiveServer:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def settings_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALTRAIL_")}
    env.update(
        SEALTRAIL_DATA_DIR=str(settings.resolved_data_dir),
        SEALTRAIL_DEV_PKI_URL=settings.dev_pki_url,
        SEALTRAIL_PUBLIC_RATE_PER_MINUTE=str(settings.public_rate_per_minute),
        SEALTRAIL_VERIFY_RATE_PER_MINUTE=str(settings.verify_rate_per_minute),
        PYTHONPATH=str(ROOT),
    )
    if settings.database_url:
        env["SEALTRAIL_DATABASE_URL"] = settings.database_url
    return env


@contextmanager
def live_server(settings: Settings, workers: int = 1) -> Iterator[LiveServer]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "sealtrail.web.app:app_factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--workers", str(workers)],
        env=settings_env(settings), cwd=ROOT,
    )  # fmt: skip
    server = LiveServer(port, proc)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start (exit {proc.returncode})")
            time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
