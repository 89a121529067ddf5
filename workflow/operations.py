"""Workflow operations on the database: drafts, transitions, the principal's batch approval and signing,
corrections that supersede, and signed revocations. The rules themselves live in ``workflow.states``."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from fastapi import Request
from sqlalchemy import update
from sqlmodel import Session, col, select

import schemas
from accounts.permissions import Actor
from ledger.entry import Entry
from registry.records import DocumentRecord, DocumentStatus
from sealtrail.web.deps import AccountsContext
from workflow.states import (
    SYSTEM,
    State,
    Transition,
    WorkflowError,
    WorkItem,
    changes,
    find_move,
    new_item_id,
    utcnow,
)

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
    ctx: AccountsContext,
    request: Request | None,
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
            doc = schemas.parse_document(payload)
        except schemas.SchemaError as exc:
            problems += [f"#{i}: {p}" for p in exc.problems]
            continue
        if _school_of(doc).code != school:
            problems.append(f"#{i}: văn bản của trường khác ({_school_of(doc).code}) / another school's document")
        docs.append(doc)
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
        ctx.record(request, actor, "workflow.submit", org=school, target=item.id, detail={"version": item.version})
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


def get_item(ctx: AccountsContext, school: str, item_id: str) -> WorkItem | None:
    with Session(ctx.engine) as session:
        item = session.get(WorkItem, item_id)
        if item is None or item.school_code != school:  # another school's item does not exist for this caller
            return None
        session.expunge(item)
        return item


def diff(ctx: AccountsContext, item: WorkItem) -> list[tuple[str, Any, Any]]:
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


def history(ctx: AccountsContext, item_id: str) -> list[Transition]:
    with Session(ctx.engine) as session:
        rows = session.exec(select(Transition).where(Transition.item_id == item_id).order_by(col(Transition.id))).all()
        for row in rows:
            session.expunge(row)
        return list(rows)


def move(
    ctx: AccountsContext,
    request: Request | None,
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
        ctx.record(request, actor, f"workflow.{action}", org=school, target=item.id, detail={"note": note[:200]})
    return moved


def queue(
    ctx: AccountsContext, school: str, class_name: str = "", school_year: str = "", state: str = ""
) -> list[WorkItem]:
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


def filters(ctx: AccountsContext, school: str) -> tuple[list[str], list[str]]:
    """The classes and school years that have work items in this school (for the queue's filter menus)."""
    with Session(ctx.engine) as session:
        rows = session.exec(
            select(WorkItem.class_name, WorkItem.school_year).where(WorkItem.school_code == school).distinct()
        ).all()
    return sorted({c for c, _ in rows if c}), sorted({y for _, y in rows if y}, reverse=True)


# --- signing: the teacher's step, the principal's approval as a batch job ----------------------------------------


def advice(reason: str) -> str:
    """A failure's reason with what to do next (Vietnamese first)."""
    if reason.startswith("WorkflowError: "):  # the workflow's own refusals already say what to do
        return reason.removeprefix("WorkflowError: ")
    low = reason.lower()
    if "timestamp" in low or "tsa" in low or "dấu thời gian" in low:
        return f"Máy chủ dấu thời gian không trả lời: thử ký lại sau ít phút / the timestamp server failed ({reason})"
    if "ocsp" in low or "crl" in low or "revocation" in low:
        return f"Không kiểm tra được chứng thư (OCSP/CRL): thử ký lại sau ít phút / revocation check failed ({reason})"
    if "keybackend" in low or "pin" in low or "token" in low or "pkcs" in low:
        return (
            f"Khoá ký (HSM/USB token) chưa sẵn sàng: kiểm tra thiết bị rồi ký lại / the signing key failed ({reason})"
        )
    if "dữ liệu" in low or "invalid data" in low or "đã thay đổi" in low:
        return f"Dữ liệu có vấn đề: trả lại cho GVCN kiểm tra và ký lại / return it to the teacher ({reason})"
    if "lỗi không lường trước" in low:
        return reason
    return f"Lỗi khi ký: thử ký lại; nếu lặp lại, báo quản trị / signing failed, retry or tell the admin ({reason})"


def signing_flow(dep: Any, issuer: Any = None) -> Any:
    """The deferred-signing flow (``workflow.signing``) on this deployment's issuer."""
    from workflow.signing import SigningFlow

    if issuer is None:
        from sealtrail.demo import issuer_for

        issuer = issuer_for(dep)
    return SigningFlow(issuer, dep.intermediates)


def teacher_sign(
    ctx: AccountsContext, request: Request | None, actor: Actor, school: str, item_ids: Sequence[str]
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
            problems.append(f"{item.holder_name}: {advice(f'{type(exc).__name__}: {exc}')}")
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
        ctx.record(request, actor, f"workflow.{step.action}", org=school, target=item.id, detail={"doc_id": doc_id})
        done.append(item)
    return done, problems


def start_deferred(
    ctx: AccountsContext,
    request: Request | None,
    actor: Actor,
    school: str,
    payload: dict[str, Any],
    signers: dict[str, str],
) -> tuple[str, str]:
    """School software starts a document signed with its signers' own keys: (document id, its state)."""
    from fastapi import HTTPException

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
        raise HTTPException(exc.status if exc.status != 400 else 422, str(exc)) from None
    ctx.record(request, actor, "signing.start", org=school, target=doc_id, detail={"roles": sorted(signers)})
    return doc_id, state


def cancel_deferred(ctx: AccountsContext, request: Request | None, actor: Actor, school: str, doc_id: str) -> None:
    """Withdraw a deferred document of this school that is not issued (its prepared draft files are deleted)."""
    from fastapi import HTTPException

    from workflow.signing import SigningFlowError

    with Session(ctx.engine) as session:
        record = session.get(DocumentRecord, doc_id)
        item = session.exec(select(WorkItem).where(WorkItem.doc_id == doc_id)).first()
    flow = signing_flow(ctx.dep)
    if record is None or record.school_code != school or not flow.tasks(doc_id):
        raise HTTPException(404, "Không có văn bản chờ ký này / no such document awaiting signatures")
    if item is not None:
        raise HTTPException(
            409, "Văn bản thuộc quy trình duyệt: hãy trả lại hồ sơ / it belongs to the approval workflow: return it"
        )
    try:
        flow.cancel(doc_id)
    except SigningFlowError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    ctx.record(request, actor, "signing.cancel", org=school, target=doc_id)


def own_key_signed(dep: Any, task_id: str) -> None:
    """After a signer's own key returned the signature of step ``task_id``: an item waiting for its teacher's
    token moves on to the principal's queue; an approved one signed by the principal's token (then sealed and
    issued) finishes its batch item."""
    from jobs import batches as jobs
    from workflow.signing import SigningTask

    with Session(dep.engine) as session:
        task = session.get(SigningTask, task_id)
        if task is None:
            return
        doc_id = task.doc_id
        item = session.exec(select(WorkItem).where(WorkItem.doc_id == doc_id)).first()
        if item is not None and item.state == State.APPROVED.value:
            session.close()
            jobs.token_signed(dep, doc_id)
            return
        if item is None or item.state != State.TEACHER_SIGNING.value:
            return
        tasks = signing_flow(dep).tasks(doc_id)
        if not any(t.role == "homeroom_teacher" and t.status == "done" for t in tasks):
            return
        step = find_move("teacher_key_signed", item.state, SYSTEM)
        session.add(_transition(item, step.action, step.target, SYSTEM, SYSTEM, doc_id))
        session.execute(
            update(WorkItem)
            .where(col(WorkItem.id) == item.id, col(WorkItem.state) == step.source.value)
            .values(state=step.target.value, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        session.commit()


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


def start_batch(
    ctx: AccountsContext, request: Request | None, actor: Actor, school: str, item_ids: Sequence[str]
) -> str:
    """Approve the chosen items (all must be teacher-signed) and queue them as one batch job that adds the
    principal's signature and the seal and issues each document. Returns the batch id. An item whose data
    changed after the teacher signed is refused by the job (``check_unchanged``): it fails with what to do and
    the rest of the class goes on. A principal with their own registered key gets the principal's steps handed
    to it (the items wait for ``sealtrail agent``; the seal follows as each one is signed)."""
    from jobs import batches as jobs
    from workflow.signing import signer_of_person

    if not item_ids:
        raise WorkflowError("Chưa chọn hồ sơ nào / choose at least one document")
    own = signer_of_person(ctx.engine, actor.person_id, school, "principal")
    moved = move(ctx, request, actor, school, item_ids, "approve")
    tokens = _tokens(ctx, [str(i.doc_id) for i in moved])
    extra = {PRINCIPAL_SIGNER: own.id} if own is not None else {}
    rows = [
        {
            "doc_id": i.doc_id,
            "token": tokens[str(i.doc_id)],
            "kind": i.kind,
            "input": {jobs.WORKFLOW_INPUT: i.id, **extra},
        }
        for i in moved
    ]
    try:
        submitted = jobs.submit_rows(ctx.dep, rows, school, actor.name)
    except Exception:
        for item in moved:
            _system_move(ctx.engine, item.id, "signing_failed", "không xếp được vào hàng đợi / could not be queued")
        raise
    ctx.record(request, actor, "sign.batch", org=school, target=submitted.batch_id, detail={"items": len(rows)})
    return submitted.batch_id


def _tokens(ctx: AccountsContext, doc_ids: list[str]) -> dict[str, str]:
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


def _job_context(rt: Any) -> AccountsContext:
    ctx = getattr(rt, "accounts", None)
    if ctx is None:
        ctx = rt.accounts = AccountsContext(rt.dep)
    return ctx  # type: ignore[no-any-return]


def _item_of(engine: Any, row: Any) -> WorkItem:
    with Session(engine) as session:
        item = session.get(WorkItem, row["input"]["workflow_item"])
        if item is None or item.doc_id != row["doc_id"]:
            raise WorkflowError(f"Hồ sơ của văn bản {row['doc_id']} không còn / the work item is gone")
        session.expunge(item)
        return item


def run_job_item(rt: Any, row: Any) -> bool:
    """A batch job's step for an approved item: add the principal's signature and the seal to the teacher-signed
    document and publish it (``Issuer.publish`` flips pending → issued once). Exceptions are the job's to judge.
    True when the principal's step went to their own key instead: the document waits for their token."""
    item = _item_of(rt.dep.engine, row)
    if item.state != State.APPROVED.value:
        raise WorkflowError(f"{item.holder_name}: hồ sơ không còn ở trạng thái đã duyệt ({item.state}) / not approved")
    flow = signing_flow(rt.dep, rt.issuer())
    check_unchanged(flow, item)
    own = row["input"].get(PRINCIPAL_SIGNER)
    state = flow.release(str(item.doc_id), {"principal": own} if own else None)
    if own and state == "awaiting principal":
        return True
    if state != "issued":
        raise WorkflowError(f"{item.holder_name}: văn bản chưa cấp được ({state}) / not issued ({state})")
    return False


def job_item_issued(rt: Any, row: Any) -> None:
    """The document is published: the work item becomes sealed and issued and a corrected document supersedes
    its original. Safe to run again (each step is conditional)."""
    ctx = _job_context(rt)
    item = _item_of(rt.dep.engine, row)
    if item.state == State.APPROVED.value:
        for action in ("seal", "issue"):
            _system_move(rt.dep.engine, item.id, action, str(item.doc_id))
    with Session(rt.dep.engine) as session:
        record = session.get(DocumentRecord, str(item.doc_id))
        old = session.get(DocumentRecord, item.supersedes) if item.supersedes else None
        for row_ in (record, old):
            if row_ is not None:
                session.expunge(row_)
    if record is None:
        return
    if old is not None and old.status == DocumentStatus.ISSUED.value:
        with contextlib.suppress(WorkflowError):  # superseded by a run that died just after; logged once
            supersede(ctx, old.id, record, _batch_actor(rt, row))
    if item.state == State.APPROVED.value:
        ctx.record(
            None, _batch_actor(rt, row), "sign.issued", org=item.school_code, target=record.id,
            detail={"item": item.id, "leaf_index": record.leaf_index},
        )  # fmt: skip


def job_item_failed(rt: Any, row: Any, reason: str) -> None:
    """The job gave up on an approved item: it goes back to the principal's queue with what to do."""
    try:
        item = _item_of(rt.dep.engine, row)
    except WorkflowError:
        return
    text = advice(reason)[:1000]
    if _system_move(rt.dep.engine, item.id, "signing_failed", text, error=text):
        _job_context(rt).record(
            None, _batch_actor(rt, row), "sign.failed", org=item.school_code, target=item.id, outcome="failed",
            detail={"error": reason[:300]},
        )  # fmt: skip


def _batch_actor(rt: Any, row: Any) -> str:
    from jobs import batches as jobs

    with rt.dep.engine.connect() as conn:
        name = conn.execute(select(jobs.batches.c.created_by).where(jobs.batches.c.id == row["batch_id"])).scalar()
    return str(name or SYSTEM)


def cancel_batch(ctx: AccountsContext, request: Request | None, actor: Actor, school: str, batch_id: str) -> int:
    """Cancel the batch's items not started yet; their work items go back to the principal (teacher-signed)."""
    from jobs import batches as jobs

    jobs.cancel_batch(ctx.dep, batch_id)
    progress = jobs.batch_progress(ctx.dep, batch_id, school)
    assert progress is not None
    cancelled = [d["id"] for d in progress["documents"] if d["state"] == "cancelled"]
    n = 0
    with Session(ctx.engine) as session:
        ids = [i.id for i in session.exec(select(WorkItem).where(col(WorkItem.doc_id).in_(cancelled)))]
    for item_id in ids:
        n += _system_move(ctx.engine, item_id, "withdraw", "lô bị huỷ / batch cancelled")
    ctx.record(request, actor, "sign.cancel", org=school, target=batch_id, detail={"items": n})
    return n


def retryable(ctx: AccountsContext, progress: dict[str, Any], items: Sequence[WorkItem]) -> list[str]:
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


def batch_progress(ctx: AccountsContext, school: str, batch_id: str) -> tuple[dict[str, Any], list[WorkItem]] | None:
    """The job's progress (counts, failures with reasons) and the work items of its documents."""
    from jobs import batches as jobs

    progress = jobs.batch_progress(ctx.dep, batch_id, school)
    if progress is None:
        return None
    doc_ids = [d["id"] for d in progress["documents"]]
    with Session(ctx.engine) as session:
        items = session.exec(select(WorkItem).where(col(WorkItem.doc_id).in_(doc_ids))).all()
        for item in items:
            session.expunge(item)
    return progress, sorted(items, key=lambda i: i.holder_name)


# --- after issue: corrections and revocations ------------------------------------------------------------------


def supersede(ctx: AccountsContext, old_id: str, new: DocumentRecord, actor: str) -> None:
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
    table = DocumentRecord.__table__  # type: ignore[attr-defined]
    with ctx.engine.begin() as conn:
        (leaf,) = ctx.ledger.append(conn, [entry])
        changed = conn.execute(
            table.update()
            .where(table.c.id == old_id, table.c.status == DocumentStatus.ISSUED.value)
            .values(
                status=DocumentStatus.SUPERSEDED.value,
                superseded_by=new.id,
                status_changed_at=entry.time,
                status_reason=f"Đính chính bằng {new.id}",
            )
        ).rowcount
        if changed != 1:  # superseded (or revoked) meanwhile: this entry rolls back with the transaction
            raise WorkflowError(f"Văn bản {old_id} không còn hiệu lực / {old_id} is no longer issued")
    ctx.record(
        None, actor, "document.supersede", org=new.school_code, target=old_id, detail={"by": new.id, "leaf_index": leaf}
    )


def start_correction(
    ctx: AccountsContext, request: Request | None, actor: Actor, school: str, doc_id: str, payload: Any
) -> WorkItem:
    """A corrected version of an issued document: a new work item that will supersede it once issued."""
    record = _issued_record(ctx, school, doc_id)
    (item,) = submit(ctx, request, actor, school, [payload], supersedes=record.id)
    return item


def _issued_record(ctx: AccountsContext, school: str, doc_id: str) -> DocumentRecord:
    with Session(ctx.engine) as session:
        record = session.get(DocumentRecord, doc_id)
        if record is None or record.school_code != school:
            raise LookupError(doc_id)
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


def revoke(
    ctx: AccountsContext, request: Request | None, actor: Actor, school: str, doc_id: str, reason: str
) -> Revocation:
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
    table = DocumentRecord.__table__  # type: ignore[attr-defined]
    with ctx.engine.begin() as conn:
        (leaf,) = ctx.ledger.append(conn, [entry])
        changed = conn.execute(
            table.update()
            .where(table.c.id == record.id, table.c.status == DocumentStatus.ISSUED.value)
            .values(status=DocumentStatus.REVOKED.value, status_reason=reason[:500], status_changed_at=now)
        ).rowcount
        if changed != 1:  # revoked meanwhile by someone else: roll back the log entry with it
            raise WorkflowError(f"Văn bản {doc_id} vừa bị thay đổi / the document changed meanwhile")
    ctx.record(
        request,
        actor,
        "document.revoke",
        org=school,
        target=doc_id,
        detail={"reason": reason[:200], "leaf_index": leaf, "statement_sha256": digest},
    )
    return Revocation(doc_id, leaf, digest)
