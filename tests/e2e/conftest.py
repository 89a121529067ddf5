"""One demo installation (`sealtrail demo --out` + `sealtrail serve`) shared by the end-to-end test modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

SEALTRAIL = [sys.executable, "-m", "sealtrail"]


def documents(demo: dict[str, object]) -> list[dict[str, object]]:
    return json.loads((Path(str(demo["out"])) / "documents.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("demo")
    web_port, pki_port = free_port(), free_port()
    env = {
        **os.environ,
        "SEALTRAIL_DATA_DIR": str(root / "var"),
        "SEALTRAIL_DEV_PKI_URL": f"http://127.0.0.1:{pki_port}",
        "SEALTRAIL_PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
    }
    out = root / "out"
    result = subprocess.run(
        [*SEALTRAIL, "demo", "--out", str(out)], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    server = subprocess.Popen(
        [*SEALTRAIL, "serve", "--port", str(web_port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        base = f"http://127.0.0.1:{web_port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                output = server.stdout.read().decode() if server.stdout and server.poll() is not None else ""
                pytest.fail(f"sealtrail serve did not come up: {output}")
            time.sleep(0.3)
        yield {"out": out, "env": env, "base": base, "stdout": result.stdout}
    finally:
        server.terminate()
        server.wait(timeout=10)
