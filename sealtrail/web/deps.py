"""The request side of accounts: who is calling (session cookie or API key), ``require(permission, school)``,
CSRF, sign-in rate limits, and the audit trail (security-relevant events also go into the public log)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, Request

from accounts import service
from accounts.models import AuditEvent
from accounts.permissions import PERMISSIONS, Actor
from sealtrail.deployment import Deployment
from verifier.ratelimit import RateLimiter
from workflow.audit import LEDGER_ACTIONS as LEDGER_ACTIONS
from workflow.audit import AuditTrail

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class AccountsContext(AuditTrail):
    """What the account routers share: the deployment, cookie settings, limits, and the audit trail (whose
    ``record`` here also takes the request itself, to note the caller's address)."""

    def __init__(self, dep: Deployment) -> None:
        super().__init__(dep)
        self.secure_cookie = dep.settings.session_cookie_secure
        self.cookie_name = "__Host-st_session" if self.secure_cookie else "st_session"
        self.login_limit = RateLimiter(10 / 60, burst=10)  # per client address, on top of per-account lockout
        self.sso: Any = None  # the OpenID provider (accounts.sso.Provider), made on first use

    def record(  # type: ignore[override]
        self,
        request: Request | str | None,
        actor: Actor | str,
        action: str,
        *,
        org: str | None = None,
        target: str = "",
        outcome: str = "ok",
        detail: dict[str, Any] | None = None,
    ) -> AuditEvent:
        client = request if isinstance(request, str) or request is None else client_ip(request)
        return super().record(client, actor, action, org=org, target=target, outcome=outcome, detail=detail)


def client_ip(request: Request | None) -> str:
    if request is None or request.client is None:
        return ""
    return request.client.host


def context(request: Request) -> AccountsContext:
    ctx = getattr(request.app.state, "accounts", None)
    if ctx is None:
        raise RuntimeError("accounts are not wired into this app (sealtrail.web.staff.install)")
    return ctx  # type: ignore[no-any-return]


def current_actor(request: Request) -> Actor | None:
    """The caller: an API key (Authorization: Bearer) or a session cookie; None when neither is valid."""
    ctx = context(request)
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        from sealtrail.web.api import api_key_actor

        return api_key_actor(ctx.dep, key.strip())
    token = request.cookies.get(ctx.cookie_name)
    if token:
        return service.actor_from_session(ctx.engine, token)
    return None


async def check_csrf(request: Request, actor: Actor) -> None:
    """Cookie-authenticated requests that change anything must echo the session's CSRF token."""
    if request.method in SAFE_METHODS or actor.kind == "api_key":
        return
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        sent = str((await request.form()).get("csrf_token", ""))
    if not sent or not actor.csrf_token or not hmac.compare_digest(sent, actor.csrf_token):
        context(request).record(request, actor, "csrf.refused", outcome="refused", target=request.url.path)
        raise HTTPException(403, "Phiên làm việc không hợp lệ, hãy tải lại trang / CSRF token missing or wrong")


def _unauthenticated(request: Request) -> HTTPException:
    if request.url.path.startswith("/api/"):
        return HTTPException(401, "Cần đăng nhập hoặc khoá API / sign in or send an API key")
    login = "/hoc-sinh/dang-nhap" if request.url.path.startswith("/hoc-sinh") else "/dang-nhap"
    return HTTPException(303, "Cần đăng nhập / sign in first", headers={"Location": login})


def require(permission: str, school: str = "school") -> Callable[..., Any]:
    """A FastAPI dependency: the caller must hold ``permission`` in the organisation named by the path parameter
    ``school``. Returns the Actor. Refusals are audited. The dependency carries the rule (for the route table test).
    """
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    async def dependency(request: Request) -> Actor:
        actor = current_actor(request)
        if actor is None:
            raise _unauthenticated(request)
        org = request.path_params.get(school, "")
        if not actor.can(permission, org):
            context(request).record(
                request,
                actor,
                "access.refused",
                org=org or None,
                outcome="refused",
                target=request.url.path,
                detail={"permission": permission},
            )
            raise HTTPException(
                403, f"Bạn không có quyền '{permission}' ở đơn vị {org} / you lack {permission} at {org}"
            )
        await check_csrf(request, actor)
        return actor

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


def require_student() -> Callable[..., Any]:
    """A FastAPI dependency: a student (or parent) signed in with a school's one-time code."""

    async def dependency(request: Request) -> Actor:
        actor = current_actor(request)
        if actor is None or actor.kind != "student":
            if actor is not None:
                context(request).record(request, actor, "access.refused", outcome="refused", target=request.url.path)
                raise HTTPException(403, "Chỉ dành cho học sinh / students only")
            raise _unauthenticated(request)
        await check_csrf(request, actor)
        return actor

    dependency.permission = "self"  # type: ignore[attr-defined]
    return dependency


def require_signed_in() -> Callable[..., Any]:
    """A FastAPI dependency: any signed-in person (their own home page, signing out)."""

    async def dependency(request: Request) -> Actor:
        actor = current_actor(request)
        if actor is None or actor.kind == "api_key":
            raise _unauthenticated(request)
        await check_csrf(request, actor)
        return actor

    dependency.permission = "signed_in"  # type: ignore[attr-defined]
    return dependency
