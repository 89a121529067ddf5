"""Remote signing through a Cloud Signature Consortium (CSC) API v2 service, approved by the signer on a phone.

Vietnamese remote-signing services (VNPT SmartCA, Viettel MySign and similar) keep the signer's key in the
provider's HSM; each signature request is confirmed by the signer in the provider's phone app. The calls used:

* ``credentials/list`` and ``credentials/info`` (certificate chain, key algorithm, status),
* ``credentials/authorize`` (a SAD bound to exactly the hashes to be signed),
* ``signatures/signHash`` with ``operationMode: "A"`` (asynchronous: answered 202 with a ``responseID``), then
  ``signatures/signPolling`` until the signer approves (200 with ``signatures``), rejects (``access_denied``) or
  the request expires (``expired_request``), or until our own approval timeout.

Paths are configurable (:class:`CscEndpoints`) for services that mount the API elsewhere. The access token
(OAuth2, issued by the provider to this signer) is read from a file and sent as a bearer token; it is never
logged. Only digests leave this machine.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from asn1crypto import x509

from hsm_adapters.base import KeyBackendError, SignatureMechanism, check_digest

SHA256_OID = "2.16.840.1.101.3.4.2.1"
SIGN_ALGOS = {"rsa": "1.2.840.113549.1.1.11", "ec": "1.2.840.10045.4.3.2"}  # sha256WithRSA, ecdsa-with-SHA256
WAITING_TEXT = "Đang chờ xác nhận trên điện thoại / waiting for approval on your phone"


class RemoteSigningError(KeyBackendError):
    """The remote signing service refused or failed; the message is for the signer.

    Transient when the service could not be reached or answered with a server error (5xx); permanent when it
    refused (access token, disabled key, invalid certificate) or the signer did not approve."""


class ApprovalRejected(RemoteSigningError):
    """The signer rejected the request in the phone app (permanent: asking again needs the signer)."""


class ApprovalTimeout(RemoteSigningError):
    """Nobody approved the request in time (permanent: a retry would send the signer another request unasked)."""


@dataclass(frozen=True)
class CscEndpoints:
    """Where the service's CSC methods live (relative to ``base_url``)."""

    base_url: str
    credentials_list: str = "csc/v2/credentials/list"
    credentials_info: str = "csc/v2/credentials/info"
    credentials_authorize: str = "csc/v2/credentials/authorize"
    sign_hash: str = "csc/v2/signatures/signHash"
    sign_polling: str = "csc/v2/signatures/signPolling"


@dataclass(frozen=True)
class CscCredential:
    credential_id: str
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key_algorithm: str

    @property
    def cert_sha256(self) -> str:
        return hashlib.sha256(self.certificate.dump()).hexdigest()


