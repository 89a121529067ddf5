"""Single sign-on pages: leave for the provider, come back (``/dang-nhap/sso/ve``), the TOTP step that follows
for staff (unless the provider enforces MFA), and the admin's form to link a provider subject to a person."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from accounts import service, sso
from accounts.models import Person
from accounts.permissions import Actor
from sealtrail.web.deps import AccountsContext, client_ip, context, require, require_signed_in
from sealtrail.web.pages import page, set_session_cookie

FLOW_COOKIE = "st_sso_flow"
FLOW_PATH = "/dang-nhap/sso"


def _provider(ctx: AccountsContext) -> sso.Provider:
    if ctx.sso is None:
        try:
            ctx.sso = sso.Provider(sso.OidcConfig.from_settings(ctx.dep.settings))
        except sso.SsoError as exc:
            raise HTTPException(404, str(exc)) from None
    return ctx.sso  # type: ignore[no-any-return]


def _redirect_uri(ctx: AccountsContext, request: Request) -> str:
    return ctx.dep.settings.oidc_redirect_uri or str(request.url_for("sso_callback"))


def _signed_in(ctx: AccountsContext, request: Request, person: Person, kind: str, to: str) -> Response:
    token = service.start_session(
        ctx.engine, person, kind, client_ip(request), replaces=request.cookies.get(ctx.cookie_name)
    )
    response = RedirectResponse(to, status_code=303)
    set_session_cookie(ctx, response, token)
    response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH, secure=ctx.secure_cookie, httponly=True, samesite="lax")
    return response


def make_sso_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/dang-nhap/sso")
    def start(request: Request) -> Response:
        ctx = context(request)
        ctx.login_limit(request)
        provider = _provider(ctx)
        try:
            url, flow = provider.start(_redirect_uri(ctx, request))
        except sso.SsoError as exc:
            return page("login.html.j2", request, None, status=502, flash=str(exc), flash_error=True)
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(  # Lax: it must come back with the provider's top-level redirect
            FLOW_COOKIE,
            flow.encode(),
            max_age=sso.FLOW_LIFETIME,
            path=FLOW_PATH,
            secure=ctx.secure_cookie,
            httponly=True,
            samesite="lax",
        )
        return response

    @router.get("/dang-nhap/sso/ve", name="sso_callback", response_model=None)
    def callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
        ctx = context(request)
        ctx.login_limit(request)
        provider = _provider(ctx)
        flow = sso.Flow.decode(request.cookies.get(FLOW_COOKIE, ""))
        try:
            if error:
                raise sso.SsoError(f"Nhà cung cấp báo lỗi / the provider answered: {error[:100]}")
            identity = provider.finish(flow, state, code, _redirect_uri(ctx, request))
        except sso.SsoError as exc:
            ctx.record(request, "-", "sso.failed", outcome="refused", detail={"reason": str(exc)[:200]})
            response = page("login.html.j2", request, None, status=401, flash=str(exc), flash_error=True)
            response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH, secure=ctx.secure_cookie, httponly=True)
            return response
        person = sso.person_for(ctx.engine, identity, ctx.dep.settings.oidc_claim)
        if person is None:
            ctx.record(request, "-", "sso.unlinked", outcome="refused", target=identity.subject[:128])
            message = (
                "Tài khoản đăng nhập một lần này chưa được liên kết với người dùng nào của SealTrail; hãy nhờ quản "
                "trị của trường liên kết / this single sign-on identity is not linked to any SealTrail account; "
                "ask your school admin to link it"
            )
            response = page("login.html.j2", request, None, status=403, flash=message, flash_error=True)
            response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH, secure=ctx.secure_cookie, httponly=True)
            return response
        assert person.id is not None
        staff = bool(service.actor_for(ctx.engine, person, "staff").roles)
        ctx.record(request, person.username, "sso.ok", detail={"issuer": identity.issuer})
        if not staff:
            return _signed_in(ctx, request, person, "student", "/hoc-sinh")
        if ctx.dep.settings.oidc_mfa_enforced:
            return _signed_in(ctx, request, person, "staff", "/can-bo")
        return _signed_in(ctx, request, person, service.SSO_SECOND_STEP, "/dang-nhap/sso/ma-xac-thuc")

    @router.get("/dang-nhap/sso/ma-xac-thuc", response_class=HTMLResponse)
    def totp_page(request: Request, actor: Annotated[Actor, Depends(require_signed_in())]) -> HTMLResponse:
        return page("sso_totp.html.j2", request, actor)

    @router.post("/dang-nhap/sso/ma-xac-thuc", response_model=None)
    def totp_step(
        request: Request,
        actor: Annotated[Actor, Depends(require_signed_in())],
        totp: Annotated[str, Form(max_length=12)] = "",
    ) -> Response:
        ctx = context(request)
        if actor.kind != service.SSO_SECOND_STEP or actor.person_id is None:
            raise HTTPException(403, "Không có bước xác thực nào đang chờ / no sign-in step is waiting")
        try:
            ok = service.check_totp(ctx.engine, actor.person_id, totp)
        except service.AccountError as exc:
            return page("sso_totp.html.j2", request, actor, status=401, flash=str(exc), flash_error=True)
        if not ok:
            ctx.record(request, actor, "login.failed", outcome="refused", detail={"step": "sso_totp"})
            wrong = "Mã xác thực không đúng / wrong authenticator code"
            return page("sso_totp.html.j2", request, actor, status=401, flash=wrong, flash_error=True)
        person = service.person_by_username(ctx.engine, actor.name)
        assert person is not None
        ctx.record(request, actor, "login.ok", detail={"via": "sso"})
        return _signed_in(ctx, request, person, "staff", "/can-bo")

    @router.post("/can-bo/{school}/thanh-vien/{username}/sso")
    def link(
        request: Request,
        school: str,
        username: str,
        actor: Annotated[Actor, Depends(require("members:manage"))],
        subject: Annotated[str, Form(max_length=255)] = "",
    ) -> Response:
        ctx = context(request)
        issuer = (ctx.dep.settings.oidc_issuer or "").rstrip("/")
        person = service.person_by_username(ctx.engine, username)
        members = {u for u, _n, _r in service.members(ctx.engine, school)}
        if not issuer or not subject.strip() or person is None or person.id is None or username not in members:
            raise HTTPException(422, "Cần người của đơn vị này và mã định danh SSO / a member here and a subject")
        if set(service.actor_for(ctx.engine, person, "staff").roles) - {school}:
            raise HTTPException(422, "Người này còn làm việc ở đơn vị khác / this person also works elsewhere")
        sso.link_identity(ctx.engine, person.id, issuer, subject.strip())
        ctx.record(request, actor, "key.change", org=school, target=username, detail={"sso_subject": subject[:64]})
        return RedirectResponse(f"/can-bo/{school}/thanh-vien", status_code=303)

    return router
