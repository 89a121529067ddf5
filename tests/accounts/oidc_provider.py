"""A small OpenID Connect provider for tests, served on loopback over real HTTP: discovery, JWKS, authorize (code
flow with PKCE S256, state and nonce passed back), token (client_secret_basic, one use per code, PKCE checked,
redirect_uri checked) and ID tokens signed with joserfc. A vendor's IdP cannot run here; this one speaks the same
protocol, and its knobs make it misbehave the ways a real one (or an attacker in the middle) could.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from tests.conftest import free_port


@dataclass
class LoopbackProvider:
    client_id: str = "sealtrail-test"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    algorithm: str = "RS256"
    user: dict[str, Any] = field(default_factory=lambda: {"sub": "gv-0001", "email": "gv@truong.edu.vn"})
    # knobs: what the next ID token gets wrong
    audience: str | None = None  # another client's id
    lifetime: int = 300  # negative: already expired
    forge: bool = False  # signed with a key that is not in the JWKS
    issuer: str = ""
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: int = 0

    def __post_init__(self) -> None:
        self.rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig", "alg": "RS256"})
        self.ec = ECKey.generate_key("P-256", parameters={"kid": "ec-1", "use": "sig", "alg": "ES256"})
        self.stranger = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig", "alg": "RS256"})

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience or self.client_id,
            "iat": now,
            "exp": now + self.lifetime,
            "nonce": nonce,
            "email_verified": True,
            **self.user,
        }
        key = self.ec if self.algorithm == "ES256" else (self.stranger if self.forge else self.rsa)
        return jwt.encode({"alg": self.algorithm, "kid": key.kid}, claims, key)

    def app(self) -> Starlette:
        def discovery(request: Request) -> JSONResponse:
            return JSONResponse(
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "jwks_uri": f"{self.issuer}/jwks",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                    "code_challenge_methods_supported": ["S256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                    "scopes_supported": ["openid", "email", "profile"],
                }
            )

        def jwks(request: Request) -> JSONResponse:
            return JSONResponse({"keys": [self.rsa.as_dict(private=False), self.ec.as_dict(private=False)]})

        def authorize(request: Request) -> Any:
            q = request.query_params
            if q.get("client_id") != self.client_id or q.get("response_type") != "code":
                return JSONResponse({"error": "unauthorized_client"}, status_code=400)
            if q.get("code_challenge_method") != "S256" or not q.get("code_challenge") or "openid" not in q["scope"]:
                return JSONResponse({"error": "invalid_request"}, status_code=400)
            code = secrets.token_urlsafe(24)
            self.codes[code] = {
                "redirect_uri": q["redirect_uri"],
                "challenge": q["code_challenge"],
                "nonce": q.get("nonce", ""),
                "used": False,
            }
            return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", 302)

        async def token(request: Request) -> JSONResponse:
            self.token_requests += 1
            form = await request.form()
            basic = request.headers.get("authorization", "").removeprefix("Basic ")
            expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            if basic != expected:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            grant = self.codes.get(str(form.get("code", "")))
            if grant is None or grant["used"] or form.get("grant_type") != "authorization_code":
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            grant["used"] = True  # a code works once
            if form.get("redirect_uri") != grant["redirect_uri"]:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            if create_s256_code_challenge(str(form.get("code_verifier", ""))) != grant["challenge"]:
                return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, status_code=400)
            body = {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300}
            return JSONResponse({**body, "id_token": self.id_token(grant["nonce"])})

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks", jwks),
                Route("/authorize", authorize),
                Route("/token", token, methods=["POST"]),
            ]
        )


class Served:
    """The provider on a free loopback port, in a thread."""

    def __init__(self, provider: LoopbackProvider) -> None:
        port = free_port()
        provider.issuer = f"http://127.0.0.1:{port}"
        self.provider = provider
        self.server = uvicorn.Server(uvicorn.Config(provider.app(), host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LoopbackProvider:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the test OpenID provider did not start"
            time.sleep(0.05)
        return self.provider

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
