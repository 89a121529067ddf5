"""Workflow operations on the database: drafts, transitions, the principal's batch approval and signing,
corrections that supersede, and signed revocations. The rules themselves live in ``signer.workflow``."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from fastapi import Request
from sqlalchemy import update
from sqlmodel import Session, col, select

import schemas
from ledger.entry import Entry
from ledger.registry import DocumentRecord, DocumentStatus
from sealtrail.accounts.deps import AccountsContext
from sealtrail.accounts.permissions import Actor
from signer.workflow import (
    SYSTEM,
    SignFn,
    SigningBatch,
    State,
    Transition,
    WorkflowError,
    WorkItem,
    find_move,
    new_batch_id,
    new_item_id,
    utcnow,
)

log = logging.getLogger(__name__)
REVISABLE = (State.DRAFT, State.CHECKED, State.TEACHER_SIGNED)


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
    """Apply ``action`` to each item, all or nothing; each step must be allowed for one of the actor's roles."""
    moved: list[WorkItem] = []
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
                # Conditional on the state we read: two people acting on the same item at once cannot both
                # move it (so an item is never approved, and signed, twice).
                changed = session.execute(
                    update(WorkItem)
                    .where(col(WorkItem.id) == item_id, col(WorkItem.state) == step.source.value)
                    .values(state=step.target.value, updated_at=utcnow(), last_error=None)
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


# --- approving and signing -------------------------------------------------------------------------------------


def what_to_do(exc: BaseException) -> str:
    """A failure as a message that says what to do next (Vietnamese first)."""
    text = str(exc)
    name = type(exc).__name__
    if "Timestamp" in name or "timestamp" in text.lower() or "TSA" in text:
        return f"Máy chủ dấu thời gian không trả lời: thử ký lại sau ít phút / the timestamp server failed ({text})"
    if "KeyBackend" in name or "PIN" in text or "token" in text.lower():
        return f"Khoá ký (HSM/USB token) chưa sẵn sàng: kiểm tra thiết bị rồi ký lại / the signing key failed ({text})"
    if isinstance(exc, schemas.SchemaError):
        return f"Dữ liệu không hợp lệ: trả lại cho GVCN sửa / the data is invalid, return it for correction ({text})"
    return f"Lỗi khi ký: thử lại; nếu lặp lại, báo quản trị / signing failed, retry or tell the admin ({name}: {text})"


def start_batch(
    ctx: AccountsContext, request: Request | None, actor: Actor, school: str, item_ids: Sequence[str]
) -> SigningBatch:
    """Approve the chosen items (all must be waiting for the principal) and open a signing batch for them."""
    if not item_ids:
        raise WorkflowError("Chưa chọn hồ sơ nào / choose at least one document")
    move(ctx, request, actor, school, item_ids, "approve")
    batch = SigningBatch(id=new_batch_id(), school_code=school, actor=actor.name, item_ids=list(item_ids))
    with Session(ctx.engine) as session:
        session.add(batch)
        session.commit()
        session.refresh(batch)
        session.expunge(batch)
    ctx.record(request, actor, "sign.batch", org=school, target=batch.id, detail={"items": len(item_ids)})
    return batch


def run_batch(ctx: AccountsContext, batch_id: str, sign: SignFn, ip: str = "") -> SigningBatch:
    """Sign and issue each approved item of the batch; a failure leaves that item waiting (with what to do) and
    goes on with the rest. Safe to run again: items already issued are skipped."""
    with Session(ctx.engine) as session:
        batch = session.get(SigningBatch, batch_id)
        assert batch is not None
        session.expunge(batch)
    for item_id in batch.item_ids:
        with Session(ctx.engine) as session:
            item = session.get(WorkItem, item_id)
            assert item is not None
            session.expunge(item)
        if item.state != State.APPROVED.value:
            continue
        try:
            doc = schemas.parse_document(item.data)
            issued = sign(doc)
        except Exception as exc:
            log.warning("signing %s failed: %s", item_id, exc)
            _finish_item(ctx, item_id, None, what_to_do(exc))
            _count(ctx, batch_id, failed=1)
            ctx.record(
                None,
                batch.actor,
                "sign.failed",
                org=batch.school_code,
                target=item_id,
                outcome="failed",
                detail={"error": str(exc)[:300]},
            )
            continue
        _finish_item(ctx, item_id, issued, None)
        if item.supersedes:
            supersede(ctx, item.supersedes, issued.record, batch.actor)
        _count(ctx, batch_id, done=1)
        ctx.record(
            None,
            batch.actor,
            "sign.issued",
            org=batch.school_code,
            target=issued.doc_id,
            detail={"item": item_id, "leaf_index": issued.leaf_index},
        )
    with Session(ctx.engine) as session:
        row = session.get(SigningBatch, batch_id)
        assert row is not None
        row.state, row.finished_at = "finished", utcnow()
        session.add(row)
        session.commit()
        session.refresh(row)
        session.expunge(row)
    return row


def _count(ctx: AccountsContext, batch_id: str, done: int = 0, failed: int = 0) -> None:
    with Session(ctx.engine) as session:
        row = session.get(SigningBatch, batch_id)
        assert row is not None
        row.done += done
        row.failed += failed
        session.add(row)
        session.commit()


def _finish_item(ctx: AccountsContext, item_id: str, issued: Any, error: str | None) -> None:
    with Session(ctx.engine) as session:
        item = session.get(WorkItem, item_id)
        assert item is not None
        if issued is None:
            step = find_move("signing_failed", item.state, SYSTEM)
            session.add(_transition(item, step.action, step.target, SYSTEM, SYSTEM, error or ""))
            item.state, item.last_error = step.target.value, error
        else:
            for action in ("seal", "issue"):
                step = find_move(action, item.state, SYSTEM)
                session.add(_transition(item, action, step.target, SYSTEM, SYSTEM, issued.doc_id))
                item.state = step.target.value
            item.doc_id, item.last_error = issued.doc_id, None
        item.updated_at = utcnow()
        session.add(item)
        session.commit()


def batch_progress(ctx: AccountsContext, school: str, batch_id: str) -> tuple[SigningBatch, list[WorkItem]] | None:
    with Session(ctx.engine) as session:
        batch = session.get(SigningBatch, batch_id)
        if batch is None or batch.school_code != school:
            return None
        items = session.exec(select(WorkItem).where(col(WorkItem.id).in_(batch.item_ids))).all()
        session.expunge(batch)
        for item in items:
            session.expunge(item)
        return batch, sorted(items, key=lambda i: i.holder_name)


_running: dict[str, threading.Thread] = {}
_running_lock = threading.Lock()


def run_in_background(ctx: AccountsContext, batch_id: str, sign: SignFn) -> threading.Thread:
    """Sign the batch on a thread of this process (one thread per batch, never two)."""
    with _running_lock:
        alive = _running.get(batch_id)
        if alive is not None and alive.is_alive():
            return alive
        thread = threading.Thread(target=run_batch, args=(ctx, batch_id, sign), name=f"batch-{batch_id}", daemon=True)
        _running[batch_id] = thread
        thread.start()
        return thread


def is_stalled(batch: SigningBatch) -> bool:
    """A batch marked running that no thread of this process is signing: the server stopped while it ran.
    (With several replicas this cannot tell; that is the job queue's work, see the report of issue #8.)"""
    with _running_lock:
        thread = _running.get(batch.id)
    return batch.state == "running" and (thread is None or not thread.is_alive())


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
        conn.execute(
            table.update()
            .where(table.c.id == old_id)
            .values(
                status=DocumentStatus.SUPERSEDED.value,
                superseded_by=new.id,
                status_changed_at=entry.time,
                status_reason=f"Đính chính bằng {new.id}",
            )
        )
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
