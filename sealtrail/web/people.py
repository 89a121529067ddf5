"""The school admin's people pages (add a person with roles here, reset a password, re-enrol the authenticator,
deactivate, link parents to pupils), a verifier organisation's look-up keys, and the change-password form.

Every route takes ``require(permission)`` on the organisation in the URL; credentials made here are shown once, on
the answer page, and never stored as given. Resets, re-enrolments, role and key changes are audited (who, when,
from which address) and also entered in the public log (``LEDGER_ACTIONS``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

from accounts import people, policy, service
from accounts.models import Person, ShareLink, utcnow
from accounts.permissions import ROLE_TITLES, VERIFIER_KINDS, VERIFY_SCOPE, Actor
from sealtrail.web.deps import client_ip, context, require, require_signed_in
from sealtrail.web.pages import page, set_session_cookie
from workflow.states import WorkItem

Text = Annotated[str, Form(max_length=255)]
Name = Annotated[str, Form(max_length=64)]


def _members_url(school: str, message: str) -> str:
    from urllib.parse import quote

    return f"/can-bo/{school}/thanh-vien?tb={quote(message[:300])}"


def _credentials_page(request: Request, actor: Actor, school: str, creds: people.Credentials, what: str) -> Response:
    return page("credentials.html.j2", request, actor, school=school, creds=creds, what=what)


def make_people_router() -> APIRouter:
    """The people pages, one router per area."""
    router = APIRouter(include_in_schema=False)
    for part in (make_members_router, make_lookup_keys_router, make_password_router):
        router.include_router(part())
    return router


def make_members_router() -> APIRouter:
    """A school admin's people page: add, reset, re-enrol, deactivate, link parents."""
    router = APIRouter(include_in_schema=False)

    @router.get("/can-bo/{school}/thanh-vien", response_class=HTMLResponse)
    def members_page(
        request: Request, school: str, actor: Annotated[Actor, Depends(require("members:manage"))]
    ) -> HTMLResponse:
        return page(
            "members.html.j2",
            request,
            actor,
            school=school,
            people=people.people_of(context(request).engine, school),
            role_titles=ROLE_TITLES,
            flash=request.query_params.get("tb", "")[:300],
        )

    @router.post("/can-bo/{school}/thanh-vien/moi", response_model=None)
    def add_person(
        request: Request,
        school: str,
        actor: Annotated[Actor, Depends(require("members:manage"))],
        username: Name = "",
        full_name: Text = "",
        role: Annotated[str, Form(max_length=32)] = "",
        personal_id: Annotated[str, Form(max_length=12)] = "",
        email: Text = "",
    ) -> Response:
        ctx = context(request)
        try:
            creds = people.add_person(
                ctx.engine, school, username, full_name, role, personal_id=personal_id, email=email
            )
        except service.AccountError as exc:
            raise HTTPException(422, str(exc)) from None
        ctx.record(request, actor, "person.create", org=school, target=creds.username)
        ctx.record(request, actor, "role.grant", org=school, target=creds.username, detail={"role": role})
        return _credentials_page(request, actor, school, creds, "new")

    def _recover(request: Request, school: str, username: str, actor: Actor, what: str) -> Response:
        """Reset the password (``password``) or re-enrol the authenticator (``totp``); audited either way."""
        ctx = context(request)
        action = f"{what}.reset"
        with Session(ctx.engine) as session:  # a signer's credentials: a second admin must confirm (policy)
            try:
                people.staff_here(session, school, username, "Không có mật khẩu hay mã xác thực / no credentials")
            except service.AccountError as exc:
                ctx.record(request, actor, action, org=school, target=username[:64], outcome="refused")
                raise HTTPException(422, str(exc)) from None
            signer = policy.is_signer(session, username)
            confirmed = signer and policy.second_admin_confirms(session, school, username, what, actor.name)
        if signer and not confirmed:
            ctx.record(request, actor, f"{what}.request", org=school, target=username[:64], outcome="pending")
            note = (
                f"Đã ghi yêu cầu đặt lại cho {username}; cần một quản trị khác của đơn vị xác nhận trong 24 giờ / "
                "a second admin must confirm the reset of a signer's credentials within 24 hours"
            )
            return RedirectResponse(_members_url(school, note), status_code=303)
        try:
            reset = people.reset_password if what == "password" else people.reenrol_totp
            creds = reset(ctx.engine, school, username)
        except service.AccountError as exc:
            ctx.record(request, actor, action, org=school, target=username, outcome="refused")
            raise HTTPException(422, str(exc)) from None
        ctx.record(request, actor, action, org=school, target=username)
        return _credentials_page(request, actor, school, creds, what)

    @router.post("/can-bo/{school}/thanh-vien/{username}/dat-lai-mat-khau", response_model=None)
    def reset_password(
        request: Request, school: str, username: str, actor: Annotated[Actor, Depends(require("members:manage"))]
    ) -> Response:
        return _recover(request, school, username, actor, "password")

    @router.post("/can-bo/{school}/thanh-vien/{username}/xac-thuc-lai", response_model=None)
    def reenrol_totp(
        request: Request, school: str, username: str, actor: Annotated[Actor, Depends(require("members:manage"))]
    ) -> Response:
        return _recover(request, school, username, actor, "totp")

    @router.post("/can-bo/{school}/thanh-vien/{username}/ngung")
    def deactivate(
        request: Request, school: str, username: str, actor: Annotated[Actor, Depends(require("members:manage"))]
    ) -> Response:
        ctx = context(request)
        if username == actor.name:
            raise HTTPException(422, "Không tự ngừng tài khoản của mình / you cannot deactivate yourself")
        try:
            off = people.deactivate(ctx.engine, school, username)
        except service.AccountError as exc:
            raise HTTPException(422, str(exc)) from None
        ctx.record(request, actor, "role.revoke", org=school, target=username, detail={"role": "*", "off": off})
        return RedirectResponse(_members_url(school, f"Đã ngừng {username} ở {school}"), status_code=303)

    @router.post("/can-bo/{school}/phu-huynh")
    def link_parent(
        request: Request,
        school: str,
        actor: Annotated[Actor, Depends(require("members:manage"))],
        parent: Name = "",
        student: Name = "",
        action: Annotated[str, Form(max_length=8)] = "link",
    ) -> Response:
        ctx = context(request)
        try:
            if action == "unlink":
                people.unlink_parent(ctx.engine, school, parent, student)
            else:
                people.link_parent(ctx.engine, school, parent, student, actor.name)
        except service.AccountError as exc:
            raise HTTPException(422, str(exc)) from None
        verb = "unlink" if action == "unlink" else "link"
        ctx.record(request, actor, f"parent.{verb}", org=school, target=parent, detail={"student": student})
        return RedirectResponse(_members_url(school, f"Đã cập nhật phụ huynh {parent}"), status_code=303)

    return router


