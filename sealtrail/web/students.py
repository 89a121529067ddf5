"""The student portal: sign in with the school's one-time code, see and download one's own documents, request
a certified copy (bản sao điện tử, sealed by the school and logged as a ``copy`` entry), and share links that
expire, can be revoked, and show exactly the fields the student chose."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

import schemas
from accounts import service
from accounts.models import ShareLink, aware, utcnow
from accounts.permissions import Actor
from registry.records import DocumentRecord, DocumentStatus
from sealtrail.web.deps import client_ip, context, require_student
from workflow.states import State, Transition, WorkItem, new_item_id

SHARE_FIELDS = {
    "kind": "Loại văn bản",
    "school": "Trường cấp",
    "issue_date": "Ngày cấp",
    "holder_name": "Họ và tên",
    "birth_date": "Ngày sinh",
    "results": "Kết quả học tập / xếp loại",
    "pdf": "Tệp PDF gốc có chữ ký số",
}
MAX_SHARE_DAYS = 90


def visible_holders(ctx: Any, actor: Actor) -> set[tuple[str, str]]:
    """(personal id, school) pairs whose documents this portal user may see: their own, in the schools where they
    are a pupil, and their children's, in the school that linked them (a parent sees nothing of other pupils)."""
    from accounts.people import children_of

    assert actor.person_id is not None
    with Session(ctx.engine) as session:
        person = session.get(service.Person, actor.person_id)
        own = person.personal_id if person is not None else None
    pairs = {(own, school) for school, roles in actor.roles.items() if "student" in roles and own}
    children = children_of(ctx.engine, actor.person_id)
    return pairs | {(pid, school) for pid, school in children if "parent" in actor.roles.get(school, set())}


def _owned(ctx: Any, actor: Actor, doc_id: str) -> tuple[WorkItem, DocumentRecord]:
    """A document the caller may see, or 404 (another pupil's document does not exist for this caller)."""
    allowed = visible_holders(ctx, actor)
    with Session(ctx.engine) as session:
        item = session.exec(select(WorkItem).where(WorkItem.doc_id == doc_id)).first()
        record = session.get(DocumentRecord, doc_id)
        if item is None or record is None or (item.holder_personal_id, item.school_code) not in allowed:
            raise HTTPException(404, "Không có văn bản này / no such document")
        session.expunge(item)
        session.expunge(record)
        return item, record


def my_documents(ctx: Any, actor: Actor) -> list[tuple[WorkItem, DocumentRecord]]:
    allowed = visible_holders(ctx, actor)
    if not allowed:
        return []
    with Session(ctx.engine) as session:
        rows = session.exec(
            select(WorkItem, DocumentRecord)
            .join(DocumentRecord, DocumentRecord.id == WorkItem.doc_id)  # type: ignore[arg-type]
            .where(col(WorkItem.holder_personal_id).in_({pid for pid, _ in allowed}))
            .order_by(col(DocumentRecord.issue_date))
        ).all()
        mine = [(i, r) for i, r in rows if (i.holder_personal_id, i.school_code) in allowed]
        for item, record in mine:
            session.expunge(item)
            session.expunge(record)
        return mine


def _shares(ctx: Any, actor: Actor) -> list[ShareLink]:
    with Session(ctx.engine) as session:
        rows = session.exec(
            select(ShareLink).where(ShareLink.person_id == actor.person_id).order_by(col(ShareLink.created_at))
        ).all()
        for row in rows:
            session.expunge(row)
        return list(rows)


def share_view(item: WorkItem, record: DocumentRecord, fields: list[str]) -> list[tuple[str, str]]:
    """Exactly the chosen fields, as (label, value) pairs, in a fixed order."""
    doc = schemas.parse_document(item.data)
    values: dict[str, str] = {
        "kind": {"transcript": "Học bạ", "diploma": "Văn bằng", "copy": "Bản sao điện tử"}.get(
            record.kind, record.kind
        ),
        "school": record.school_name,
        "issue_date": record.issue_date.strftime("%d/%m/%Y"),
        "holder_name": doc.holder.full_name,
        "birth_date": doc.holder.birth_date.strftime("%d/%m/%Y"),
    }
    if isinstance(doc, schemas.Transcript):
        values["results"] = (
            "; ".join(
                f"{y.school_year}: học tập {getattr(y, 'learning', '')}, rèn luyện {getattr(y, 'conduct', '')}"
                for y in doc.years
            )
            or "—"
        )
    elif isinstance(doc, schemas.Diploma):
        values["results"] = str(getattr(doc, "classification", "") or "—")
    return [(SHARE_FIELDS[f], values[f]) for f in SHARE_FIELDS if f in fields and f in values]


