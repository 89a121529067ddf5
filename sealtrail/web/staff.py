"""Staff pages and API: sign-in, the principal's queue, batch approval and signing, revocation, members, audit.

Every route that is not a sign-in form takes ``require(permission)`` (or the student/sign-in dependency): the
permission check happens on the server, in one place, for pages and JSON alike. Pages are server-rendered and
need no JavaScript.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import Session, select

from accounts import policy, service
from accounts.models import Organisation
from accounts.permissions import ROLES, Actor
from jobs import approval
from registry.records import DocumentRecord
from schemas.csvcells import safe_writer
from sealtrail.deployment import Deployment
from sealtrail.web.deps import AccountsContext, client_ip, context, require, require_signed_in
from sealtrail.web.pages import ItemIds, page, set_session_cookie
from sealtrail.web.signin_guard import guarded, locked_message, refuse_cross_site
from workflow import operations as wf
from workflow.states import STATE_TEXT, WorkflowError


def make_staff_web_router() -> APIRouter:
    """The staff pages, one router per area."""
    router = APIRouter(include_in_schema=False)
    for part in (make_signin_router, make_queue_router, make_batch_pages_router, make_admin_router):
        router.include_router(part())
    return router


def make_signin_router() -> APIRouter:
    """Sign-in, sign-out and the staff home page."""
    router = APIRouter(include_in_schema=False)

    @router.get("/dang-nhap", response_class=HTMLResponse)
    def login_page(request: Request) -> HTMLResponse:
        return page("login.html.j2", request, None)

    @router.post("/dang-nhap", response_class=HTMLResponse, response_model=None)
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=256)],
        totp: Annotated[str, Form(max_length=12)],
    ) -> Response:
        ctx = context(request)
        refuse_cross_site(request)
        found: list[Any] = []
        failure: list[str] = []

        def attempt() -> bool:
            try:
                found.append(service.check_staff_login(ctx.engine, username.strip(), password, totp))
            except service.AccountError as exc:
                failure.append(str(exc))
            return bool(found)

        wait = guarded(request.app.state.public_gate, "staff", username, client_ip(request), attempt)
        if wait:
            ctx.record(request, username.strip()[:64] or "-", "login.throttled", outcome="refused")
            html = page("login.html.j2", request, None, status=429, flash=locked_message(wait), flash_error=True)
            html.headers["Retry-After"] = str(wait)
            return html
        if not found:
            ctx.record(request, username.strip()[:64] or "-", "login.failed", outcome="refused")
            return page("login.html.j2", request, None, status=401, flash=failure[0], flash_error=True)
        person = found[0]
        kind = service.PASSWORD_CHANGE if person.must_change_password else "staff"
        token = service.start_session(
            ctx.engine, person, kind, client_ip(request), replaces=request.cookies.get(ctx.cookie_name)
        )
        ctx.record(request, person.username, "login.ok")
        response = RedirectResponse("/doi-mat-khau" if person.must_change_password else "/can-bo", status_code=303)
        set_session_cookie(ctx, response, token)
        return response

    @router.post("/dang-xuat")
    def logout(request: Request, actor: Annotated[Actor, Depends(require_signed_in())]) -> Response:
        ctx = context(request)
        if actor.session_id:
            service.end_session(ctx.engine, actor.session_id)
        ctx.record(request, actor, "logout")
        target = "/hoc-sinh/dang-nhap" if actor.kind == "student" else "/dang-nhap"
        response = RedirectResponse(target, status_code=303)
        response.delete_cookie(ctx.cookie_name, path="/", secure=ctx.secure_cookie, httponly=True, samesite="strict")
        return response

    @router.get("/can-bo", response_class=HTMLResponse, response_model=None)
    def home(request: Request, actor: Annotated[Actor, Depends(require_signed_in())]) -> Response:
        if actor.kind == "student":
            return RedirectResponse("/hoc-sinh", status_code=303)
        if actor.kind == service.PASSWORD_CHANGE:
            return RedirectResponse("/doi-mat-khau", status_code=303)
        if actor.kind == service.SSO_SECOND_STEP:
            return RedirectResponse("/dang-nhap/sso/ma-xac-thuc", status_code=303)
        orgs = sorted((org, sorted(roles)) for org, roles in actor.roles.items())
        inherited = sorted((org, sorted(r)) for org, r in actor.inherited.items() if org not in actor.roles)
        return page("home.html.j2", request, actor, orgs=orgs, inherited=inherited)

    return router


def make_queue_router() -> APIRouter:
    """The principal's queue and a work item's page; check, teacher-sign, return and approve items."""
    router = APIRouter(include_in_schema=False)

    @router.get("/can-bo/{school}/hang-doi", response_class=HTMLResponse)
    def queue_page(
        request: Request,
        school: str,
        actor: Annotated[Actor, Depends(require("workflow:read"))],
        lop: str = "",
        nam: str = "",
    ) -> HTMLResponse:
        ctx = context(request)
        state = request.query_params.get("trang-thai", "")
        items = wf.queue(ctx, school, lop, nam, state)
        classes, years = wf.filters(ctx, school)
        changed = {i.id: len(wf.diff(ctx, i)) for i in items}
        flash = request.query_params.get("tb", "")
        return page(
            "queue.html.j2",
            request,
            actor,
            school=school,
            items=items,
            classes=classes,
            years=years,
            lop=lop,
            nam=nam,
            trang_thai=state,
            states=[(s.value, t) for s, t in STATE_TEXT.items()],
            changed=changed,
            can_approve=actor.can("workflow:approve", school),
            can_check=actor.can("workflow:check", school),
            can_return=actor.can("workflow:return", school),
            flash=flash[:300],
            flash_error=request.query_params.get("loi") == "1",
        )

    @router.get("/can-bo/{school}/ho-so/{item_id}", response_class=HTMLResponse)
    def item_page(
        request: Request, school: str, item_id: str, actor: Annotated[Actor, Depends(require("workflow:read"))]
    ) -> HTMLResponse:
        ctx = context(request)
        item = wf.get_item(ctx, school, item_id)
        if item is None:
            raise HTTPException(404, "Không có hồ sơ này / no such work item")
        ctx.record(request, actor, "workflow.view", org=school, target=item.id)  # the page shows a pupil's data
        status = None
        if item.doc_id:
            with Session(ctx.engine) as session:
                record = session.get(DocumentRecord, item.doc_id)
                status = record.status if record else None
        return page(
            "item.html.j2",
            request,
            actor,
            school=school,
            item=item,
            diff=wf.diff(ctx, item),
            corrects=item.supersedes,
            history=wf.history(ctx, item.id),
            can_revoke=actor.can("documents:revoke", school),
            doc_status=status,
        )

    def _moved(request: Request, actor: Actor, school: str, items: list[str], action: str, note: str = "") -> Response:
        ctx = context(request)
        try:
            moved = wf.move(ctx, client_ip(request), actor, school, items, action, note)
        except WorkflowError as exc:
            return _back(school, str(exc), error=True)
        return _back(school, f"Đã chuyển {len(moved)} hồ sơ / {len(moved)} moved")

    @router.post("/can-bo/{school}/ho-so/kiem-tra")
    def check_items(
        request: Request,
        school: str,
        actor: Annotated[Actor, Depends(require("workflow:check"))],
        items: ItemIds = [],  # noqa: B006
    ) -> Response:
        return _moved(request, actor, school, items, "check")

    @router.post("/can-bo/{school}/ho-so/ky")
    def teacher_sign_items(
        request: Request,
        school: str,
        actor: Annotated[Actor, Depends(require("workflow:teacher_sign"))],
        items: ItemIds = [],  # noqa: B006
    ) -> Response:
        """The homeroom teacher's signature, applied now (HSM key) or prepared for their own key (USB token)."""
        done, problems = wf.teacher_sign(context(request), client_ip(request), actor, school, items)
        text = f"Đã ký {len(done)} hồ sơ / {len(done)} signed"
        return _back(school, "; ".join([text, *problems]), error=bool(problems))

    @router.post("/can-bo/{school}/ho-so/tra-lai")
    def return_items(
        request: Request,
        school: str,
        actor: Annotated[Actor, Depends(require("workflow:return"))],
        items: ItemIds = [],  # noqa: B006
        note: Annotated[str, Form(max_length=1000)] = "",
    ) -> Response:
        return _moved(request, actor, school, items, "return", note)

    @router.post("/can-bo/{school}/duyet-ky")
    def approve_and_sign(
        request: Request,
        school: str,
        actor: Annotated[Actor, Depends(require("workflow:approve"))],
        items: ItemIds = [],  # noqa: B006
    ) -> Response:
        try:
            batch_id = approval.start_batch(context(request), client_ip(request), actor, school, items)
        except WorkflowError as exc:
            return _back(school, str(exc), error=True)
        return RedirectResponse(f"/can-bo/{school}/lo-ky/{batch_id}", status_code=303)

    return router


