"""Single sign-on with OpenID Connect: the authorization code flow with PKCE (S256), ``state`` and ``nonce``.

The provider is found through its discovery document (``<issuer>/.well-known/openid-configuration``, checked with
Authlib's ``OpenIDProviderMetadata``). The ID token's signature is checked against the provider's JWKS (RS256 or
ES256 only, never ``none`` or HMAC), then ``iss``, ``aud`` (and ``azp`` when several audiences), ``exp``, ``iat``
and ``nonce`` (joserfc, Authlib's JOSE library). The token is matched to a person through a link made beforehand:
either an (issuer, subject) pair an admin linked, or the verified ``email`` claim against the person's e-mail.
SSO never creates people or grants roles: an identity that is not linked is refused with a message saying so.

Staff still enter their TOTP code after SSO unless the deployment says the provider enforces MFA
(``SEALTRAIL_OIDC_MFA_ENFORCED=true``); students and parents get no second step (they have no authenticator).
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import Engine
from sqlmodel import Session, select

from accounts.models import Person, SsoIdentity
from errors import PermanentError

ALGORITHMS = ["RS256", "ES256"]
FLOW_LIFETIME = 600  # seconds between leaving for the provider and coming back
CLOCK_LEEWAY = 60


class SsoError(PermanentError):
    """The sign-in through the provider failed; the message is for the person (Vietnamese / English)."""


@dataclass(frozen=True)
class Flow:
    """What the browser carries (in a cookie) between leaving for the provider and coming back."""

    state: str
    nonce: str
    verifier: str
    started: int

    def encode(self) -> str:
        raw = json.dumps([self.state, self.nonce, self.verifier, self.started]).encode()
        return base64.urlsafe_b64encode(raw).decode()

    @classmethod
    def decode(cls, text: str) -> Flow | None:
        try:
            state, nonce, verifier, started = json.loads(base64.urlsafe_b64decode(text.encode()))
            return cls(str(state), str(nonce), str(verifier), int(started))
        except (ValueError, TypeError):
            return None


@dataclass(frozen=True)
class Identity:
    issuer: str
    subject: str
    email: str | None
    claims: dict[str, Any]


@dataclass(frozen=True)
class OidcConfig:
    """The provider's settings (SEALTRAIL_OIDC_*), as the shell reads them from the environment."""

    issuer: str | None
    client_id: str | None
    client_secret_file: Path | None
    scopes: str
    timeout: float

    @classmethod
    def from_settings(cls, settings: Any) -> OidcConfig:
        """From an object with the ``oidc_*`` fields of ``sealtrail.settings.Settings``."""
        return cls(
            settings.oidc_issuer,
            settings.oidc_client_id,
            settings.oidc_client_secret_file,
            settings.oidc_scopes,
            settings.oidc_timeout,
        )


