"""The student portal's domain: which documents a pupil (or a parent, for their children) may see, certified
copies (bản sao điện tử: a new document sealed by the school and logged as a ``copy`` entry), and what a share
link shows. The pages are ``sealtrail.web.students``."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

import schemas
from accounts.models import Person, ShareLink, utcnow
from accounts.permissions import Actor
from registry.records import DocumentRecord
from workflow.states import NotFoundError, State, Transition, WorkItem, new_item_id

SHARE_FIELDS = {
    "kind": "Loại văn bản",
    "school": "Trường cấp",
    "issue_date": "Ngày cấp",
    "holder_name": "Họ và tên",
    "birth_date": "Ngày sinh",
    "results": "Kết quả học tập / xếp loại",
    "pdf": "Tệp PDF gốc có chữ ký số",
    "verify": "Mã văn bản và liên kết xác thực (mã QR)",
}
MAX_SHARE_DAYS = 90


def visible_holders(ctx: Any, actor: Actor) -> set[tuple[str, str]]:
    """(personal id, school) pairs whose documents this portal user may see: their own, in the schools where they
    are a pupil, and their children's, in the school that linked them (a parent sees nothing of other pupils)."""
    from accounts.people import children_of

    assert actor.person_id is not None
    with Session(ctx.engine) as session:
        person = session.get(Person, actor.person_id)
        own = person.personal_id if person is not None else None
    pairs = {(own, school) for school, roles in actor.roles.items() if "student" in roles and own}
    children = children_of(ctx.engine, actor.person_id)
    return pairs | {(pid, school) for pid, school in children if "parent" in actor.roles.get(school, set())}


def owned(ctx: Any, actor: Actor, doc_id: str) -> tuple[WorkItem, DocumentRecord]:
    """A document the caller may see, or NotFoundError (another pupil's document does not exist for this caller)."""
    allowed = visible_holders(ctx, actor)
    with Session(ctx.engine) as session:
        item = session.exec(select(WorkItem).where(WorkItem.doc_id == doc_id)).first()
        record = session.get(DocumentRecord, doc_id)
        if item is None or record is None or (item.holder_personal_id, item.school_code) not in allowed:
            raise NotFoundError("Không có văn bản này / no such document")
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


def shares(ctx: Any, actor: Actor) -> list[ShareLink]:
    """Every link to a document this portal user may see, whoever made it: a pupil sees (and may revoke) the
    links a parent made to the pupil's documents too."""
    visible = {record.id for _item, record in my_documents(ctx, actor)}
    with Session(ctx.engine) as session:
        rows = session.exec(
            select(ShareLink)
            .where((ShareLink.person_id == actor.person_id) | col(ShareLink.doc_id).in_(visible or {""}))
            .order_by(col(ShareLink.created_at))
        ).all()
        for row in rows:
            session.expunge(row)
        return list(rows)


def sharer_still_sees(ctx: Any, link: ShareLink, item: WorkItem) -> bool:
    """A link lives only while the person who made it could still open the document (a parent unlinked from the
    child, or a pupil whose role went, no longer shares anything)."""
    from accounts.service import actor_for

    with Session(ctx.engine) as session:
        person = session.get(Person, link.person_id)
        if person is None or not person.active:
            return False
        session.expunge(person)
    sharer = actor_for(ctx.engine, person, "student")
    return (item.holder_personal_id, item.school_code) in visible_holders(ctx, sharer)


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


def issue_copy(ctx: Any, actor: Actor, item: WorkItem, record: DocumentRecord) -> str:
    """A certified copy of ``record``: generated, sealed by the school, logged as a ``copy`` entry."""
    original = schemas.parse_document(item.data)
    school = original.school if isinstance(original, schemas.Transcript) else original.issuer
    with Session(ctx.engine) as session:
        requester = session.get(Person, actor.person_id)
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
    issued = ctx.dep.make_issuer().issue(copy, entry_type="copy")
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
    return str(issued.doc_id)
