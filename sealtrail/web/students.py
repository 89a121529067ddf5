"""The student portal: sign in with the school's one-time code, see and download one's own documents, request
a certified copy (bản sao điện tử, sealed by the school and logged as a ``copy`` entry), and share links that
expire, can be revoked, and show exactly the fields the student chose."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, select

from accounts import service
from accounts.models import ShareLink, aware, utcnow
from accounts.permissions import Actor
from registry.records import DocumentRecord, DocumentStatus
from sealtrail.web.deps import client_ip, context, require_student
from sealtrail.web.pages import page, set_session_cookie
from sealtrail.web.signin_guard import guarded, locked_message, refuse_cross_site
from workflow import portal
from workflow.states import WorkItem


def make_student_router() -> APIRouter:
    """The student portal, one router per area."""
    router = APIRouter(include_in_schema=False)
    for part in (make_portal_signin_router, make_portal_documents_router, make_share_router):
        router.include_router(part())
    return router


def make_portal_signin_router() -> APIRouter:
    """Pupils and parents sign in with a one-time code."""
    router = APIRouter(include_in_schema=False)

    @router.get("/hoc-sinh/dang-nhap", response_class=HTMLResponse)
    def login_page(request: Request) -> HTMLResponse:
        return page("student_login.html.j2", request, None)

    @router.post("/hoc-sinh/dang-nhap", response_model=None)
    def login(request: Request, code: Annotated[str, Form(max_length=64)]) -> Response:
        ctx = context(request)
        refuse_cross_site(request)  # login CSRF: another site must not sign a pupil into its own account
        found: list[tuple[Any, int]] = []
        failure: list[str] = []

        def attempt() -> bool:
            try:
                found.append(service.redeem_code(ctx.engine, code))
            except service.AccountError as exc:
                failure.append(str(exc))
            return bool(found)

        # only wrong codes count, per address: a class signing in behind the school's one address is not slowed
        wait = guarded(request.app.state.public_gate, "code", "", client_ip(request), attempt)
        if wait:
            ctx.record(request, "-", "student.login.throttled", outcome="refused")
            html = page(
                "student_login.html.j2", request, None, status=429, flash=locked_message(wait), flash_error=True
            )
            html.headers["Retry-After"] = str(wait)
            return html
        if not found:
            ctx.record(request, "-", "student.login.failed", outcome="refused")
            return page("student_login.html.j2", request, None, status=401, flash=failure[0], flash_error=True)
        person, org_id = found[0]
        token = service.start_session(  # the session sees only the school that gave the code
            ctx.engine,
            person,
            "student",
            client_ip(request),
            replaces=request.cookies.get(ctx.cookie_name),
            org_id=org_id,
        )
        ctx.record(request, person.username, "student.login.ok")
        response = RedirectResponse("/hoc-sinh", status_code=303)
        set_session_cookie(ctx, response, token)
        return response

    return router


def make_portal_documents_router() -> APIRouter:
    """One's documents: download, certified copy, English translation."""
    router = APIRouter(include_in_schema=False)

    @router.get("/hoc-sinh", response_class=HTMLResponse)
    def home(request: Request, actor: Annotated[Actor, Depends(require_student())]) -> HTMLResponse:
        ctx = context(request)
        base = ctx.dep.settings.public_base_url.rstrip("/")
        return page(
            "student_home.html.j2",
            request,
            actor,
            docs=portal.my_documents(ctx, actor),
            shares=portal.shares(ctx, actor),
            share_fields=portal.SHARE_FIELDS,
            now=utcnow(),
            aware=aware,
            base=base,
            flash=request.query_params.get("tb", "")[:300],
            new_link=request.query_params.get("lien-ket", "")[:200],
        )

    @router.get("/hoc-sinh/van-ban/{doc_id}/tai/{fmt}")
    def download(
        request: Request, doc_id: str, fmt: str, actor: Annotated[Actor, Depends(require_student())]
    ) -> Response:
        ctx = context(request)
        _item, record = portal.owned(ctx, actor, doc_id)
        digest = {"pdf": record.sha256_pdf, "xml": record.sha256_xml}.get(fmt)
        if fmt not in ("pdf", "xml") or not digest:
            raise HTTPException(404, "Không có tệp này / no such file")

        data = ctx.dep.blobs.get(digest, fmt)
        ctx.record(request, actor, "student.download", target=doc_id, detail={"format": fmt})
        media = "application/pdf" if fmt == "pdf" else "application/xml"
        return Response(
            data,
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="{doc_id}.{fmt}"', "Cache-Control": "no-store"},
        )

    @router.post("/hoc-sinh/van-ban/{doc_id}/ban-sao")
    def certified_copy(request: Request, doc_id: str, actor: Annotated[Actor, Depends(require_student())]) -> Response:
        ctx = context(request)
        item, record = portal.owned(ctx, actor, doc_id)
        if record.status != DocumentStatus.ISSUED.value or record.kind == "copy" or not record.sha256_pdf:
            raise HTTPException(422, "Chỉ cấp bản sao từ văn bản gốc còn hiệu lực / only from a valid original")
        copy_id = portal.issue_copy(ctx, actor, item, record)
        ctx.record(request, actor, "student.copy", org=item.school_code, target=copy_id, detail={"original": doc_id})
        return RedirectResponse(f"/hoc-sinh?tb=Đã cấp bản sao {copy_id}", status_code=303)

    @router.post("/hoc-sinh/van-ban/{doc_id}/ban-dich")
    def english_translation(
        request: Request, doc_id: str, actor: Annotated[Actor, Depends(require_student())]
    ) -> Response:
        """The signed English translation of one of the student's own documents, as a download (made once)."""
        from signer.translation import TranslationError, translate

        ctx = context(request)
        item, record = portal.owned(ctx, actor, doc_id)
        try:
            done = translate(ctx.dep, record.id, school_code=item.school_code)
        except TranslationError as exc:
            raise HTTPException(exc.status_code, str(exc)) from None
        detail = {"original": doc_id, "created": done.created}
        ctx.record(request, actor, "student.translation", org=item.school_code, target=done.record.id, detail=detail)
        return Response(
            done.pdf,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="{done.record.id}.pdf"',
                "Cache-Control": "no-store",
            },
        )

    return router


