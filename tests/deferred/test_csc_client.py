"""The CSC v2 client against the loopback CSC service (SoftHSM2 keys): signatures verify, errors are clear, and a
service mounted under other paths is reached through the configurable endpoints."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, utils

from hsm_adapters.base import KeyBackend
from hsm_adapters.pkcs11 import Pkcs11KeyBackend
from hsm_adapters.remote import ApprovalRejected, CscClient, CscEndpoints, RemoteKeyBackend, RemoteSigningError
from sealtrail.devpki import DevPki
from tests.conftest import SoftHsm, free_port
from tests.deferred.csc_server import CscService, ServedCsc

TOKEN = "another-test-access-token"
PATHS = {
    "credentials_list": "api/v2/credentials/list",
    "credentials_info": "api/v2/credentials/info",
    "credentials_authorize": "api/v2/credentials/authorize",
    "sign_hash": "api/v2/signatures/signHash",
    "sign_polling": "api/v2/signatures/signPolling",
}


@pytest.fixture(scope="module")
def csc(softhsm: SoftHsm) -> Iterator[ServedCsc]:
    key = Pkcs11KeyBackend(softhsm.config("sealtrail-school", "principal"))
    service = CscService({"ca-nhan-7": key}, TOKEN, expiry=30, prefix="/api/v2")  # mounted elsewhere (MySign-like)
    with ServedCsc(service, free_port()) as served:
        yield served
    key.close()


def _answer_phone(url: str, answer: str) -> threading.Thread:
    def run() -> None:
        for _ in range(300):
            pending = httpx.get(f"{url}/_phone/pending").json()
            if pending:
                httpx.post(f"{url}/_phone/{pending[-1]['responseID']}/{answer}")
                return
            time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_batch_signatures_verify_with_the_credentials_certificate(csc: ServedCsc, dev_pki: DevPki) -> None:
    client = CscClient(CscEndpoints(csc.url, **PATHS), TOKEN, poll_interval=0.1, approval_timeout=30)
    assert client.list_credentials() == ["ca-nhan-7"]
    credential = client.info("ca-nhan-7")
    assert credential.certificate.dump() == dev_pki.cert("principal").dump()
    assert [c.dump() for c in credential.chain] == [dev_pki.issuing_ca.dump()]
    digests = [hashlib.sha256(f"văn bản {i}".encode()).digest() for i in range(3)]
    waits: list[float] = []
    _answer_phone(csc.url, "approve")
    signatures = client.sign_digests(credential, digests, on_wait=waits.append)
    assert waits  # the client polled while the phone had not answered yet
    public = cx509.load_der_x509_certificate(credential.certificate.dump()).public_key()
    for digest, signature in zip(digests, signatures, strict=True):
        public.verify(signature, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))  # type: ignore[union-attr]

    backend = RemoteKeyBackend(client, "ca-nhan-7")
    assert isinstance(backend, KeyBackend)
    _answer_phone(csc.url, "reject")
    with pytest.raises(ApprovalRejected, match="từ chối"):
        backend.sign_digest(digests[0], "sha256")


def test_wrong_token_and_default_paths_give_clear_errors(csc: ServedCsc) -> None:
    bad = CscClient(CscEndpoints(csc.url, **PATHS), "not-the-token")
    with pytest.raises(RemoteSigningError, match="access token"):
        bad.list_credentials()
    elsewhere = CscClient(CscEndpoints(csc.url), TOKEN)  # the default /csc/v2/ paths are not served here
    with pytest.raises(RemoteSigningError, match="404"):
        elsewhere.list_credentials()
    with pytest.raises(RemoteSigningError, match="credentialID"):
        CscClient(CscEndpoints(csc.url, **PATHS), TOKEN).info("no-such-credential")
