"""The approval workflow's batch jobs: approving a class queues one batch whose items add the principal's
signature and the seal to each teacher-signed document and publish it; the work items follow their documents
(sealed, issued, or back to the principal with what to do). Registered in the jobs' handler registry under
``WORKFLOW_INPUT`` (``jobs/__init__.py``)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import RowMapping
from sqlmodel import Session, col, select

from accounts.permissions import Actor
from jobs import batches as jobs
from jobs.host import Installation
from registry.records import DocumentRecord, DocumentStatus
from workflow.audit import AuditTrail
from workflow.operations import (
    PRINCIPAL_SIGNER,
    _item_of,
    _system_move,
    _tokens,
    _transition,
    advice,
    check_unchanged,
    move,
    signing_flow,
    supersede,
)
from workflow.states import SYSTEM, State, WorkflowError, WorkItem, find_move, utcnow


def own_key_signed(dep: Installation, task_id: str) -> None:
    """After a signer's own key returned the signature of step ``task_id``: an item waiting for its teacher's
    token moves on to the principal's queue; an approved one signed by the principal's token (then sealed and
    issued) finishes its batch item."""
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


def start_batch(ctx: AuditTrail, client: str | None, actor: Actor, school: str, item_ids: Sequence[str]) -> str:
    """Approve the chosen items (all must be teacher-signed) and queue them as one batch job that adds the
    principal's signature and the seal and issues each document. Returns the batch id. An item whose data
    changed after the teacher signed is refused by the job (``check_unchanged``): it fails with what to do and
    the rest of the class goes on. A principal with their own registered key gets the principal's steps handed
    to it (the items wait for ``sealtrail agent``; the seal follows as each one is signed)."""
    from workflow.signing import signer_of_person

    if not item_ids:
        raise WorkflowError("Chưa chọn hồ sơ nào / choose at least one document")
    own = signer_of_person(ctx.engine, actor.person_id, school, "principal")
    moved = move(ctx, client, actor, school, item_ids, "approve")
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
    ctx.record(client, actor, "sign.batch", org=school, target=submitted.batch_id, detail={"items": len(rows)})
    return submitted.batch_id


def _job_context(rt: jobs._Runtime) -> AuditTrail:
    """The audit trail of this runtime's installation (made once per runtime)."""
    ctx = rt.extras.get("audit")
    if not isinstance(ctx, AuditTrail):
        ctx = rt.extras["audit"] = AuditTrail(rt.dep)
    return ctx


def run_job_item(rt: jobs._Runtime, row: RowMapping) -> bool:
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
    if own and state.awaiting("principal"):
        return True
    if not state.issued:
        raise WorkflowError(f"{item.holder_name}: văn bản chưa cấp được ({state}) / not issued ({state})")
    return False


def job_item_issued(rt: jobs._Runtime, row: RowMapping) -> None:
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


def job_item_failed(rt: jobs._Runtime, row: RowMapping, reason: str, exc: BaseException | None = None) -> None:
    """The job gave up on an approved item (``exc``: why; None if nobody foresaw it): it goes back to the
    principal's queue with what to do, chosen by the error's type."""
    try:
        item = _item_of(rt.dep.engine, row)
    except WorkflowError:
        return
    text = advice(reason, exc)[:1000]
    if _system_move(rt.dep.engine, item.id, "signing_failed", text, error=text):
        _job_context(rt).record(
            None, _batch_actor(rt, row), "sign.failed", org=item.school_code, target=item.id, outcome="failed",
            detail={"error": reason[:300]},
        )  # fmt: skip


def _batch_actor(rt: jobs._Runtime, row: RowMapping) -> str:
    with rt.dep.engine.connect() as conn:
        name = conn.execute(select(jobs.batches.c.created_by).where(jobs.batches.c.id == row["batch_id"])).scalar()
    return str(name or SYSTEM)


def cancel_batch(ctx: AuditTrail, client: str | None, actor: Actor, school: str, batch_id: str) -> int:
    """Cancel the batch's items not started yet; their work items go back to the principal (teacher-signed)."""
    jobs.cancel_batch(ctx.dep, batch_id)
    progress = jobs.batch_progress(ctx.dep, batch_id, school)
    assert progress is not None
    cancelled = [d["id"] for d in progress["documents"] if d["state"] == "cancelled"]
    n = 0
    with Session(ctx.engine) as session:
        ids = [i.id for i in session.exec(select(WorkItem).where(col(WorkItem.doc_id).in_(cancelled)))]
    for item_id in ids:
        n += _system_move(ctx.engine, item_id, "withdraw", "lô bị huỷ / batch cancelled")
    ctx.record(client, actor, "sign.cancel", org=school, target=batch_id, detail={"items": n})
    return n


def batch_progress(ctx: AuditTrail, school: str, batch_id: str) -> tuple[dict[str, Any], list[WorkItem]] | None:
    """The job's progress (counts, failures with reasons) and the work items of its documents."""
    progress = jobs.batch_progress(ctx.dep, batch_id, school)
    if progress is None:
        return None
    doc_ids = [d["id"] for d in progress["documents"]]
    with Session(ctx.engine) as session:
        items = session.exec(select(WorkItem).where(col(WorkItem.doc_id).in_(doc_ids))).all()
        for item in items:
            session.expunge(item)
    return progress, sorted(items, key=lambda i: i.holder_name)
