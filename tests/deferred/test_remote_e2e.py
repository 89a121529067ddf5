"""End to end: `sealtrail remote-sign` against a CSC v2 service on loopback (keys in SoftHSM2) with approval on
the "phone" driven by the test: approved (pdfsig + xmlsec1 on the output), rejected, and left to time out."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hsm_adapters.pkcs11 import Pkcs11KeyBackend
from sealtrail.devpki import DevPki
from tests.conftest import SoftHsm, free_port
from tests.deferred.conftest import cert_pem
from tests.deferred.csc_server import CscService, ServedCsc
from tests.deferred.test_agent_e2e import Served, _check_outputs, _screen, served  # noqa: F401 - fixture
from workflow.signing import register_signer

CSC_TOKEN = "csc-access-token-for-tests"  # the fake service's own test token


@pytest.fixture
def csc(softhsm: SoftHsm) -> Iterator[ServedCsc]:
    key = Pkcs11KeyBackend(softhsm.config("sealtrail-school", "principal"))
    with ServedCsc(CscService({"hieu-truong-01": key}, CSC_TOKEN, expiry=30), free_port()) as served_csc:
        yield served_csc
    key.close()


@pytest.fixture
def principal(served: Served, dev_pki: DevPki, tmp_path: Path) -> tuple[str, Path]:  # noqa: F811
    import schemas

    school = schemas.load_sample("class_9a1")[0]["school"]["code"]
    row, credential = register_signer(
        served.dep.engine, school_code=school, role="principal", display_name="Thầy Trần Văn Hùng",
        certificate_pem=cert_pem(dev_pki, "principal"),
    )  # fmt: skip
    path = tmp_path / "principal.credential"
    path.write_text(credential)
    return row.id, path


def _remote_sign(served: Served, csc: ServedCsc, cred: Path, tmp_path: Path, *extra: str) -> subprocess.Popen[str]:  # noqa: F811
    token = tmp_path / "csc.token"
    token.write_text(CSC_TOKEN)
    args = [
        sys.executable, "-m", "sealtrail", "remote-sign", "--server", served.url, "--csc-url", csc.url,
        "--csc-token-file", str(token), "--credential-file", str(cred), "--poll-interval", "0.3", "--yes", *extra,
    ]  # fmt: skip
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _phone(csc: ServedCsc, answer: str | None, timeout: float = 120) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = httpx.get(f"{csc.url}/_phone/pending").json()
        if pending:
            if answer:
                httpx.post(f"{csc.url}/_phone/{pending[0]['responseID']}/{answer}")
            return list(pending)
        time.sleep(0.2)
    raise AssertionError("no signature request reached the phone")


def _start(served: Served, principal_id: str, count: int) -> list[str]:  # noqa: F811
    import schemas
    from sealtrail.web.signing import flow_for

    flow = flow_for(served.dep)
    docs = [schemas.parse_document(d) for d in schemas.load_sample("class_9a1")][:count]
    return [flow.start(doc, {"principal": principal_id}) for doc in docs]


def test_approved_on_the_phone(
    served: Served,  # noqa: F811
    csc: ServedCsc,
    principal: tuple[str, Path],
    dev_pki: DevPki,
    tmp_path: Path,
) -> None:
    ids = _start(served, principal[0], 2)
    assert [r.status for r in served.records(ids)] == ["pending", "pending"]  # the teacher (server key) signed
    proc = _remote_sign(served, csc, principal[1], tmp_path)
    (request,) = _phone(csc, "approve")
    assert request["count"] == 4  # two documents, a PDF and an XML signature each, approved once
    out, _ = proc.communicate(timeout=300)
    _screen("remote-approved", "$ sealtrail remote-sign --server … --csc-url …\n" + out)
    assert proc.returncode == 0, out
    assert "Đang chờ xác nhận trên điện thoại / waiting for approval on your phone" in out
    assert "Xong: đã ký 2/2" in out
    _check_outputs(served.dep, served.records(ids), dev_pki, tmp_path)


def test_rejected_on_the_phone_and_timed_out_sign_nothing(
    served: Served,  # noqa: F811
    csc: ServedCsc,
    principal: tuple[str, Path],
    tmp_path: Path,
) -> None:
    ids = _start(served, principal[0], 1)
    proc = _remote_sign(served, csc, principal[1], tmp_path)
    _phone(csc, "reject")
    out, _ = proc.communicate(timeout=300)
    _screen("remote-rejected", "$ sealtrail remote-sign …   (rejected on the phone)\n" + out)
    assert proc.returncode == 4, out
    assert "bị từ chối trên điện thoại" in out and "nothing was signed" in out

    proc = _remote_sign(served, csc, principal[1], tmp_path, "--approval-timeout", "3")
    _phone(csc, None)  # the request reaches the phone; nobody answers
    out, _ = proc.communicate(timeout=300)
    _screen("remote-timeout", "$ sealtrail remote-sign … --approval-timeout 3   (nobody answers)\n" + out)
    assert proc.returncode == 5, out
    assert "Not approved within 3 s" in out
    assert [r.status for r in served.records(ids)] == ["pending"]

    # the document still awaits the principal, and approving now finishes it
    proc = _remote_sign(served, csc, principal[1], tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # skip the expired, unanswered request from before
        fresh = [p for p in httpx.get(f"{csc.url}/_phone/pending").json() if p["count"] == 2]
        if len(fresh) == 2:
            httpx.post(f"{csc.url}/_phone/{fresh[-1]['responseID']}/approve")
            break
        time.sleep(0.2)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert [r.status for r in served.records(ids)] == ["issued"]