def make_batch_pages_router() -> APIRouter:
    """A signing batch's progress page; retry and cancel it."""
    router = APIRouter(include_in_schema=False)

    @router.get("/can-bo/{school}/lo-ky/{batch_id}", response_class=HTMLResponse)
    def batch_page(
        request: Request, school: str, batch_id: str, actor: Annotated[Actor, Depends(require("workflow:read"))]
    ) -> HTMLResponse:
        found = approval.batch_progress(context(request), school, batch_id)
        if found is None:
            raise HTTPException(404, "Không có lô ký này / no such batch")
        progress, items = found
        jobs = {d["id"]: d for d in progress["documents"]}
        finished = progress["state"] in ("done", "failed", "cancelled")
        return page(
            "batch.html.j2",
            request,
            actor,
            school=school,
            batch=progress,
            rows=[(item, jobs[str(item.doc_id)]) for item in items],
            finished=finished,
            can_approve=actor.can("workflow:approve", school),
            retryable=len(wf.retryable(context(request), progress, items)) if finished else 0,
            advice=wf.advice,
        )

    @router.post("/can-bo/{school}/lo-ky/{batch_id}/tiep-tuc")
    def retry_batch(
        request: Request, school: str, batch_id: str, actor: Annotated[Actor, Depends(require("workflow:approve"))]
    ) -> Response:
        """Approve and sign again the batch's documents that failed (they are back in the queue, teacher-signed)."""
        ctx = context(request)
        found = approval.batch_progress(ctx, school, batch_id)
        if found is None:
            raise HTTPException(404, "Không có lô ký này / no such batch")
        progress, items = found
        again = wf.retryable(ctx, progress, items)
        try:
            new_batch = approval.start_batch(ctx, client_ip(request), actor, school, again)
        except WorkflowError as exc:
            return _back(school, str(exc), error=True)
        return RedirectResponse(f"/can-bo/{school}/lo-ky/{new_batch}", status_code=303)

    @router.post("/can-bo/{school}/lo-ky/{batch_id}/huy")
    def cancel_batch(
        request: Request, school: str, batch_id: str, actor: Annotated[Actor, Depends(require("workflow:approve"))]
    ) -> Response:
        """Cancel the documents not signed yet; those already issued stay issued, the rest return to the queue."""
        ctx = context(request)
        if approval.batch_progress(ctx, school, batch_id) is None:
            raise HTTPException(404, "Không có lô ký này / no such batch")
        approval.cancel_batch(ctx, client_ip(request), actor, school, batch_id)
        return RedirectResponse(f"/can-bo/{school}/lo-ky/{batch_id}", status_code=303)

    return router


