"""The approval workflow: draft → checked → teacher-signed → approved → sealed → issued, as a state machine.

Each document on its way to being issued is a *work item*. Who may move it along is a table (``TRANSITIONS``):
the homeroom teacher checks and signs, the principal approves and signs, the school's seal closes it, and
issuing puts it in the public log. Every transition is written as a row (who, in which role, when, a note), so
the history of a document is never lost. A correction after issue is a new work item that *supersedes* the
issued document; when it is issued, the old one is marked superseded and a ``supersede`` entry names its leaf.

Signing is a real step of its own for each signer. When the homeroom teacher signs, the document is rendered
and their signature applied at once (the key the server holds for teachers, in the HSM), or prepared for their
own USB token or remote signing service (state *teacher_signing* until ``sealtrail agent`` returns it); the
principal's and the seal's steps are held. The principal's approval runs as a durable batch job
(``jobs.batches``) that adds the principal's signature and the seal to the teacher-signed PDF and XML
(incremental revisions: the teacher's signature stays valid) and publishes it, exactly once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel

from errors import PermanentError


def utcnow() -> datetime:
    return datetime.now(UTC)


class State(StrEnum):
    DRAFT = "draft"
    CHECKED = "checked"
    TEACHER_SIGNING = "teacher_signing"
    TEACHER_SIGNED = "teacher_signed"
    APPROVED = "approved"
    SEALED = "sealed"
    ISSUED = "issued"


STATE_TEXT = {
    State.DRAFT: "Bản nháp",
    State.CHECKED: "GVCN đã kiểm tra",
    State.TEACHER_SIGNING: "Chờ GVCN ký bằng khoá riêng (USB token / ký từ xa)",
    State.TEACHER_SIGNED: "GVCN đã ký, chờ hiệu trưởng duyệt",
    State.APPROVED: "Hiệu trưởng đã duyệt, đang ký",
    State.SEALED: "Đã đóng dấu",
    State.ISSUED: "Đã cấp",
}


@dataclass(frozen=True)
class Move:
    """One allowed transition: from a state to another, by one of the roles."""

    action: str
    source: State
    target: State
    roles: frozenset[str]


def _move(action: str, source: State, target: State, *roles: str) -> Move:
    return Move(action, source, target, frozenset(roles))


SYSTEM = "system"  # the server itself (the seal and the log), acting on the principal's approval
TRANSITIONS: tuple[Move, ...] = (
    _move("check", State.DRAFT, State.CHECKED, "homeroom_teacher"),
    _move("teacher_sign", State.CHECKED, State.TEACHER_SIGNED, "homeroom_teacher"),  # signed with the server's key
    _move("teacher_sign_own_key", State.CHECKED, State.TEACHER_SIGNING, "homeroom_teacher"),  # prepared for it
    _move("teacher_key_signed", State.TEACHER_SIGNING, State.TEACHER_SIGNED, SYSTEM),
    _move("return", State.CHECKED, State.DRAFT, "homeroom_teacher", "principal"),
    _move("return", State.TEACHER_SIGNING, State.DRAFT, "homeroom_teacher", "principal"),
    _move("return", State.TEACHER_SIGNED, State.DRAFT, "homeroom_teacher", "principal"),
    _move("approve", State.TEACHER_SIGNED, State.APPROVED, "principal"),
    _move("signing_failed", State.APPROVED, State.TEACHER_SIGNED, SYSTEM),
    _move("withdraw", State.APPROVED, State.TEACHER_SIGNED, SYSTEM),  # its batch was cancelled
    _move("seal", State.APPROVED, State.SEALED, SYSTEM),
    _move("issue", State.SEALED, State.ISSUED, SYSTEM),
)


class WorkflowError(PermanentError):
    """A transition that the state machine does not allow; the message says why, in Vietnamese and English."""


class NotFoundError(WorkflowError, LookupError):
    """No such document or work item (or not this school's: the same answer, so other schools' ids stay hidden)."""


class ConflictError(WorkflowError):
    """The document is not in a state where this can be done (e.g. it belongs to the approval workflow)."""


def find_move(action: str, source: str, role: str) -> Move:
    """The transition ``action`` from ``source`` for ``role``, or WorkflowError saying why it is not allowed."""
    candidates = [m for m in TRANSITIONS if m.action == action and m.source == source]
    if not candidates:
        raise WorkflowError(
            f"Không thể '{action}' khi hồ sơ đang ở trạng thái '{STATE_TEXT.get(State(source), source)}' / "
            f"'{action}' is not possible from state {source}"
        )
    for move in candidates:
        if role in move.roles:
            return move
    raise WorkflowError(f"Vai trò '{role}' không được '{action}' / role {role} may not {action} here")


class WorkItem(SQLModel, table=True):
    """A document on its way to being issued: its data, its state and the document it became."""

    __tablename__ = "work_items"

    id: str = Field(primary_key=True, max_length=32)
    school_code: str = Field(index=True, max_length=32)
    kind: str = Field(max_length=16)
    class_name: str = Field(default="", index=True, max_length=32)
    school_year: str = Field(default="", index=True, max_length=16)
    holder_name: str = Field(max_length=255)
    holder_personal_id: str | None = Field(default=None, index=True, max_length=12)
    state: str = Field(default=State.DRAFT.value, max_length=16)
    version: int = 1
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    previous_data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    doc_id: str | None = Field(default=None, index=True, max_length=64)
    supersedes: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, max_length=1000)
    created_by: str = Field(max_length=128)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Transition(SQLModel, table=True):
    """One recorded move of a work item (append-only by convention; the audit table keeps the same facts)."""

    __tablename__ = "work_transitions"

    id: int | None = Field(default=None, primary_key=True)
    item_id: str = Field(foreign_key="work_items.id", index=True, max_length=32)
    action: str = Field(max_length=32)
    from_state: str = Field(max_length=16)
    to_state: str = Field(max_length=16)
    actor: str = Field(max_length=128)
    role: str = Field(max_length=32)
    at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    note: str = Field(default="", max_length=1000)


def new_item_id() -> str:
    return "WF-" + secrets.token_hex(6).upper()


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested JSON as {"years[2].subjects[0].hk1.gk": 8.5, ...}, for showing what changed between versions."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            out.update(flatten(inner, f"{prefix}[{i}]"))
    else:
        out[prefix] = value
    return out


def changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, old value, new value) for every field that differs; empty for a first version."""
    if old is None:
        return []
    a, b = flatten(old), flatten(new)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