class CscClient:
    """A client for one signer's account at a CSC v2 service."""

    def __init__(
        self,
        endpoints: CscEndpoints,
        access_token: str,
        *,
        timeout: float = 30,
        poll_interval: float = 2,
        approval_timeout: float = 300,
        cafile: Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoints = endpoints
        self.poll_interval = poll_interval
        self.approval_timeout = approval_timeout
        self._sleep = sleep
        self.http = httpx.Client(
            base_url=endpoints.base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=timeout,
            verify=ssl.create_default_context(cafile=str(cafile)) if cafile else True,
        )

    def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        try:
            response = self.http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise RemoteSigningError(
                "Không kết nối được dịch vụ ký số từ xa",
                f"cannot reach the remote signing service: {exc}",
                transient=True,
            ) from None
        if response.status_code >= 400:
            error, description = _csc_error(response)
            if error == "access_denied":
                raise ApprovalRejected(
                    "Yêu cầu ký đã bị từ chối trên điện thoại; chưa ký văn bản nào. / The request was rejected on "
                    f"your phone; nothing was signed. ({description})"
                )
            if error == "expired_request":
                raise ApprovalTimeout(
                    "Yêu cầu ký đã hết hạn trước khi được xác nhận; chưa ký văn bản nào. / The request expired "
                    f"before it was approved; nothing was signed. ({description})"
                )
            if response.status_code == 401:
                raise RemoteSigningError(
                    "Dịch vụ ký số từ chối mã truy cập (hết hạn?) / the service refused the access token "
                    f"(expired?): {description}"
                )
            raise RemoteSigningError(
                "Dịch vụ ký số báo lỗi",
                f"the service reported an error: {error}: {description}",
                transient=response.status_code >= 500,
            )
        return response

    def list_credentials(self) -> list[str]:
        return list(self._post(self.endpoints.credentials_list, {}).json().get("credentialIDs", []))

    def info(self, credential_id: str) -> CscCredential:
        data = self._post(
            self.endpoints.credentials_info, {"credentialID": credential_id, "certificates": "chain", "certInfo": True}
        ).json()
        if data.get("key", {}).get("status", "enabled") != "enabled":
            raise RemoteSigningError(f"Khoá {credential_id} đang bị khoá / the key {credential_id} is disabled")
        if data.get("cert", {}).get("status", "valid") != "valid":
            raise RemoteSigningError(f"Chứng thư của {credential_id} không còn hiệu lực / its certificate is not valid")
        certs = [x509.Certificate.load(base64.b64decode(c)) for c in data.get("cert", {}).get("certificates", [])]
        if not certs:
            raise RemoteSigningError(f"Dịch vụ không trả chứng thư cho {credential_id} / no certificate returned")
        return CscCredential(credential_id, certs[0], tuple(certs[1:]), certs[0].public_key.algorithm)

    def sign_digests(
        self, credential: CscCredential, digests: Sequence[bytes], on_wait: Callable[[float], None] = lambda _s: None
    ) -> list[bytes]:
        """Sign all ``digests`` (SHA-256) in one request the signer approves once; signatures in the same order."""
        for digest in digests:
            check_digest(digest, "sha256")
        hashes = [base64.b64encode(d).decode() for d in digests]
        sad = self._post(
            self.endpoints.credentials_authorize,
            {
                "credentialID": credential.credential_id,
                "numSignatures": len(hashes),
                "hashes": hashes,
                "hashAlgorithmOID": SHA256_OID,
            },
        ).json()["SAD"]
        response = self._post(
            self.endpoints.sign_hash,
            {
                "credentialID": credential.credential_id,
                "SAD": sad,
                "hashes": hashes,
                "hashAlgorithmOID": SHA256_OID,
                "signAlgo": SIGN_ALGOS.get(credential.key_algorithm, SIGN_ALGOS["rsa"]),
                "operationMode": "A",
            },
        )
        started = time.monotonic()
        while response.status_code == 202:
            waited = time.monotonic() - started
            if waited >= self.approval_timeout:
                raise ApprovalTimeout(
                    f"Chưa được xác nhận sau {int(self.approval_timeout)} giây; chưa ký văn bản nào. Chạy lại khi "
                    f"sẵn sàng. / Not approved within {int(self.approval_timeout)} s; nothing was signed. Run "
                    "again when ready."
                )
            on_wait(waited)
            self._sleep(self.poll_interval)
            response_id = response.json()["responseID"]
            response = self._post(self.endpoints.sign_polling, {"responseID": response_id})
        signatures = [base64.b64decode(s) for s in response.json().get("signatures", [])]
        if len(signatures) != len(digests):
            raise RemoteSigningError(
                f"Dịch vụ trả {len(signatures)} chữ ký cho {len(digests)} mã băm / the service returned "
                f"{len(signatures)} signatures for {len(digests)} digests"
            )
        return signatures


def _csc_error(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
        return str(body.get("error", response.status_code)), str(body.get("error_description", ""))
    except ValueError:
        return str(response.status_code), response.text[:200]


class RemoteKeyBackend:
    """The KeyBackend view of a CSC credential: one approval per digest (batches use ``CscClient.sign_digests``)."""

    def __init__(self, client: CscClient, credential_id: str) -> None:
        self.client = client
        self.credential = client.info(credential_id)

    @property
    def label(self) -> str:
        return f"remote credential {self.credential.credential_id}"

    @property
    def certificate(self) -> x509.Certificate:
        return self.credential.certificate

    @property
    def chain(self) -> list[x509.Certificate]:
        return list(self.credential.chain)

    @property
    def mechanism(self) -> SignatureMechanism:
        return SignatureMechanism.RSA_PKCS1V15 if self.credential.key_algorithm == "rsa" else SignatureMechanism.ECDSA

    def sign_digest(self, digest: bytes, digest_algorithm: str) -> bytes:
        check_digest(digest, digest_algorithm)
        if digest_algorithm != "sha256":
            raise RemoteSigningError("Only SHA-256 digests are sent to the remote service")
        return self.client.sign_digests(self.credential, [digest])[0]