def make_lookup_keys_router() -> APIRouter:
    """A verifier organisation's look-up keys."""
    router = APIRouter(include_in_schema=False)

    @router.get("/can-bo/{school}/khoa-tra-cuu", response_class=HTMLResponse)
    def keys_page(
        request: Request, school: str, actor: Annotated[Actor, Depends(require("verify:read"))]
    ) -> HTMLResponse:
        from sealtrail.web.api import list_api_keys

        ctx = context(request)
        return page(
            "keys.html.j2",
            request,
            actor,
            school=school,
            keys=list_api_keys(ctx.dep, school, VERIFY_SCOPE),
            can_manage=actor.can("verify:keys", school),
            new_key=None,
        )

    @router.post("/can-bo/{school}/khoa-tra-cuu", response_class=HTMLResponse)
    def create_key(
        request: Request,
        school: str,
        actor: Annotated[Actor, Depends(require("verify:keys"))],
        label: Annotated[str, Form(max_length=120)] = "",
    ) -> HTMLResponse:
        from sealtrail.web.api import create_api_key, list_api_keys

        ctx = context(request)
        org = service.org_by_code(ctx.engine, school)
        if org is None or org.kind not in VERIFIER_KINDS:
            raise HTTPException(
                422, "Chỉ trường đại học hoặc đơn vị xác minh có khoá tra cứu / only verifier organisations get keys"
            )
        key = create_api_key(ctx.dep, school, [VERIFY_SCOPE], label=label)
        ctx.record(request, actor, "apikey.create", org=school, detail={"scopes": [VERIFY_SCOPE], "label": label})
        return page(
            "keys.html.j2",
            request,
            actor,
            school=school,
            keys=list_api_keys(ctx.dep, school, VERIFY_SCOPE),
            can_manage=True,
            new_key=key,
        )

    @router.post("/can-bo/{school}/khoa-tra-cuu/{key_id}/thu-hoi")
    def revoke_key(
        request: Request, school: str, key_id: str, actor: Annotated[Actor, Depends(require("verify:keys"))]
    ) -> Response:
        from sealtrail.web.api import revoke_api_key

        ctx = context(request)
        if not revoke_api_key(ctx.dep, school, key_id, VERIFY_SCOPE):  # only look-up keys here
            raise HTTPException(404, "Không có khoá này / no such key")
        ctx.record(request, actor, "apikey.revoke", org=school, target=key_id)
        return RedirectResponse(f"/can-bo/{school}/khoa-tra-cuu", status_code=303)

    def _school_links(ctx: Any, school: str) -> list[tuple[ShareLink, str]]:
        with Session(ctx.engine) as session:
            rows = session.exec(
                select(ShareLink, Person.username)
                .join(WorkItem, WorkItem.doc_id == ShareLink.doc_id)  # type: ignore[arg-type]
                .join(Person, Person.id == ShareLink.person_id)  # type: ignore[arg-type]
                .where(WorkItem.school_code == school)
                .order_by(col(ShareLink.created_at))
            ).all()
            for link, _maker in rows:
                session.expunge(link)
        return [(link, maker) for link, maker in rows]

    @router.get("/can-bo/{school}/chia-se", response_class=HTMLResponse)
    def school_shares(
        request: Request, school: str, actor: Annotated[Actor, Depends(require("members:manage"))]
    ) -> HTMLResponse:
        """Every share link to this school's documents (the school sees and may revoke what pupils share)."""
        ctx = context(request)
        flash = request.query_params.get("tb", "")[:200]
        return page(
            "school_shares.html.j2", request, actor, school=school, links=_school_links(ctx, school), flash=flash
        )

    @router.post("/can-bo/{school}/chia-se/{share_id}/thu-hoi")
    def school_revoke_share(
        request: Request, school: str, share_id: str, actor: Annotated[Actor, Depends(require("members:manage"))]
    ) -> Response:
        ctx = context(request)
        if share_id not in {link.id for link, _maker in _school_links(ctx, school)}:
            raise HTTPException(404, "Không có liên kết này / no such link")
        with Session(ctx.engine) as session:
            link = session.get(ShareLink, share_id)
            assert link is not None
            link.revoked_at = utcnow()
            session.add(link)
            session.commit()
        ctx.record(request, actor, "share.revoke", org=school, target=share_id[:16])
        return RedirectResponse(f"/can-bo/{school}/chia-se?tb=Đã thu hồi liên kết", status_code=303)

    return router


