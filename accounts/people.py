"""What a school admin does to people of their own organisation: add them with roles, reset a forgotten password
(a temporary one, changed at the next sign-in), re-enrol the authenticator (the old TOTP seed stops working),
deactivate, and link parents to their children. Nothing here reaches a person's roles in another organisation:
someone who also works elsewhere is reset only by an admin of every place they work (or on the CLI).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pyotp
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from accounts import service
from accounts.models import LoginSession, Membership, Organisation, ParentLink, Person
from accounts.permissions import ROLES, STAFF_ROLES
from accounts.service import AccountError

PORTAL_ROLES = frozenset({"student", "parent"})  # sign in with a code the school hands out (or SSO), no password


@dataclass(frozen=True)
class Credentials:
    """Shown once to the admin, to hand over in person: never stored as given."""

    username: str
    temporary_password: str | None = None
    totp_uri: str | None = None
    totp_secret: str | None = None


def _org(session: Session, code: str) -> Organisation:
    org = session.exec(select(Organisation).where(Organisation.code == code)).first()
    if org is None or org.id is None:
        raise AccountError(f"Không có đơn vị {code} / no organisation {code}")
    return org


def _member(session: Session, username: str, org: Organisation) -> tuple[Person, set[str]]:
    """The person and their roles in ``org``; the same refusal whether they do not exist or work elsewhere."""
    person = session.exec(select(Person).where(Person.username == username)).first()
    roles = (
        set(
            session.exec(
                select(Membership.role).where(Membership.person_id == person.id, Membership.org_id == org.id)
            ).all()
        )
        if person is not None
        else set()
    )
    if person is None or not roles:
        raise AccountError(f"{username} không thuộc đơn vị {org.code} / {username} holds no role at {org.code}")
    return person, roles


def _elsewhere(session: Session, person: Person, org: Organisation) -> list[str]:
    return sorted(
        set(
            session.exec(
                select(Organisation.code)
                .join(Membership, Membership.org_id == Organisation.id)  # type: ignore[arg-type]
                .where(Membership.person_id == person.id, Membership.org_id != org.id)
            ).all()
        )
    )


def _only_here(session: Session, person: Person, org: Organisation) -> None:
    others = _elsewhere(session, person, org)
    if others:
        raise AccountError(
            f"{person.username} còn làm việc ở {', '.join(others)}: cần quản trị của mọi đơn vị đó hoặc lệnh "
            f"'sealtrail' trên máy chủ / also works at {', '.join(others)}; an admin here alone cannot reset them"
        )


def _end_sessions(session: Session, person: Person) -> None:
    for row in session.exec(select(LoginSession).where(LoginSession.person_id == person.id)).all():
        row.revoked = True
        session.add(row)


def _temporary_password() -> str:
    return secrets.token_urlsafe(12)  # 16 characters, 96 bits


def add_person(
    engine: Engine,
    org_code: str,
    username: str,
    full_name: str,
    role: str,
    *,
    personal_id: str | None = None,
    email: str | None = None,
) -> Credentials:
    """A new person with ``role`` in ``org_code``. Staff get a temporary password (changed at first sign-in) and a
    TOTP seed to enrol; students and parents sign in with the school's one-time codes."""
    if role not in ROLES:
        raise AccountError(f"Vai trò không hợp lệ / unknown role {role!r}")
    username = username.strip()
    if not username or not full_name.strip():
        raise AccountError("Cần tên đăng nhập và họ tên / a username and a full name are needed")
    if role in PORTAL_ROLES:
        with Session(engine) as session:
            if _org(session, org_code).kind != "school":
                raise AccountError(
                    "Chỉ trường của học sinh mới cấp vai trò học sinh hay phụ huynh / only the pupil's own school "
                    "gives the pupil or parent role"
                )
    staff = role in STAFF_ROLES
    password = _temporary_password() if staff else None
    made = service.create_person(
        engine, username, full_name.strip(), password=password, personal_id=personal_id or None, with_totp=staff
    )
    with Session(engine) as session:
        person = session.get(Person, made.person.id)
        assert person is not None
        person.must_change_password = staff
        person.email = (email or "").strip().lower() or None
        session.add(person)
        session.commit()
    service.grant(engine, username, org_code, role)
    return Credentials(username, password, made.totp_uri, made.person.totp_secret)


def staff_here(session: Session, org_code: str, username: str, refusal: str) -> Person:
    """A staff member of ``org_code`` who works nowhere else (so an admin here alone may reset them)."""
    org = _org(session, org_code)
    person, roles = _member(session, username, org)
    if not roles & STAFF_ROLES:
        raise AccountError(refusal)
    _only_here(session, person, org)
    return person


def reset_password(engine: Engine, org_code: str, username: str) -> Credentials:
    """A temporary password; the person must choose a new one at the next sign-in. Their sessions end."""
    password = _temporary_password()
    with Session(engine) as session:
        person = staff_here(
            session, org_code, username, "Học sinh và phụ huynh đăng nhập bằng mã, không có mật khẩu / no password"
        )
        person.password_hash = service._hasher.hash(password)
        person.must_change_password = True
        person.failed_logins = 0
        person.locked_until = None
        _end_sessions(session, person)
        session.add(person)
        session.commit()
    return Credentials(username, temporary_password=password)


