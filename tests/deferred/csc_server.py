"""A small CSC API v2 service for tests, shaped like SmartCA/MySign: keys in SoftHSM2 (real PKCS#11), asynchronous
signHash that waits for the signer's approval "on the phone" — which the test drives through /_phone/…

It speaks the protocol over real HTTP on loopback (uvicorn in a thread); it is the one fake the project allows,
standing in for a vendor cloud that cannot exist here.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from hsm_adapters.base import KeyBackend

SHA256_OID = "2.16.840.1.101.3.4.2.1"


@dataclass
class Transaction:
    credential_id: str
    hashes: list[str]
    state: str = "pending"  # pending | approved | rejected
    created: float = field(default_factory=time.monotonic)


class CscService:
    def __init__(
        self, keys: dict[str, KeyBackend], access_token: str, *, expiry: float = 60, prefix: str = "/csc/v2"
    ) -> None:
        self.prefix = prefix
        self.keys = keys
        self.access_token = access_token
        self.expiry = expiry
        self.sads: dict[str, tuple[str, list[str]]] = {}
        self.transactions: dict[str, Transaction] = {}
        self.lock = threading.Lock()
        self.app = self._make_app()

    @staticmethod
    def _error(status: int, error: str, description: str) -> JSONResponse:
        return JSONResponse({"error": error, "error_description": description}, status_code=status)

    def _make_app(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def auth(request: Request, call_next: Any) -> Any:
            if request.url.path.startswith(self.prefix) and request.headers.get("authorization") != (
                f"Bearer {self.access_token}"
            ):
                return self._error(401, "invalid_token", "The access token is not valid")
            return await call_next(request)

        @app.post(f"{self.prefix}/credentials/list")
        async def credentials_list() -> dict[str, Any]:
            return {"credentialIDs": sorted(self.keys)}

        @app.post(f"{self.prefix}/credentials/info")
        async def credentials_info(body: dict[str, Any]) -> Any:
            key = self.keys.get(body.get("credentialID", ""))
            if key is None:
                return self._error(400, "invalid_request", "Invalid parameter credentialID")
            certs = [key.certificate, *key.chain] if body.get("certificates") == "chain" else [key.certificate]
            return {
                "key": {"status": "enabled", "algo": ["1.2.840.113549.1.1.11"], "len": 2048},
                "cert": {
                    "status": "valid",
                    "certificates": [base64.b64encode(c.dump()).decode() for c in certs],
                    "subjectDN": key.certificate.subject.human_friendly,
                },
                "authMode": "explicit",
                "SCAL": "2",
                "multisign": 100,
            }

        @app.post(f"{self.prefix}/credentials/authorize")
        async def authorize(body: dict[str, Any]) -> Any:
            if body.get("credentialID") not in self.keys:
                return self._error(400, "invalid_request", "Invalid parameter credentialID")
            hashes = list(body.get("hashes") or [])
            if not hashes or body.get("numSignatures") != len(hashes):
                return self._error(400, "invalid_request", "numSignatures must match the hashes (SCAL2)")
            sad = secrets.token_urlsafe(16)
            self.sads[sad] = (body["credentialID"], hashes)
            return {"SAD": sad, "expiresIn": 300}

        @app.post(f"{self.prefix}/signatures/signHash")
        async def sign_hash(body: dict[str, Any]) -> Any:
            bound = self.sads.pop(body.get("SAD", ""), None)
            if bound is None or bound[0] != body.get("credentialID") or bound[1] != list(body.get("hashes") or []):
                return self._error(400, "invalid_request", "The SAD does not authorize these hashes")
            if body.get("hashAlgorithmOID") != SHA256_OID:
                return self._error(400, "invalid_request", "Unsupported hash algorithm")
            response_id = secrets.token_hex(8)
            with self.lock:
                self.transactions[response_id] = Transaction(bound[0], bound[1])
            if body.get("operationMode") == "A":
                return JSONResponse({"responseID": response_id}, status_code=202)
            return self._error(400, "invalid_request", "This service signs only after approval (operationMode A)")

        @app.post(f"{self.prefix}/signatures/signPolling")
        async def sign_polling(body: dict[str, Any]) -> Any:
            with self.lock:
                tx = self.transactions.get(body.get("responseID", ""))
            if tx is None:
                return self._error(400, "invalid_request", "Unknown responseID")
            if tx.state == "rejected":
                return self._error(400, "access_denied", "The user rejected the signature request")
            if tx.state == "pending":
                if time.monotonic() - tx.created > self.expiry:
                    return self._error(400, "expired_request", "The signature request expired")
                return JSONResponse({"responseID": body["responseID"]}, status_code=202)
            key = self.keys[tx.credential_id]
            signatures = [key.sign_digest(base64.b64decode(h), "sha256") for h in tx.hashes]
            return {"signatures": [base64.b64encode(s).decode() for s in signatures]}

        # -- the signer's phone, driven by the test ---------------------------------------------------------
        @app.get("/_phone/pending")
        async def phone_pending() -> list[dict[str, Any]]:
            with self.lock:
                return [
                    {"responseID": rid, "credentialID": tx.credential_id, "count": len(tx.hashes)}
                    for rid, tx in self.transactions.items()
                    if tx.state == "pending"
                ]

        @app.post("/_phone/{response_id}/{answer}")
        async def phone_answer(response_id: str, answer: str) -> dict[str, str]:
            with self.lock:
                self.transactions[response_id].state = "approved" if answer == "approve" else "rejected"
            return {"state": self.transactions[response_id].state}

        return app


class ServedCsc:
    """Runs a CscService with uvicorn on a loopback port in a background thread."""

    def __init__(self, service: CscService, port: int) -> None:
        self.service = service
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(service.app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServedCsc:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
