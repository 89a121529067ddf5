"""An installation whose keys live on a PKCS#11 token: load keys, issue a transcript, check it with pdfsig."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SOFTHSM_MODULE, SoftHsm, free_port

pytestmark = pytest.mark.slow
SEALTRAIL = [sys.executable, "-m", "sealtrail"]


def test_issue_with_keys_on_a_token(softhsm: SoftHsm, tmp_path: Path) -> None:
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "school-e2e", "--pin", softhsm.pin, "--so-pin", "87654"],
        check=True, capture_output=True, timeout=60, env={**os.environ, "SOFTHSM2_CONF": str(softhsm.conf)},
    )  # fmt: skip
    env = {
        **os.environ,
        "SOFTHSM2_CONF": str(softhsm.conf),
        "SEALTRAIL_DATA_DIR": str(tmp_path / "var"),
        "SEALTRAIL_DEV_PKI_URL": f"http://127.0.0.1:{free_port()}",
        "SEALTRAIL_KEY_BACKEND": "pkcs11",
        "SEALTRAIL_PKCS11_MODULE": str(SOFTHSM_MODULE),
        "SEALTRAIL_PKCS11_TOKEN_LABEL": "school-e2e",
        "SEALTRAIL_PKCS11_PIN_FILE": str(softhsm.pin_file),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*SEALTRAIL, *args], env=env, capture_output=True, text=True, timeout=300)
        assert softhsm.pin not in result.stdout + result.stderr
        return result

    loaded = run("hsm", "load-dev-keys")
    assert loaded.returncode == 0, loaded.stderr
    sample = Path(__file__).parents[2] / "schemas" / "samples" / "transcript_thcs.json"
    out = tmp_path / "hocba.pdf"
    issued = run("issue", "--kind", "transcript", "--data", str(sample), "--out", str(out))
    assert issued.returncode == 0, issued.stderr
    text = subprocess.run(["pdfsig", str(out)], capture_output=True, text=True, timeout=60).stdout
    assert text.count("Signature Validation: Signature is Valid.") == 3, text
    verified = run("verify", str(out))
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # The token unplugged (its label no longer found): a clear error, nothing issued, exit code 1.
    env["SEALTRAIL_PKCS11_TOKEN_LABEL"] = "school-unplugged"
    failed = run("issue", "--kind", "transcript", "--data", str(sample), "--out", str(tmp_path / "never.pdf"))
    assert failed.returncode != 0
    assert "No token 'school-unplugged' is present" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert not (tmp_path / "never.pdf").exists()