def make_admin_router() -> APIRouter:
    """Revocation, roles, student sign-in codes and the audit export."""
    router = APIRouter(include_in_schema=False)

    @router.post("/can-bo/{school}/van-ban/{doc_id}/thu-hoi")
    def revoke_page(
        request: Request,
        school: str,
        doc_id: str,
        actor: Annotated[Actor, Depends(require("documents:revoke"))],
        reason: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:
        try:
            wf.revoke(context(request), client_ip(request), actor, school, doc_id, reason)
        except LookupError:
            raise HTTPException(404, "Không có văn bản này / no such document") from None
        except WorkflowError as exc:
            return _back(school, str(exc), error=True)
        return _back(school, f"Đã thu hồi {doc_id} / {doc_id} revoked")

    @router.post("/can-bo/{school}/thanh-vien")
    def grant_role(
        request: Request,
        school: str,
        actor: Annotated[Actor, Depends(require("members:manage"))],
        username: Annotated[str, Form(max_length=64)] = "",
        role: Annotated[str, Form(max_length=32)] = "",
        action: Annotated[str, Form(max_length=8)] = "grant",
    ) -> Response:
        ctx = context(request)
        if role not in ROLES:
            raise HTTPException(422, "Vai trò không hợp lệ / unknown role")
        try:
            if action == "revoke":
                service.revoke_role(ctx.engine, username, school, role)
            else:
                with Session(ctx.engine) as session:  # tenancy and separation of duties (accounts.policy)
                    org = session.exec(select(Organisation).where(Organisation.code == school)).one()
                    policy.check_grant(session, actor.name, username, org, role)
                service.grant(ctx.engine, username, school, role)
        except service.AccountError as exc:
            ctx.record(request, actor, "role.grant", org=school, target=username[:64], outcome="refused",
                       detail={"role": role, "why": str(exc)[:200]})  # fmt: skip
            raise HTTPException(422, str(exc)) from None
        ctx.record(
            request,
            actor,
            f"role.{'revoke' if action == 'revoke' else 'grant'}",
            org=school,
            target=username,
            detail={"role": role},
        )
        return RedirectResponse(f"/can-bo/{school}/thanh-vien?tb=Đã cập nhật vai trò của {username}", status_code=303)

    @router.post("/can-bo/{school}/hoc-sinh/ma-dang-nhap", response_class=PlainTextResponse)
    def student_code(
        request: Request,
        school: str,
        actor: Annotated[Actor, Depends(require("students:codes"))],
        username: Annotated[str, Form(max_length=64)] = "",
    ) -> PlainTextResponse:
        ctx = context(request)
        try:
            code = service.issue_student_code(ctx.engine, username, school, actor.person_id)
        except service.AccountError as exc:
            raise HTTPException(404, str(exc)) from None
        ctx.record(request, actor, "student.code", org=school, target=username)
        return PlainTextResponse(code, headers={"Cache-Control": "no-store"})

    @router.get("/can-bo/{school}/nhat-ky", response_model=None)
    def audit_export(
        request: Request,
        school: str,
        actor: Annotated[Actor, Depends(require("audit:export"))],
        tu: date | None = None,
        den: date | None = None,
        dinh_dang: str = "csv",
    ) -> Response:
        return _audit_response(request, actor, school, tu, den, request.query_params.get("dinh-dang", dinh_dang))

    return router


EARLIEST_AUDIT_DATE = date(2000, 1, 1)


def _audit_response(
    request: Request, actor: Actor, school: str, start: date | None, end: date | None, fmt: str
) -> Response:
    ctx = context(request)
    for day in (start, end):
        if day is not None and not EARLIEST_AUDIT_DATE <= day <= date.today() + timedelta(days=366):
            raise HTTPException(
                400,
                f"Ngày {day:%d/%m/%Y} ngoài khoảng cho phép / the date {day.isoformat()} is out of range "
                f"({EARLIEST_AUDIT_DATE.isoformat()} to a year from today)",
            )
    if start is not None and end is not None and start > end:
        raise HTTPException(400, "Ngày bắt đầu sau ngày kết thúc / the start date is after the end date")
    begin = datetime.combine(start or date.today() - timedelta(days=30), datetime.min.time(), tzinfo=UTC)
    finish = datetime.combine(end or date.today(), datetime.min.time(), tzinfo=UTC) + timedelta(days=1)
    rows = service.export_audit(ctx.engine, school, begin, finish)
    ctx.record(request, actor, "audit.export", org=school, detail={"from": begin.isoformat(), "rows": len(rows)})
    name = f"nhat-ky-{school}-{begin:%Y%m%d}-{finish - timedelta(days=1):%Y%m%d}"
    if fmt == "json":
        return Response(
            json.dumps(rows, ensure_ascii=False, indent=1),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{name}.json"', "Cache-Control": "no-store"},
        )
    out = io.StringIO()
    writer = safe_writer(out)  # actor and target names come from other people (and other organisations)
    writer.writerow(["id", "at", "actor", "action", "target", "outcome", "ip", "leaf_index", "detail"])
    for r in rows:
        writer.writerow(
            [
                r["id"],
                r["at"],
                r["actor"],
                r["action"],
                r["target"],
                r["outcome"],
                r["ip"],
                "" if r["leaf_index"] is None else r["leaf_index"],
                json.dumps(r["detail"], ensure_ascii=False),
            ]
        )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"', "Cache-Control": "no-store"},
    )