def make_share_router() -> APIRouter:
    """Share links: make, revoke, and the page a link shows."""
    router = APIRouter(include_in_schema=False)

    @router.post("/hoc-sinh/chia-se")
    def create_share(
        request: Request,
        actor: Annotated[Actor, Depends(require_student())],
        doc_id: Annotated[str, Form(max_length=64)] = "",
        fields: Annotated[list[str], Form()] = [],  # noqa: B006
        days: Annotated[int, Form(ge=1, le=portal.MAX_SHARE_DAYS)] = 7,
        label: Annotated[str, Form(max_length=120)] = "",
    ) -> Response:
        ctx = context(request)
        _item, record = portal.owned(ctx, actor, doc_id)
        if record.status != DocumentStatus.ISSUED.value or record.leaf_index is None:
            raise HTTPException(422, "Chỉ chia sẻ văn bản đã cấp / only an issued document can be shared")
        chosen = [f for f in fields if f in portal.SHARE_FIELDS]
        if not chosen:
            raise HTTPException(422, "Chọn ít nhất một mục để chia sẻ / choose at least one field")
        token = secrets.token_urlsafe(24)
        assert actor.person_id is not None
        link = ShareLink(
            id=service.sha256_hex(token),
            person_id=actor.person_id,
            doc_id=doc_id,
            fields=chosen,
            label=label,
            expires_at=utcnow() + timedelta(days=days),
        )
        with Session(ctx.engine) as session:
            session.add(link)
            session.commit()
        ctx.record(request, actor, "share.create", target=doc_id, detail={"fields": chosen, "days": days})
        return RedirectResponse(f"/hoc-sinh?lien-ket=/chia-se/{token}", status_code=303)

    @router.post("/hoc-sinh/chia-se/{share_id}/thu-hoi")
    def revoke_share(request: Request, share_id: str, actor: Annotated[Actor, Depends(require_student())]) -> Response:
        ctx = context(request)
        visible = {link.id for link in portal.shares(ctx, actor)}
        with Session(ctx.engine) as session:
            link = session.get(ShareLink, share_id)
            if link is None or link.id not in visible:
                raise HTTPException(404, "Không có liên kết này / no such link")
            link.revoked_at = utcnow()
            session.add(link)
            session.commit()
        ctx.record(request, actor, "share.revoke", target=share_id[:16])
        return RedirectResponse("/hoc-sinh?tb=Đã thu hồi liên kết", status_code=303)

    @router.get("/chia-se/{token}", response_class=HTMLResponse, response_model=None)
    def shared(request: Request, token: str) -> Response:
        """Public: what the student chose to show, while the link lives. Unknown, expired and revoked look alike."""
        ctx = context(request)
        gone = page("shared.html.j2", request, None, status=404, rows=None)
        with Session(ctx.engine) as session:
            link = session.get(ShareLink, service.sha256_hex(token))
            if link is None or link.revoked_at is not None or aware(link.expires_at) <= utcnow():
                return gone
            item = session.exec(select(WorkItem).where(WorkItem.doc_id == link.doc_id)).first()
            record = session.get(DocumentRecord, link.doc_id)
            if item is None or record is None:
                return gone
            session.expunge(item)
            session.expunge(record)
            session.expunge(link)
        if not portal.sharer_still_sees(ctx, link, item):
            return gone
        if request.query_params.get("tai") == "pdf" and "pdf" in link.fields and record.sha256_pdf:
            data = ctx.dep.blobs.get(record.sha256_pdf, "pdf")
            return Response(data, media_type="application/pdf", headers={"Cache-Control": "no-store"})
        base = ctx.dep.settings.public_base_url.rstrip("/")
        return page(
            "shared.html.j2",
            request,
            None,
            rows=portal.share_view(item, record, link.fields),
            record=record,
            expires=aware(link.expires_at),
            allow_pdf="pdf" in link.fields,
            token=token,
            show_id="verify" in link.fields,
            verify=f"{base}/v/{record.token}" if "verify" in link.fields else None,
        )

    return router