def make_student_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    from sealtrail.web.staff import page, set_session_cookie

    @router.get("/hoc-sinh/dang-nhap", response_class=HTMLResponse)
    def login_page(request: Request) -> HTMLResponse:
        return page("student_login.html.j2", request, None)

    @router.post("/hoc-sinh/dang-nhap", response_model=None)
    def login(request: Request, code: Annotated[str, Form(max_length=64)]) -> Response:
        ctx = context(request)
        ctx.login_limit(request)
        try:
            person = service.redeem_student_code(ctx.engine, code)
        except service.AccountError as exc:
            ctx.record(request, "-", "student.login.failed", outcome="refused")
            return page("student_login.html.j2", request, None, status=401, flash=str(exc), flash_error=True)
        token = service.start_session(
            ctx.engine, person, "student", client_ip(request), replaces=request.cookies.get(ctx.cookie_name)
        )
        ctx.record(request, person.username, "student.login.ok")
        response = RedirectResponse("/hoc-sinh", status_code=303)
        set_session_cookie(ctx, response, token)
        return response

    @router.get("/hoc-sinh", response_class=HTMLResponse)
    def home(request: Request, actor: Annotated[Actor, Depends(require_student())]) -> HTMLResponse:
        ctx = context(request)
        base = ctx.dep.settings.public_base_url.rstrip("/")
        return page(
            "student_home.html.j2",
            request,
            actor,
            docs=my_documents(ctx, actor),
            shares=_shares(ctx, actor),
            share_fields=SHARE_FIELDS,
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
        _item, record = _owned(ctx, actor, doc_id)
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
        item, record = _owned(ctx, actor, doc_id)
        if record.status != DocumentStatus.ISSUED.value or record.kind == "copy" or not record.sha256_pdf:
            raise HTTPException(422, "Chỉ cấp bản sao từ văn bản gốc còn hiệu lực / only from a valid original")
        copy_id = issue_copy(ctx, actor, item, record)
        ctx.record(request, actor, "student.copy", org=item.school_code, target=copy_id, detail={"original": doc_id})
        return RedirectResponse(f"/hoc-sinh?tb=Đã cấp bản sao {copy_id}", status_code=303)

    @router.post("/hoc-sinh/van-ban/{doc_id}/ban-dich")
    def english_translation(
        request: Request, doc_id: str, actor: Annotated[Actor, Depends(require_student())]
    ) -> Response:
        """The signed English translation of one of the student's own documents, as a download (made once)."""
        from signer.translation import TranslationError, translate

        ctx = context(request)
        item, record = _owned(ctx, actor, doc_id)
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

    @router.post("/hoc-sinh/chia-se")
    def create_share(
        request: Request,
        actor: Annotated[Actor, Depends(require_student())],
        doc_id: Annotated[str, Form(max_length=64)] = "",
        fields: Annotated[list[str], Form()] = [],  # noqa: B006
        days: Annotated[int, Form(ge=1, le=MAX_SHARE_DAYS)] = 7,
        label: Annotated[str, Form(max_length=120)] = "",
    ) -> Response:
        ctx = context(request)
        _owned(ctx, actor, doc_id)
        chosen = [f for f in fields if f in SHARE_FIELDS]
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
        with Session(ctx.engine) as session:
            link = session.get(ShareLink, share_id)
            if link is None or link.person_id != actor.person_id:
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
        if request.query_params.get("tai") == "pdf" and "pdf" in link.fields and record.sha256_pdf:
            data = ctx.dep.blobs.get(record.sha256_pdf, "pdf")
            return Response(data, media_type="application/pdf", headers={"Cache-Control": "no-store"})
        base = ctx.dep.settings.public_base_url.rstrip("/")
        return page(
            "shared.html.j2",
            request,
            None,
            rows=share_view(item, record, link.fields),
            record=record,
            expires=aware(link.expires_at),
            allow_pdf="pdf" in link.fields,
            token=token,
            verify=f"{base}/v/{record.token}",
        )

    return router


def issue_copy(ctx: Any, actor: Actor, item: WorkItem, record: DocumentRecord) -> str:
    """A certified copy of ``record``: generated, sealed by the school, logged as a ``copy`` entry."""
    from sealtrail.demo import issuer_for

    original = schemas.parse_document(item.data)
    school = original.school if isinstance(original, schemas.Transcript) else original.issuer
    with Session(ctx.engine) as session:
        requester = session.get(service.Person, actor.person_id)
    by_parent = requester is None or requester.personal_id != item.holder_personal_id
    requested_by = f"{requester.full_name} (cha mẹ học sinh)" if by_parent and requester else original.holder.full_name
    with Session(ctx.engine) as session:
        number = 1 + len(
            session.exec(select(WorkItem).where(WorkItem.kind == "copy", WorkItem.supersedes == record.id)).all()
        )
    copy = schemas.CertifiedCopy(
        original_doc_id=record.id,
        original_kind=record.kind,  # type: ignore[arg-type]
        original_sha256_pdf=record.sha256_pdf or "",
        holder=original.holder,
        issuer=school,
        copy_number=number,
        issue_date=utcnow().date(),
        issue_place=school.province,
        requested_by=requested_by,
    )
    issued = issuer_for(ctx.dep).issue(copy, entry_type="copy")
    with Session(ctx.engine) as session:
        row = WorkItem(
            id=new_item_id(),
            school_code=item.school_code,
            kind="copy",
            class_name=item.class_name,
            school_year=item.school_year,
            holder_name=item.holder_name,
            holder_personal_id=item.holder_personal_id,
            state=State.ISSUED.value,
            data=copy.model_dump(mode="json"),
            doc_id=issued.doc_id,
            supersedes=record.id,
            created_by=actor.name,
        )
        session.add(row)
        session.flush()
        session.add(
            Transition(
                item_id=row.id,
                action="copy",
                from_state="",
                to_state=State.ISSUED.value,
                actor=actor.name,
                role="parent" if by_parent else "student",
                note=f"bản sao số {number} của {record.id}",
            )
        )
        session.commit()
    return issued.doc_id
