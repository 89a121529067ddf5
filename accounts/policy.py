"""Who may give whom which role, as policy in one place (issue 22): tenant isolation and separation of duties.

* An organisation governs only its own people. Through the web, a role is granted only to someone who already
  holds a role in the same organisation (new people are added with the "new person" form, which makes them
  members); anyone else, whether the username exists nowhere or belongs to another organisation, gets the same
  refusal, so the form tells nothing about usernames elsewhere. A grant across organisations is refused: only an
  operator on the server (``sealtrail accounts grant``) can do it, after both sides agreed.
* A pupil or parent role is given only by a school (never by a university, a verifier organisation, a Sở or a
  Phòng), and only to someone who is not a pupil or parent of another school.
* Separation of duties: whoever administers accounts (``school_admin``) never holds a signing role in the same
  organisation, so an admin cannot grant themselves ``homeroom_teacher`` or ``principal`` and check, sign and
  approve alone; a signer cannot be made an admin either.
* Resetting a signer's password or authenticator is a two-person act: one admin asks, a *second* admin of the
  organisation confirms within a day (both audited); the Sở's operator can do it on the server.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, col, select

from accounts.models import AuditEvent, Membership, Organisation, OrgKind, Person, utcnow
from accounts.permissions import roles_with
from accounts.service import AccountError

SIGNING_ROLES = frozenset(
    roles_with("workflow:teacher_sign") | roles_with("workflow:approve") | roles_with("documents:issue")
)
"""Roles whose holders sign or issue documents (homeroom teacher, principal, registrar)."""
ADMIN_ROLES = frozenset(roles_with("members:manage"))
PORTAL_ROLES = frozenset({"student", "parent"})
PUPIL_SCHOOL_KINDS = frozenset({OrgKind.SCHOOL.value})
SECOND_ADMIN_WINDOW = timedelta(hours=24)

NOT_A_MEMBER = (
    "Không thể cấp vai trò cho người không thuộc đơn vị này; hãy thêm người mới / a role can only be given to a "
    "member of this organisation; add a new person instead"
)


def _roles_by_org(session: Session, person_id: int) -> dict[int, set[str]]:
    held: dict[int, set[str]] = {}
    for org_id, role in session.exec(
        select(Membership.org_id, Membership.role).where(Membership.person_id == person_id)
    ).all():
        held.setdefault(org_id, set()).add(role)
    return held


def check_grant(session: Session, granter: str, username: str, org: Organisation, role: str) -> Person:
    """The person who may receive ``role`` in ``org`` from ``granter`` (a username); AccountError otherwise."""
    person = session.exec(select(Person).where(Person.username == username)).first()
    held = _roles_by_org(session, person.id) if person is not None and person.id is not None else {}
    if person is None or org.id not in held:
        raise AccountError(NOT_A_MEMBER)
    here = held[org.id]
    if role in PORTAL_ROLES:
        if org.kind not in PUPIL_SCHOOL_KINDS:
            raise AccountError(
                "Chỉ trường của học sinh mới cấp vai trò học sinh hay phụ huynh / only the pupil's own school gives "
                "the pupil or parent role"
            )
        if any(roles & PORTAL_ROLES for org_id, roles in held.items() if org_id != org.id):
            raise AccountError(NOT_A_MEMBER)  # a pupil or parent of another school: not ours to govern
    if role in SIGNING_ROLES and username == granter:
        raise AccountError(
            "Không tự cấp vai trò ký cho mình / you cannot give yourself a signing role (separation of duties)"
        )
    if role in SIGNING_ROLES and here & ADMIN_ROLES:
        raise AccountError(
            "Người quản trị tài khoản không giữ vai trò ký / an account administrator cannot hold a signing role"
        )
    if role in ADMIN_ROLES and here & SIGNING_ROLES:
        raise AccountError(
            "Người ký không làm quản trị tài khoản / a signer cannot administer accounts (separation of duties)"
        )
    return person


def is_signer(session: Session, username: str) -> bool:
    person = session.exec(select(Person).where(Person.username == username)).first()
    if person is None or person.id is None:
        return False
    return any(roles & SIGNING_ROLES for roles in _roles_by_org(session, person.id).values())


def second_admin_confirms(session: Session, org_code: str, username: str, what: str, admin: str) -> bool:
    """Whether another admin of ``org_code`` asked for the same reset of ``username`` within the window and it has
    not been carried out since (the asking itself is recorded by the caller as ``<what>.request``)."""
    since = utcnow() - SECOND_ADMIN_WINDOW
    rows = session.exec(
        select(AuditEvent)
        .where(
            AuditEvent.org_code == org_code,
            AuditEvent.target == username,
            col(AuditEvent.action).in_([f"{what}.request", f"{what}.reset"]),
            col(AuditEvent.at) >= since,
        )
        .order_by(col(AuditEvent.id))
    ).all()
    pending = None
    for row in rows:
        if row.action == f"{what}.reset" and row.outcome == "ok":
            pending = None  # carried out: a new request is needed
        elif row.action == f"{what}.request" and row.outcome == "pending":
            pending = row
    return pending is not None and pending.actor != admin