def reenrol_totp(engine: Engine, org_code: str, username: str) -> Credentials:
    """A new TOTP seed (the old one no longer signs in). Their sessions end."""
    secret = pyotp.random_base32()
    with Session(engine) as session:
        person = staff_here(
            session, org_code, username, "Người này không dùng mã xác thực / this person has no authenticator"
        )
        person.totp_secret = secret
        person.totp_last_step = None
        _end_sessions(session, person)
        session.add(person)
        session.commit()
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name="SealTrail")
    return Credentials(username, totp_uri=uri, totp_secret=secret)


def deactivate(engine: Engine, org_code: str, username: str) -> bool:
    """Remove every role the person holds in ``org_code`` and end their sessions; the account itself is switched
    off when no role remains anywhere. Returns whether the account was switched off."""
    with Session(engine) as session:
        org = _org(session, org_code)
        person, _roles = _member(session, username, org)
        for row in session.exec(
            select(Membership).where(Membership.person_id == person.id, Membership.org_id == org.id)
        ).all():
            session.delete(row)
        for link in session.exec(
            select(ParentLink).where(
                ParentLink.org_id == org.id,
                (col(ParentLink.parent_id) == person.id) | (col(ParentLink.student_id) == person.id),
            )
        ).all():
            session.delete(link)
        off = not _elsewhere(session, person, org)
        if off:
            person.active = False
            session.add(person)
        _end_sessions(session, person)
        session.commit()
        return off


def change_password(engine: Engine, person_id: int, current: str, new: str, keep_session: str | None = None) -> None:
    """The person's own change (forced after a reset): the current (temporary) password must be right. Every
    other session of the person ends (``keep_session``, the id of the one making the change, stays)."""
    service.check_password_strength(new)
    with Session(engine) as session:
        person = session.get(Person, person_id)
        if person is None or not person.password_hash:
            raise AccountError("Không có tài khoản này / no such account")
        try:
            service._hasher.verify(person.password_hash, current)
        except Exception:
            raise AccountError("Mật khẩu hiện tại không đúng / the current password is wrong") from None
        if current == new:
            raise AccountError("Mật khẩu mới phải khác mật khẩu cũ / choose a different password")
        person.password_hash = service._hasher.hash(new)
        person.must_change_password = False
        session.add(person)
        for row in session.exec(select(LoginSession).where(LoginSession.person_id == person.id)).all():
            if row.id != keep_session:
                row.revoked = True
                session.add(row)
        session.commit()


def people_of(engine: Engine, org_code: str) -> list[dict[str, object]]:
    """Everyone holding a role in ``org_code``: username, name, roles, active, and (for parents) their children."""
    with Session(engine) as session:
        org = _org(session, org_code)
        rows = session.exec(
            select(Person, Membership.role)
            .join(Membership, Membership.person_id == Person.id)  # type: ignore[arg-type]
            .where(Membership.org_id == org.id)
            .order_by(Person.username)
        ).all()
        people: dict[int, dict[str, object]] = {}
        for person, role in rows:
            assert person.id is not None
            entry = people.setdefault(
                person.id,
                {"username": person.username, "full_name": person.full_name, "roles": [], "active": person.active},
            )
            entry["roles"].append(role)  # type: ignore[attr-defined]
        links = session.exec(
            select(ParentLink.parent_id, Person.username)
            .join(Person, Person.id == ParentLink.student_id)  # type: ignore[arg-type]
            .where(ParentLink.org_id == org.id)
        ).all()
        for parent_id, child in links:
            if parent_id in people:
                people[parent_id].setdefault("children", []).append(child)  # type: ignore[attr-defined]
        return list(people.values())


def _link(
    session: Session, org_code: str, parent: str, student: str
) -> tuple[Person, Person, Organisation, ParentLink | None]:
    org = _org(session, org_code)
    parent_person, parent_roles = _member(session, parent, org)
    child, child_roles = _member(session, student, org)
    if "parent" not in parent_roles or "student" not in child_roles:
        raise AccountError(
            "Cần một phụ huynh và một học sinh của trường / link a parent to a pupil, both of this school"
        )
    row = session.exec(
        select(ParentLink).where(
            ParentLink.parent_id == parent_person.id, ParentLink.student_id == child.id, ParentLink.org_id == org.id
        )
    ).first()
    return parent_person, child, org, row


def link_parent(engine: Engine, org_code: str, parent: str, student: str, by: str) -> None:
    """Link a parent to a pupil of this school: both must hold that role here."""
    with Session(engine) as session:
        parent_person, child, org, row = _link(session, org_code, parent, student)
        if row is None:
            assert parent_person.id is not None and child.id is not None and org.id is not None
            session.add(ParentLink(parent_id=parent_person.id, student_id=child.id, org_id=org.id, created_by=by))
            session.commit()


def unlink_parent(engine: Engine, org_code: str, parent: str, student: str) -> bool:
    with Session(engine) as session:
        row = _link(session, org_code, parent, student)[3]
        if row is None:
            return False
        session.delete(row)
        session.commit()
        return True


def children_of(engine: Engine, parent_id: int) -> list[tuple[str, str]]:
    """(personal id, school code) of every pupil linked to this parent (what a parent's portal may show)."""
    with Session(engine) as session:
        rows = session.exec(
            select(Person.personal_id, Organisation.code)
            .join(ParentLink, ParentLink.student_id == Person.id)  # type: ignore[arg-type]
            .join(Organisation, Organisation.id == ParentLink.org_id)  # type: ignore[arg-type]
            .where(ParentLink.parent_id == parent_id, col(Person.active).is_(True))
        ).all()
    return [(pid, code) for pid, code in rows if pid]
