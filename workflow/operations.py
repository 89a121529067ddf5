"""Workflow operations on the database: drafts, transitions, the principal's batch approval and signing,
corrections that supersede, and signed revocations. The rules themselves live in ``workflow.states``."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from sqlalchemy import update
from sqlmodel import Session, col, select

import schemas
from accounts.permissions import Actor
from errors import is_transient
from hsm_adapters.base import KeyBackendError
from ledger.entry import Entry
from registry import lifecycle
from registry.records import DocumentRecord, DocumentStatus
from signer.deferred import StaleSignatureError
from signer.pdf import UnreadablePdfError
from workflow.audit import AuditTrail
from workflow.states import (
    SYSTEM,
    ConflictError,
    NotFoundError,
    State,
    Transition,
    WorkflowError,
    WorkItem,
    changes,
    find_move,
    new_item_id,
    utcnow,
)

if TYPE_CHECKING:
    from workflow.signing import FlowState

log = logging.getLogger(__name__)
REVISABLE = (State.DRAFT, State.CHECKED, State.TEACHER_SIGNING, State.TEACHER_SIGNED)


def _school_of(doc: schemas.Document) -> schemas.School:
    return doc.school if isinstance(doc, schemas.Transcript) else doc.issuer


def _class_and_year(doc: schemas.Document) -> tuple[str, str]:
    if isinstance(doc, schemas.Transcript):
        years = doc.years or doc.primary_years
        if years:
            last = years[-1]
            return str(last.class_name), str(last.school_year)
    year = doc.issue_date.year
    return "", f"{year - 1}-{year}"


def submit(
    ctx: AuditTrail,
    client: str | None,
    actor: Actor,
    school: str,
    payloads: Sequence[Any],
    supersedes: str | None = None,
) -> list[WorkItem]:
    """Check every document (all or nothing) and file each as a draft, or as a new version of the holder's
    work item that has not been approved yet (the earlier version is kept to show what changed)."""
    docs: list[schemas.Document] = []
    problems: list[str] = []
    for i, payload in enumerate(payloads):
        try:
            parsed = schemas.parse_document(payload)
        except schemas.SchemaError as exc:
            problems += [f"#{i}: {p}" for p in exc.problems]
            continue
        if _school_of(parsed).code != school:
            problems.append(f"#{i}: văn bản của trường khác ({_school_of(parsed).code}) / another school's document")
        docs.append(parsed)
    if problems:
        raise WorkflowError("; ".join(problems))
    items: list[WorkItem] = []
    withdrawn: list[str] = []
    with Session(ctx.engine) as session:
        for doc, payload in zip(docs, payloads, strict=True):
            class_name, year = _class_and_year(doc)
            pid = doc.holder.personal_id
            existing = None
            if pid and supersedes is None:
                existing = session.exec(
                    select(WorkItem).where(
                        WorkItem.school_code == school,
                        WorkItem.kind == doc.kind,
                        WorkItem.holder_personal_id == pid,
                        WorkItem.school_year == year,
                        col(WorkItem.state).in_([s.value for s in REVISABLE]),
                    )
                ).first()
            if existing is not None:
                if existing.data != payload:
                    session.add(_transition(existing, "revise", State.DRAFT, actor, "registrar", "dữ liệu mới"))
                    existing.previous_data, existing.data = existing.data, payload
                    existing.version += 1
                    existing.state = State.DRAFT.value
                    if existing.doc_id:  # the teacher signed the old data: that document is withdrawn
                        withdrawn.append(existing.doc_id)
                        existing.doc_id = None
                    existing.updated_at = utcnow()
                item = existing
            else:
                item = WorkItem(
                    id=new_item_id(),
                    school_code=school,
                    kind=doc.kind,
                    class_name=class_name,
                    school_year=year,
                    holder_name=doc.holder.full_name,
                    holder_personal_id=pid,
                    data=payload,
                    supersedes=supersedes,
                    created_by=actor.name,
                )
                session.add(item)
                session.flush()
                session.add(_transition(item, "create", State.DRAFT, actor, _role(actor, school), ""))
            session.add(item)
            items.append(item)
        session.commit()
        for item in items:
            session.refresh(item)
            session.expunge(item)
    withdraw_documents(ctx.dep, withdrawn)
    for item in items:
        ctx.record(client, actor, "workflow.submit", org=school, target=item.id, detail={"version": item.version})
    return items


def _role(actor: Actor, school: str) -> str:
    held = sorted(actor.roles.get(school, set()))
    return held[0] if held else actor.kind


def _transition(item: WorkItem, action: str, target: State, actor: Actor | str, role: str, note: str) -> Transition:
    return Transition(
        item_id=item.id,
        action=action,
        from_state=item.state,
        to_state=target.value,
        actor=actor if isinstance(actor, str) else actor.name,
        role=role,
        note=note[:1000],
    )


def get_item(ctx: AuditTrail, school: str, item_id: str) -> WorkItem | None:
    with Session(ctx.engine) as session:
        item = session.get(WorkItem, item_id)
        if item is None or item.school_code != school:  # another school's item does not exist for this caller
            return None
        session.expunge(item)
        return item


def diff(ctx: AuditTrail, item: WorkItem) -> list[tuple[str, Any, Any]]:
    """What changed, field by field (each subject's scores too), against the version before: the earlier draft of
    this item, or for a correction the document it supersedes (its work item's data, or else the data inside its
    signed XML when it was issued without the workflow)."""
    if item.previous_data is not None or not item.supersedes:
        return changes(item.previous_data, item.data)
    with Session(ctx.engine) as session:
        old = session.exec(select(WorkItem).where(WorkItem.doc_id == item.supersedes)).first()
        record = session.get(DocumentRecord, item.supersedes)
    if old is not None:
        return changes(old.data, item.data)
    if record is None or not record.sha256_xml:
        return []
    from schemas.xml import from_xml
    from signer.xades import signed_data

    try:
        before = from_xml(signed_data(ctx.dep.blobs.get(record.sha256_xml, "xml")))
        after = schemas.parse_document(item.data)
    except (schemas.SchemaError, OSError, ValueError) as exc:
        log.warning("no diff for %s against %s: %s", item.id, item.supersedes, exc)
        return []
    return changes(before.model_dump(mode="json"), after.model_dump(mode="json"))


def history(ctx: AuditTrail, item_id: str) -> list[Transition]:
    with Session(ctx.engine) as session:
        rows = session.exec(select(Transition).where(Transition.item_id == item_id).order_by(col(Transition.id))).all()
        for row in rows:
            session.expunge(row)
        return list(rows)


def move(
    ctx: AuditTrail,
    client: str | None,
    actor: Actor,
    school: str,
    item_ids: Sequence[str],
    action: str,
    note: str = "",
) -> list[WorkItem]:
    """Apply ``action`` to each item, all or nothing; each step must be allowed for one of the actor's roles.
    The teacher's signature is not a bare move: it goes through ``teacher_sign``, which signs."""
    if action.startswith("teacher_sign"):
        raise WorkflowError("GVCN ký qua nút 'GVCN ký' / the teacher signs through teacher_sign")
    moved: list[WorkItem] = []
    withdrawn: list[str] = []
    with Session(ctx.engine) as session:
        for item_id in item_ids:
            item = session.get(WorkItem, item_id)
            if item is None or item.school_code != school:
                raise WorkflowError(f"Không có hồ sơ {item_id} / no work item {item_id}")
            last: WorkflowError | None = None
            for role in sorted(actor.roles.get(school, set())):
                try:
                    step = find_move(action, item.state, role)
                except WorkflowError as exc:
                    last = exc
                    continue
                session.add(_transition(item, action, step.target, actor, role, note))
                values: dict[str, Any] = {"state": step.target.value, "updated_at": utcnow(), "last_error": None}
                if step.target == State.DRAFT and item.doc_id:  # sent back: the teacher-signed document goes
                    withdrawn.append(item.doc_id)
                    values["doc_id"] = None
                # Conditional on the state we read: two people acting on the same item at once cannot both
                # move it (so an item is never approved, and signed, twice).
                changed = session.execute(
                    update(WorkItem)
                    .where(col(WorkItem.id) == item_id, col(WorkItem.state) == step.source.value)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                ).rowcount  # type: ignore[attr-defined]
                if changed != 1:
                    raise WorkflowError(f"Hồ sơ {item_id} vừa được người khác xử lý / {item_id} changed meanwhile")
                moved.append(item)
                break
            else:
                raise last or WorkflowError(f"Không được phép / not allowed: {action}")
        session.commit()
        for item in moved:
            session.refresh(item)
            session.expunge(item)
    withdraw_documents(ctx.dep, withdrawn)
    for item in moved:
        ctx.record(client, actor, f"workflow.{action}", org=school, target=item.id, detail={"note": note[:200]})
    return moved


def queue(ctx: AuditTrail, school: str, class_name: str = "", school_year: str = "", state: str = "") -> list[WorkItem]:
    with Session(ctx.engine) as session:
        query = select(WorkItem).where(WorkItem.school_code == school)
        if class_name:
            query = query.where(WorkItem.class_name == class_name)
        if school_year:
            query = query.where(WorkItem.school_year == school_year)
        if state:
            query = query.where(WorkItem.state == state)
        rows = session.exec(query.order_by(col(WorkItem.class_name), col(WorkItem.holder_name))).all()
        for row in rows:
            session.expunge(row)
        return list(rows)


def filters(ctx: AuditTrail, school: str) -> tuple[list[str], list[str]]:
    """The classes and school years that have work items in this school (for the queue's filter menus)."""
    with Session(ctx.engine) as session:
        rows = session.exec(
            select(WorkItem.class_name, WorkItem.school_year).where(WorkItem.school_code == school).distinct()
        ).all()
    return sorted({c for c, _ in rows if c}), sorted({y for _, y in rows if y}, reverse=True)


# --- signing: the teacher's step, the principal's approval as a batch job ----------------------------------------


class FailureKind(StrEnum):
    """What kind of failure stopped a signature, judged by the error's type (never by its text)."""

    REFUSED = "refused"  # the workflow's own refusal: its message already says what to do
    DATA = "data"  # the data is invalid, changed since the teacher signed, or its PDF unreadable: back to the teacher
    KEY = "key"  # the signing key: PIN, token, HSM, remote signing service
    SERVICE = "service"  # a timestamp, OCSP/CRL service or the network did not answer: try again later
    UNEXPECTED = "unexpected"  # nobody foresaw it: the reason already says whom to tell
    OTHER = "other"


def failure_kind(exc: BaseException | None) -> FailureKind:
    """The kind of ``exc`` (None: an error the job runner did not foresee)."""
    if exc is None:
        return FailureKind.UNEXPECTED
    if isinstance(exc, WorkflowError):
        return FailureKind.REFUSED
    if isinstance(exc, schemas.SchemaError | StaleSignatureError | UnreadablePdfError):
        return FailureKind.DATA
    if isinstance(exc, KeyBackendError) or isinstance(exc.__cause__, KeyBackendError):
        return FailureKind.KEY
    if is_transient(exc) or isinstance(exc, OSError | TimeoutError):
        return FailureKind.SERVICE
    return FailureKind.OTHER


def advice(reason: str, exc: BaseException | None = None) -> str:
    """A failure's reason with what to do next (Vietnamese first), chosen by the type of ``exc``; without it (a
    reason read back from storage) the reason is shown as it is: its text is never parsed."""
    kind = failure_kind(exc)
    if kind in (FailureKind.REFUSED, FailureKind.UNEXPECTED):
        return reason
    if kind is FailureKind.SERVICE:
        return (
            "Máy chủ dấu thời gian hoặc kiểm tra chứng thư (OCSP/CRL) không trả lời: thử ký lại sau ít phút / a "
            f"timestamp or certificate-status service did not answer, sign again in a few minutes ({reason})"
        )
    if kind is FailureKind.KEY:
        return (
            f"Khoá ký (HSM/USB token) chưa sẵn sàng: kiểm tra thiết bị rồi ký lại / the signing key failed ({reason})"
        )
    if kind is FailureKind.DATA:
        return f"Dữ liệu có vấn đề: trả lại cho GVCN kiểm tra và ký lại / return it to the teacher ({reason})"
    return f"Lỗi khi ký: thử ký lại; nếu lặp lại, báo quản trị / signing failed, retry or tell the admin ({reason})"


def signing_flow(dep: Any, issuer: Any = None) -> Any:
    """The deferred-signing flow (``workflow.signing``) on this deployment's issuer."""
    from workflow.signing import SigningFlow

    if issuer is None:
        issuer = dep.make_issuer()
    return SigningFlow(issuer, dep.intermediates)


def teacher_sign(
    ctx: AuditTrail, client: str | None, actor: Actor, school: str, item_ids: Sequence[str]
) -> tuple[list[WorkItem], list[str]]:
    """The homeroom teacher signs each checked item now: the document is rendered and the teacher's signature is
    applied with the key the server holds for teachers (HSM), or prepared for the teacher's own registered key
    (USB token / remote service; the item waits in *teacher_signing*). The principal's and the seal's steps are
    held until approval. Items are signed one by one; returns the signed ones and a message per refused one."""
    from workflow.signing import SigningFlowError, signer_of_person

    role = "homeroom_teacher"
    if not actor.can("workflow:teacher_sign", school):
        raise WorkflowError("Không được phép / not allowed: teacher_sign")
    own = signer_of_person(ctx.engine, actor.person_id, school, role)
    action = "teacher_sign_own_key" if own is not None else "teacher_sign"
    flow = signing_flow(ctx.dep)
    done: list[WorkItem] = []
    problems: list[str] = []
    for item_id in item_ids:
        item = get_item(ctx, school, item_id)
        if item is None:
            problems.append(f"Không có hồ sơ {item_id} / no work item {item_id}")
            continue
        try:
            step = find_move(action, item.state, role)
            doc = schemas.parse_document(item.data)
            doc_id = flow.start(doc, {role: own.id} if own is not None else {}, hold_from="principal")
        except (WorkflowError, SigningFlowError) as exc:
            problems.append(f"{item.holder_name}: {exc}")
            continue
        except schemas.SchemaError as exc:
            problems.append(f"{item.holder_name}: {'; '.join(p.message for p in exc.problems)}")
            continue
        except Exception as exc:  # the key, the TSA, OCSP: nothing was signed for this item
            log.warning("teacher signature for %s failed: %s", item_id, exc)
            problems.append(f"{item.holder_name}: {advice(str(exc), exc)}")
            continue
        with Session(ctx.engine) as session:
            session.add(_transition(item, step.action, step.target, actor, role, doc_id))
            changed = session.execute(
                update(WorkItem)
                .where(col(WorkItem.id) == item.id, col(WorkItem.state) == step.source.value)
                .values(state=step.target.value, doc_id=doc_id, updated_at=utcnow(), last_error=None)
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
            if changed != 1:
                session.rollback()
            else:
                session.commit()
        if changed != 1:
            flow.cancel(doc_id)
            problems.append(f"{item.holder_name}: hồ sơ vừa được người khác xử lý / changed meanwhile")
            continue
        ctx.record(client, actor, f"workflow.{step.action}", org=school, target=item.id, detail={"doc_id": doc_id})
        done.append(item)
    return done, problems


def _flow_error(exc: Exception) -> WorkflowError:
    """The signing flow's refusal as a workflow error of the same kind (not found, conflict, or not allowed)."""
    status = getattr(exc, "status", 400)
    kind = NotFoundError if status == 404 else ConflictError if status == 409 else WorkflowError
    return kind(str(exc))


def start_deferred(
    ctx: AuditTrail,
    client: str | None,
    actor: Actor,
    school: str,
    payload: dict[str, Any],
    signers: dict[str, str],
) -> tuple[str, FlowState]:
    """School software starts a document signed with its signers' own keys: (document id, its state)."""
    from workflow.signing import SigningFlowError

    try:
        doc = schemas.parse_document(payload)
    except schemas.SchemaError as exc:
        problems = "; ".join(f"{p.where}: {p.message}" if p.where else p.message for p in exc.problems)
        raise WorkflowError(problems) from None
    if _school_of(doc).code != school:
        raise WorkflowError(f"Văn bản của trường khác ({_school_of(doc).code}) / another school's document")
    flow = signing_flow(ctx.dep)
    try:
        doc_id = flow.start(doc, signers)
        state = flow.advance(doc_id)
    except SigningFlowError as exc:
        raise _flow_error(exc) from None
    ctx.record(client, actor, "signing.start", org=school, target=doc_id, detail={"roles": sorted(signers)})
    return doc_id, state


def cancel_deferred(ctx: AuditTrail, client: str | None, actor: Actor, school: str, doc_id: str) -> None:
    """Withdraw a deferred document of this school that is not issued (its prepared draft files are deleted)."""
    from workflow.signing import SigningFlowError

    with Session(ctx.engine) as session:
        record = session.get(DocumentRecord, doc_id)
        item = session.exec(select(WorkItem).where(WorkItem.doc_id == doc_id)).first()
    flow = signing_flow(ctx.dep)
    if record is None or record.school_code != school or not flow.tasks(doc_id):
        raise NotFoundError("Không có văn bản chờ ký này / no such document awaiting signatures")
    if item is not None:
        raise ConflictError(
            "Văn bản thuộc quy trình duyệt: hãy trả lại hồ sơ / it belongs to the approval workflow: return it"
        )
    try:
        flow.cancel(doc_id)
    except SigningFlowError as exc:
        raise _flow_error(exc) from None
    ctx.record(client, actor, "signing.cancel", org=school, target=doc_id)


def withdraw_documents(dep: Any, doc_ids: Sequence[str]) -> None:
    """Cancel the pending documents of items sent back (teacher-signed but never approved)."""
    if not doc_ids:
        return
    from workflow.signing import SigningFlowError

    flow = signing_flow(dep)
    for doc_id in doc_ids:
        try:
            flow.cancel(doc_id)
        except SigningFlowError as exc:
            log.warning("could not withdraw %s: %s", doc_id, exc)


def check_unchanged(flow: Any, item: WorkItem) -> None:
    """Refuse an item whose data is not what the homeroom teacher signed (or whose teacher step is missing)."""
    from schemas.xml import to_xml
    from signer.xades import envelope, signed_data

    tasks = flow.tasks(item.doc_id) if item.doc_id else []
    if not tasks or not tasks[0].input_xml_sha256:
        raise WorkflowError(
            f"{item.holder_name}: GVCN chưa ký văn bản này / the homeroom teacher has not signed this document"
        )
    if any(t.role == "homeroom_teacher" and t.status != "done" for t in tasks):
        raise WorkflowError(f"{item.holder_name}: chữ ký của GVCN chưa hoàn tất / the teacher's signature is missing")
    signed = signed_data(flow.blobs.get(tasks[0].input_xml_sha256, "xml"))
    current = signed_data(envelope(to_xml(schemas.parse_document(item.data))))
    if signed != current:
        raise WorkflowError(
            f"{item.holder_name}: dữ liệu đã thay đổi sau khi GVCN ký; trả lại để GVCN kiểm tra và ký lại / the data "
            "changed after the homeroom teacher signed; return it to the teacher"
        )


PRINCIPAL_SIGNER = "principal_signer"  # a batch item's input: the principal's own registered key signs it


def _tokens(ctx: AuditTrail, doc_ids: list[str]) -> dict[str, str]:
    with Session(ctx.engine) as session:
        rows = session.exec(select(DocumentRecord.id, DocumentRecord.token).where(col(DocumentRecord.id).in_(doc_ids)))
        return {doc_id: token for doc_id, token in rows}


def _system_move(engine: Any, item_id: str, action: str, note: str, error: str | None = None) -> bool:
    """A move made by the server itself, conditional on the state it starts from; False when not possible now."""
    with Session(engine) as session:
        item = session.get(WorkItem, item_id)
        if item is None:
            return False
        try:
            step = find_move(action, item.state, SYSTEM)
        except WorkflowError:
            return False
        session.add(_transition(item, action, step.target, SYSTEM, SYSTEM, note))
        changed = session.execute(
            update(WorkItem)
            .where(col(WorkItem.id) == item_id, col(WorkItem.state) == step.source.value)
            .values(state=step.target.value, updated_at=utcnow(), last_error=error)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if changed != 1:
            return False
        session.commit()
        return True


def _item_of(engine: Any, row: Any) -> WorkItem:
    with Session(engine) as session:
        item = session.get(WorkItem, row["input"]["workflow_item"])
        if item is None or item.doc_id != row["doc_id"]:
            raise WorkflowError(f"Hồ sơ của văn bản {row['doc_id']} không còn / the work item is gone")
        session.expunge(item)
        return item


def retryable(ctx: AuditTrail, progress: dict[str, Any], items: Sequence[WorkItem]) -> list[str]:
    """The batch's failed or cancelled items that can simply be approved again: back in the queue as
    teacher-signed, with data unchanged since the teacher signed (the others must go back to the teacher)."""
    ended = {d["id"] for d in progress["documents"] if d["state"] in ("failed", "cancelled")}
    flow = signing_flow(ctx.dep)
    out = []
    for item in items:
        if item.doc_id in ended and item.state == State.TEACHER_SIGNED.value:
            try:
                check_unchanged(flow, item)
            except (WorkflowError, OSError):
                continue
            out.append(item.id)
    return out


# --- after issue: corrections and revocations ------------------------------------------------------------------


def supersede(ctx: AuditTrail, old_id: str, new: DocumentRecord, actor: str) -> None:
    """Mark ``old_id`` superseded by ``new`` and log a ``supersede`` entry naming the old issue entry's leaf."""
    with Session(ctx.engine) as session:
        old = session.get(DocumentRecord, old_id)
        assert old is not None and old.leaf_index is not None
        old_leaf = old.leaf_index
    entry = Entry(
        type="supersede",
        doc_id=new.id,
        pdf_sha256=new.sha256_pdf or "",
        xml_sha256=new.sha256_xml or "",
        signer_cert_sha256="",
        time=datetime.now(UTC),
        refers=old_leaf,
    )
    try:
        leaf = lifecycle.supersede(ctx.engine, ctx.ledger, entry, old_id, new.id)
    except lifecycle.StatusChanged:  # superseded (or revoked) meanwhile: the entry rolled back with it
        raise WorkflowError(f"Văn bản {old_id} không còn hiệu lực / {old_id} is no longer issued") from None
    ctx.record(
        None, actor, "document.supersede", org=new.school_code, target=old_id, detail={"by": new.id, "leaf_index": leaf}
    )


def start_correction(
    ctx: AuditTrail, client: str | None, actor: Actor, school: str, doc_id: str, payload: Any
) -> WorkItem:
    """A corrected version of an issued document: a new work item that will supersede it once issued."""
    record = _issued_record(ctx, school, doc_id)
    (item,) = submit(ctx, client, actor, school, [payload], supersedes=record.id)
    return item


def _issued_record(ctx: AuditTrail, school: str, doc_id: str) -> DocumentRecord:
    with Session(ctx.engine) as session:
        record = session.get(DocumentRecord, doc_id)
        if record is None or record.school_code != school:
            raise NotFoundError(f"Không có văn bản {doc_id} / no document {doc_id}")
        session.expunge(record)
    if record.status != DocumentStatus.ISSUED.value:
        raise WorkflowError(f"Văn bản {doc_id} không còn hiệu lực ({record.status}) / the document is {record.status}")
    return record


@dataclass(frozen=True)
class Revocation:
    doc_id: str
    leaf_index: int
    statement_sha256: str


def revocation_statement(record: DocumentRecord, reason: str, when: datetime, by: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ThuHoiVanBan xmlns="urn:sealtrail:revocation:1">'
        f"<MaVanBan>{escape(record.id)}</MaVanBan>"
        f"<MaTruong>{escape(record.school_code)}</MaTruong>"
        f"<ViTriSoCai>{record.leaf_index}</ViTriSoCai>"
        f"<MaBamPdf>{record.sha256_pdf}</MaBamPdf>"
        f"<LyDo>{escape(reason)}</LyDo>"
        f"<NguoiThuHoi>{escape(by)}</NguoiThuHoi>"
        f"<ThoiGian>{when.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}</ThoiGian>"
        "</ThuHoiVanBan>"
    ).encode()


def revoke(ctx: AuditTrail, client: str | None, actor: Actor, school: str, doc_id: str, reason: str) -> Revocation:
    """Revoke an issued document: a statement signed with the school's seal (XAdES, timestamped), stored, and a
    ``revoke`` log entry naming the issue entry's leaf, written with the registry change in one transaction."""
    reason = reason.strip()
    if len(reason) < 5:
        raise WorkflowError("Cần ghi rõ lý do thu hồi / a reason is required")
    record = _issued_record(ctx, school, doc_id)
    from signer.xades import XadesSigner, XmlSignatureRequest, envelope

    dep = ctx.dep
    seal = dep.signing_keys["seal"]
    now = datetime.now(UTC).replace(microsecond=0)
    statement = revocation_statement(record, reason, now, actor.name)
    signed = XadesSigner(timestamp_urls=dep.timestamp_urls, trust_roots=dep.trust_roots).sign(
        envelope(statement), seal, XmlSignatureRequest("seal", "Con dấu của đơn vị")
    )
    digest = dep.blobs.put(signed, "xml")
    entry = Entry(
        type="revoke",
        doc_id=record.id,
        pdf_sha256="",
        xml_sha256=digest,
        signer_cert_sha256=hashlib.sha256(seal.certificate.dump()).hexdigest(),
        time=now,
        refers=record.leaf_index,
    )
    try:
        leaf = lifecycle.revoke(ctx.engine, ctx.ledger, entry, record.id, reason)
    except lifecycle.StatusChanged:  # revoked meanwhile by someone else: the log entry rolled back with it
        raise WorkflowError(f"Văn bản {doc_id} vừa bị thay đổi / the document changed meanwhile") from None
    ctx.record(
        client,
        actor,
        "document.revoke",
        org=school,
        target=doc_id,
        detail={"reason": reason[:200], "leaf_index": leaf, "statement_sha256": digest},
    )
    return Revocation(doc_id, leaf, digest)