def make_password_router() -> APIRouter:
    """Changing one's own password."""
    router = APIRouter(include_in_schema=False)

    @router.get("/doi-mat-khau", response_class=HTMLResponse)
    def password_page(request: Request, actor: Annotated[Actor, Depends(require_signed_in())]) -> HTMLResponse:
        return page("password.html.j2", request, actor, forced=actor.kind == service.PASSWORD_CHANGE)

    @router.post("/doi-mat-khau", response_model=None)
    def change_password(
        request: Request,
        actor: Annotated[Actor, Depends(require_signed_in())],
        current: Annotated[str, Form(max_length=256)] = "",
        new: Annotated[str, Form(max_length=256)] = "",
        repeat: Annotated[str, Form(max_length=256)] = "",
    ) -> Response:
        ctx = context(request)
        forced = actor.kind == service.PASSWORD_CHANGE
        if actor.kind not in ("staff", service.PASSWORD_CHANGE) or actor.person_id is None:
            raise HTTPException(403, "Tài khoản này không có mật khẩu / this account has no password")
        try:
            if new != repeat:
                raise service.AccountError("Hai lần nhập mật khẩu mới không khớp / the new passwords differ")
            people.change_password(ctx.engine, actor.person_id, current, new)
        except service.AccountError as exc:
            ctx.record(request, actor, "password.change", outcome="refused")
            return page("password.html.j2", request, actor, status=422, forced=forced, flash=str(exc), flash_error=True)
        ctx.record(request, actor, "password.change")
        person = service.person_by_username(ctx.engine, actor.name)
        assert person is not None
        token = service.start_session(
            ctx.engine, person, "staff", client_ip(request), replaces=request.cookies.get(ctx.cookie_name)
        )
        response = RedirectResponse("/can-bo", status_code=303)
        set_session_cookie(ctx, response, token)
        return response

    return router