class Provider:
    """One configured OpenID provider: discovery and keys are fetched on first use and kept (keys are fetched
    again once when a token names a key id the cached set does not have: the provider rotated its keys)."""

    def __init__(self, settings: OidcConfig | Any) -> None:
        if not isinstance(settings, OidcConfig):
            settings = OidcConfig.from_settings(settings)
        if not (settings.issuer and settings.client_id):
            raise SsoError("Chưa cấu hình đăng nhập một lần / single sign-on is not configured")
        self.issuer = settings.issuer.rstrip("/")
        self.client_id = settings.client_id
        secret_file = settings.client_secret_file
        self.client_secret = secret_file.read_text(encoding="utf-8").strip() if secret_file else None
        self.scopes = settings.scopes
        self.timeout = settings.timeout
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._lock = threading.Lock()

    def _get(self, url: str) -> dict[str, Any]:
        try:
            response = httpx.get(url, timeout=self.timeout, follow_redirects=False)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SsoError(
                f"Không liên lạc được với nhà cung cấp đăng nhập / the sign-in provider did not answer ({url})"
            ) from exc
        if not isinstance(body, dict):
            raise SsoError("Nhà cung cấp trả lời sai định dạng / the provider's answer is not a JSON object")
        return body

    @property
    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._metadata is None:
                data = self._get(f"{self.issuer}/.well-known/openid-configuration")
                try:
                    OpenIDProviderMetadata(data).validate()
                except Exception as exc:  # Authlib raises ValueError subclasses for each missing/wrong field
                    raise SsoError(f"Tài liệu khám phá không hợp lệ / bad discovery document: {exc}") from exc
                if data["issuer"].rstrip("/") != self.issuer:
                    raise SsoError("Nhà cung cấp tự xưng khác / the discovery document names another issuer")
                if "S256" not in data.get("code_challenge_methods_supported", ["S256"]):
                    raise SsoError("Nhà cung cấp không hỗ trợ PKCE S256 / the provider lacks PKCE S256")
                self._metadata = data
            return self._metadata

    def keys(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            self._keys = KeySet.import_key_set(self._get(self.metadata["jwks_uri"]))  # type: ignore[arg-type]
        return self._keys

    def start(self, redirect_uri: str) -> tuple[str, Flow]:
        """The provider's authorization URL and the flow to keep in the browser's cookie."""
        flow = Flow(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48), int(time.time()))
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.scopes,
            "state": flow.state,
            "nonce": flow.nonce,
            "code_challenge": create_s256_code_challenge(flow.verifier),
            "code_challenge_method": "S256",
        }
        return f"{self.metadata['authorization_endpoint']}?{urlencode(query)}", flow

    def finish(self, flow: Flow | None, state: str, code: str, redirect_uri: str) -> Identity:
        """Check ``state`` against the flow, trade the code for tokens (with the PKCE verifier) and check the ID
        token; the identity it proves, or SsoError."""
        if flow is None or not state or not hmac.compare_digest(flow.state, state):
            raise SsoError("Phiên đăng nhập không khớp, hãy thử lại / the sign-in state does not match; start again")
        if time.time() - flow.started > FLOW_LIFETIME:
            raise SsoError("Quá thời gian đăng nhập, hãy thử lại / the sign-in took too long; start again")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": flow.verifier,
            "client_id": self.client_id,
        }
        auth = (self.client_id, self.client_secret) if self.client_secret else None
        try:
            response = httpx.post(self.metadata["token_endpoint"], data=form, auth=auth, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise SsoError("Nhà cung cấp đăng nhập không trả lời / the provider did not answer") from exc
        if response.status_code != 200:
            raise SsoError(
                "Nhà cung cấp từ chối mã đăng nhập (đã dùng hoặc hết hạn) / the provider refused the sign-in code "
                f"(used already or expired): {response.text[:200]}"
            )
        id_token = response.json().get("id_token")
        if not isinstance(id_token, str):
            raise SsoError("Nhà cung cấp không gửi ID token / the provider sent no ID token")
        return self.check_id_token(id_token, flow.nonce)

    def check_id_token(self, id_token: str, nonce: str) -> Identity:
        try:
            try:
                token = jwt.decode(id_token, self.keys(), algorithms=ALGORITHMS)
            except JoseError:
                token = jwt.decode(id_token, self.keys(refresh=True), algorithms=ALGORITHMS)  # keys rotated?
            registry = jwt.JWTClaimsRegistry(
                leeway=CLOCK_LEEWAY,
                iss={"essential": True, "value": self.metadata["issuer"]},
                aud={"essential": True, "value": self.client_id},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            )
            registry.validate(token.claims)
        except JoseError as exc:
            raise SsoError(f"ID token không hợp lệ / the ID token is not valid ({exc.error})") from exc
        claims = dict(token.claims)
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise SsoError("ID token dành cho ứng dụng khác / the ID token was issued to another client")
        email = claims.get("email") if claims.get("email_verified") is True else None
        return Identity(self.metadata["issuer"], str(claims["sub"]), email, claims)


def person_for(engine: Engine, identity: Identity, claim: str) -> Person | None:
    """The active person linked to ``identity``: by (issuer, subject), or by verified e-mail when so configured."""
    with Session(engine) as session:
        person: Person | None = None
        if claim == "email":
            if identity.email:
                person = session.exec(select(Person).where(Person.email == identity.email.lower())).first()
        else:
            link = session.exec(
                select(SsoIdentity).where(
                    SsoIdentity.issuer == identity.issuer, SsoIdentity.subject == identity.subject
                )
            ).first()
            person = session.get(Person, link.person_id) if link is not None else None
        if person is None or not person.active:
            return None
        session.expunge(person)
        return person


def link_identity(engine: Engine, person_id: int, issuer: str, subject: str) -> None:
    """Link a provider's subject to a person (done by an admin, before the person signs in with SSO)."""
    with Session(engine) as session:
        found = session.exec(
            select(SsoIdentity).where(SsoIdentity.issuer == issuer, SsoIdentity.subject == subject)
        ).first()
        if found is not None:
            found.person_id = person_id
        else:
            found = SsoIdentity(issuer=issuer, subject=subject, person_id=person_id)
        session.add(found)
        session.commit()