def _back(school: str, message: str, error: bool = False) -> Response:
    from urllib.parse import urlencode

    query = urlencode({"tb": message[:300], **({"loi": "1"} if error else {})})
    return RedirectResponse(f"/can-bo/{school}/hang-doi?{query}", status_code=303)


class DeferredIn(BaseModel):
    document: dict[str, Any] = Field(description="One document (transcript or diploma) as for POST /api/v1/documents")
    signers: dict[str, str] = Field(
        default_factory=dict,
        description="role → registered signer id (`sealtrail signer register`), e.g. "
        '{"homeroom_teacher": "sg-…"}; other roles are signed with the server\'s keys',
    )


DEFERRED_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such document or registered signer in this school"},
    409: {"description": "The document is issued already (revoke it) or belongs to the approval workflow"},
    422: {"description": "The document or the signers are not valid; the message says what to fix"},
}


def make_workflow_api_router() -> APIRouter:
    """The same workflow as JSON for school software and scripts (API keys with scopes, or a session + CSRF)."""
    router = APIRouter(prefix="/api/v1/schools/{school}", tags=["workflow"])

    @router.get("/work-items")
    def list_items(
        request: Request,
        school: str,
        actor: Annotated[Actor, Depends(require("workflow:read"))],
        class_name: str = "",
        school_year: str = "",
        state: str = "",
    ) -> list[dict[str, Any]]:
        items = wf.queue(context(request), school, class_name, school_year, state)
        return [
            {
                "id": i.id,
                "kind": i.kind,
                "holder": i.holder_name,
                "class": i.class_name,
                "year": i.school_year,
                "state": i.state,
                "version": i.version,
                "doc_id": i.doc_id,
                "error": i.last_error,
            }
            for i in items
        ]

    @router.post("/work-items", status_code=201)
    def submit_items(
        request: Request,
        school: str,
        actor: Annotated[Actor, Depends(require("workflow:edit"))],
        payload: Any = Body(...),  # noqa: B008
    ) -> dict[str, Any]:
        items = payload if isinstance(payload, list) else [payload]
        if not items or len(items) > 200:
            raise HTTPException(422, "Gửi từ 1 đến 200 văn bản / send 1 to 200 documents")
        made = wf.submit(context(request), client_ip(request), actor, school, items)
        return {"items": [{"id": i.id, "state": i.state, "version": i.version} for i in made]}

    @router.post("/documents/{doc_id}/correction", status_code=201)
    def correct(
        request: Request,
        school: str,
        doc_id: str,
        actor: Annotated[Actor, Depends(require("workflow:edit"))],
        payload: Any = Body(...),  # noqa: B008
    ) -> dict[str, Any]:
        item = wf.start_correction(context(request), client_ip(request), actor, school, doc_id, payload)
        return {"id": item.id, "state": item.state, "supersedes": item.supersedes}

    @router.post("/signing/documents", status_code=201, responses=DEFERRED_ERRORS)
    def start_deferred(
        request: Request,
        school: str,
        actor: Annotated[Actor, Depends(require("documents:issue"))],
        body: DeferredIn,
    ) -> dict[str, Any]:
        """Start a document signed with its signers' own keys (USB token through `sealtrail agent`, or a remote
        signing service): it is rendered, its pending row written, and the first signer's step prepared. Roles not
        named in ``signers`` are signed with the server's keys when their turn comes."""
        ctx, client = context(request), client_ip(request)
        doc_id, state = wf.start_deferred(ctx, client, actor, school, body.document, body.signers)
        return {"id": doc_id, "state": str(state)}

    @router.post("/signing/documents/{doc_id}/cancel", responses=DEFERRED_ERRORS)
    def cancel_deferred(
        request: Request, school: str, doc_id: str, actor: Annotated[Actor, Depends(require("documents:issue"))]
    ) -> dict[str, Any]:
        """Withdraw a document prepared for its signers but not issued: its steps, prepared files and pending row
        are removed. An issued document is refused (409): revoke it instead."""
        wf.cancel_deferred(context(request), client_ip(request), actor, school, doc_id)
        return {"id": doc_id, "state": "cancelled"}

    @router.post("/documents/{doc_id}/revoke")
    def revoke(
        request: Request,
        school: str,
        doc_id: str,
        actor: Annotated[Actor, Depends(require("documents:revoke"))],
        payload: dict[str, str] = Body(...),  # noqa: B008
    ) -> dict[str, Any]:
        result = wf.revoke(context(request), client_ip(request), actor, school, doc_id, payload.get("reason", ""))
        return {"id": result.doc_id, "status": "revoked", "leaf_index": result.leaf_index}

    @router.get("/audit", response_model=None)
    def audit(
        request: Request,
        school: str,
        actor: Annotated[Actor, Depends(require("audit:export"))],
        start: date | None = None,
        end: date | None = None,
        format: str = "json",
    ) -> Response:
        return _audit_response(request, actor, school, start, end, format)

    return router


def install(app: FastAPI, dep: Deployment) -> AccountsContext:
    """Wire accounts, staff pages, the workflow API and the student portal into ``app``."""
    from sealtrail.web.students import make_student_router

    ctx = AccountsContext(dep)
    app.state.accounts = ctx
    from sealtrail.web.people import make_people_router
    from sealtrail.web.sso import make_sso_router

    app.include_router(make_people_router())
    app.include_router(make_sso_router())
    app.include_router(make_staff_web_router())
    app.include_router(make_workflow_api_router())
    app.include_router(make_student_router())
    return ctx
