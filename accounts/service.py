"""Accounts: organisations, people and roles; passwords (argon2) and TOTP; sessions; student codes; audit.

Everything here takes a database engine and is used by the web routers, the CLI and the tests alike.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from accounts.models import (
    AuditEvent,
    LoginSession,
    Membership,
    OneTimeCode,
    Organisation,
    OrgKind,
    Person,
    aware,
    utcnow,
)
from accounts.permissions import ROLES, STAFF_ROLES, Actor
from errors import PermanentError

SESSION_LIFETIME = timedelta(hours=8)  # absolute: sign in again after a working day
SESSION_IDLE = timedelta(minutes=30)  # idle: a forgotten browser closes itself
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
STUDENT_CODE_LIFETIME = timedelta(days=14)
MIN_PASSWORD = 12

_hasher = PasswordHasher()
_dummy: dict[str, str] = {}


def _dummy_hash() -> str:
    """A real hash to check against when the user does not exist, so both cases take the same time (made on first
    use, not at import: one argon2 hash costs ~0.6 s on a busy two-core machine)."""
    if "hash" not in _dummy:
        _dummy["hash"] = _hasher.hash(secrets.token_hex(16))
    return _dummy["hash"]


class AccountError(PermanentError):
    """A bad request about accounts; the message is for the person (Vietnamese / English)."""


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- organisations, people, roles ------------------------------------------------------------------------------


def create_org(engine: Engine, code: str, name: str, kind: str, parent: str | None = None) -> Organisation:
    if kind not in {k.value for k in OrgKind}:
        raise AccountError(f"Loại đơn vị không hợp lệ / unknown organisation kind {kind!r}")
    with Session(engine) as session:
        if session.exec(select(Organisation).where(Organisation.code == code)).first():
            raise AccountError(f"Đơn vị {code} đã có / organisation {code} already exists")
        parent_id = None
        if parent is not None:
            found = session.exec(select(Organisation).where(Organisation.code == parent)).first()
            if found is None:
                raise AccountError(f"Không có đơn vị cấp trên {parent} / no parent organisation {parent}")
            parent_id = found.id
        org = Organisation(code=code, name=name, kind=kind, parent_id=parent_id)
        session.add(org)
        session.commit()
        session.refresh(org)
        session.expunge(org)
        return org


def org_by_code(engine: Engine, code: str) -> Organisation | None:
    with Session(engine) as session:
        org = session.exec(select(Organisation).where(Organisation.code == code)).first()
        if org is not None:
            session.expunge(org)
        return org


COMMON_PASSWORDS = Path(__file__).parent / "data" / "common-passwords.txt"


@functools.cache
def _common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def check_password_strength(password: str) -> None:
    """At least 12 characters, at least two kinds of character (letters, digits, others), at least 5 different
    characters (no "aaaaaaaaaaaa" or "abababababab"), and not on the offline list of common and breached ones."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(
            f"Mật khẩu cần ít nhất {MIN_PASSWORD} ký tự / the password needs at least {MIN_PASSWORD} characters"
        )
    kinds = {"letter" if ch.isalpha() else "digit" if ch.isdigit() else "other" for ch in password}
    if len(kinds) < 2 or len(set(password.casefold())) < 5:
        raise AccountError(
            "Mật khẩu cần trộn chữ với số hoặc ký hiệu và không lặp một vài ký tự / mix letters with digits or "
            "symbols, and do not repeat a few characters"
        )
    if password.casefold() in _common_passwords():
        raise AccountError(
            "Mật khẩu này nằm trong danh sách mật khẩu phổ biến hoặc đã lộ / this password is on the list of common "
            "or breached passwords"
        )


@dataclass(frozen=True)
class NewPerson:
    person: Person
    totp_uri: str | None  # shown once, to enrol the authenticator app


def create_person(
    engine: Engine,
    username: str,
    full_name: str,
    *,
    password: str | None = None,
    personal_id: str | None = None,
    with_totp: bool = True,
) -> NewPerson:
    if password is not None:
        check_password_strength(password)
    secret = pyotp.random_base32() if with_totp else None
    with Session(engine) as session:
        if session.exec(select(Person).where(Person.username == username)).first():
            raise AccountError(f"Tên đăng nhập {username} đã có / username {username} is taken")
        person = Person(
            username=username,
            full_name=full_name,
            personal_id=personal_id,
            password_hash=_hasher.hash(password) if password else None,
            totp_secret=secret,
        )
        session.add(person)
        session.commit()
        session.refresh(person)
        session.expunge(person)
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name="SealTrail") if secret else None
    return NewPerson(person, uri)


def person_by_username(engine: Engine, username: str) -> Person | None:
    with Session(engine) as session:
        person = session.exec(select(Person).where(Person.username == username)).first()
        if person is not None:
            session.expunge(person)
        return person


def grant(engine: Engine, username: str, org_code: str, role: str) -> Membership:
    if role not in ROLES:
        raise AccountError(f"Vai trò không hợp lệ / unknown role {role!r}")
    with Session(engine) as session:
        person = session.exec(select(Person).where(Person.username == username)).first()
        org = session.exec(select(Organisation).where(Organisation.code == org_code)).first()
        if person is None or org is None:
            raise AccountError("Không có người dùng hoặc đơn vị này / no such user or organisation")
        assert person.id is not None and org.id is not None
        existing = session.exec(
            select(Membership).where(
                Membership.person_id == person.id, Membership.org_id == org.id, Membership.role == role
            )
        ).first()
        if existing is not None:
            session.expunge(existing)
            return existing
        membership = Membership(person_id=person.id, org_id=org.id, role=role)
        session.add(membership)
        session.commit()
        session.refresh(membership)
        session.expunge(membership)
        return membership


def members(engine: Engine, org_code: str) -> list[tuple[str, str, str]]:
    """(username, full name, role) of everyone holding a role in ``org_code``."""
    with Session(engine) as session:
        rows = session.exec(
            select(Person.username, Person.full_name, Membership.role)
            .join(Membership, Membership.person_id == Person.id)  # type: ignore[arg-type]
            .join(Organisation, Organisation.id == Membership.org_id)  # type: ignore[arg-type]
            .where(Organisation.code == org_code)
            .order_by(Person.username, Membership.role)
        ).all()
    return [(u, n, r) for u, n, r in rows]


def revoke_role(engine: Engine, username: str, org_code: str, role: str) -> bool:
    with Session(engine) as session:
        row = session.exec(
            select(Membership)
            .join(Person, Person.id == Membership.person_id)  # type: ignore[arg-type]
            .join(Organisation, Organisation.id == Membership.org_id)  # type: ignore[arg-type]
            .where(Person.username == username, Organisation.code == org_code, Membership.role == role)
        ).first()
        if row is None:
            return False
        session.delete(row)
        end_sessions_of(session, row.person_id)  # a session opened with the role must not outlive it
        session.commit()
        return True


def end_sessions_of(session: Session, person_id: int) -> None:
    """Mark every open session of the person ended (within the caller's transaction)."""
    for open_session in session.exec(
        select(LoginSession).where(LoginSession.person_id == person_id, col(LoginSession.revoked).is_(False))
    ).all():
        open_session.revoked = True
        session.add(open_session)


def actor_for(engine: Engine, person: Person, kind: str) -> Actor:
    """The person's roles per organisation, plus read-reach into schools below a Sở/Phòng they hold roles in."""
    with Session(engine) as session:
        rows = session.exec(
            select(Organisation, Membership)
            .join(Membership, Membership.org_id == Organisation.id)  # type: ignore[arg-type]
            .where(Membership.person_id == person.id)
        ).all()
        roles: dict[str, set[str]] = {}
        for org, membership in rows:
            roles.setdefault(org.code, set()).add(membership.role)
        inherited: dict[str, set[str]] = {}
        parents = [(org.id, membership.role) for org, membership in rows if org.kind in _REACHING]
        if parents:
            children: dict[int, list[Organisation]] = {}
            for org in session.exec(select(Organisation)).all():
                if org.parent_id is not None:
                    children.setdefault(org.parent_id, []).append(org)
            for org_id, role in parents:
                stack = list(children.get(org_id or -1, []))
                while stack:
                    child = stack.pop()
                    inherited.setdefault(child.code, set()).add(role)
                    stack.extend(children.get(child.id or -1, []))
    if kind == "staff":  # a staff session never carries student powers, and the other way round
        roles = {org: held & STAFF_ROLES for org, held in roles.items() if held & STAFF_ROLES}
    elif kind in (PASSWORD_CHANGE, SSO_SECOND_STEP):  # a step left before the roles count
        roles, inherited = {}, {}
    else:
        roles = {org: held & {"student", "parent"} for org, held in roles.items() if held & {"student", "parent"}}
        inherited = {}
    return Actor(name=person.username, kind=kind, person_id=person.id, roles=roles, inherited=inherited)


_REACHING = {OrgKind.DEPARTMENT.value, OrgKind.DISTRICT_OFFICE.value}
PASSWORD_CHANGE = "pwchange"  # noqa: S105  # the session kind after a temporary password: no roles until a new one is chosen
SSO_SECOND_STEP = "sso_totp"  # signed in through the provider, TOTP still to come: no roles yet


# --- signing in ------------------------------------------------------------------------------------------------


def _lockout_message(until: datetime) -> str:
    return (
        "Tài khoản tạm khoá do nhập sai nhiều lần; thử lại sau "
        f"{until.astimezone(UTC).strftime('%H:%M')} UTC / too many failed attempts, the account is locked for now"
    )


def check_staff_login(engine: Engine, username: str, password: str, code: str) -> Person:
    """The person if password and TOTP code are right; AccountError otherwise (same message for every cause,
    so the form does not tell which usernames exist). Failures count towards a temporary lock."""
    bad = AccountError("Sai tên đăng nhập, mật khẩu hoặc mã xác thực / wrong username, password or code")
    with Session(engine) as session:
        person = session.exec(select(Person).where(Person.username == username)).first()
        if person is None or not person.password_hash:
            with contextlib.suppress(VerificationError):
                _hasher.verify(_dummy_hash(), password)
            raise bad
        # no lock on the account itself here: a lock anyone could trigger, with a message only real accounts get,
        # would let strangers lock staff out and tell which usernames exist. The sign-in form counts failures per
        # (account, address) and per address instead (sealtrail.web.signin_guard).
        ok = person.active
        try:
            _hasher.verify(person.password_hash, password)
        except (VerificationError, InvalidHashError):
            ok = False
        step = _totp_step(person.totp_secret, code) if ok else None
        if step is None or (person.totp_last_step is not None and step <= person.totp_last_step):
            person.failed_logins += 1  # for the record only
            session.add(person)
            session.commit()
            raise bad
        person.failed_logins = 0
        person.locked_until = None
        person.totp_last_step = step
        if _hasher.check_needs_rehash(person.password_hash):
            person.password_hash = _hasher.hash(password)
        session.add(person)
        session.commit()
        session.refresh(person)
        session.expunge(person)
        return person


def check_totp(engine: Engine, person_id: int, code: str) -> bool:
    """The second step after single sign-on: the person's TOTP code, accepted once; failures count towards the
    same temporary lock as password sign-ins."""
    with Session(engine) as session:
        person = session.get(Person, person_id)
        now = utcnow()
        if person is None or not person.active:
            return False
        if person.locked_until is not None and aware(person.locked_until) > now:
            raise AccountError(_lockout_message(aware(person.locked_until)))
        step = _totp_step(person.totp_secret, code)
        if step is None or (person.totp_last_step is not None and step <= person.totp_last_step):
            person.failed_logins += 1
            if person.failed_logins >= MAX_FAILED_LOGINS:
                person.locked_until, person.failed_logins = now + LOCKOUT, 0
            session.add(person)
            session.commit()
            return False
        person.totp_last_step, person.failed_logins = step, 0
        session.add(person)
        session.commit()
        return True


def _totp_step(secret: str | None, code: str) -> int | None:
    """The 30-second step ``code`` belongs to (±1 step of clock drift), or None if it is wrong."""
    if not secret or not code.strip().isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now = int(utcnow().timestamp())
    for drift in (0, -1, 1):
        at = now + drift * totp.interval
        if hmac.compare_digest(totp.at(at), code.strip()):
            return at // totp.interval
    return None


def issue_student_code(engine: Engine, username: str, org_code: str, created_by: int | None = None) -> str:
    """A one-time sign-in code for a student of ``org_code`` (shown once; only its hash is kept)."""
    code = "-".join(secrets.token_hex(3).upper() for _ in range(3))  # e.g. 3FA1C2-9B04D7-22E0AF (72 bits)
    with Session(engine) as session:
        person = session.exec(select(Person).where(Person.username == username)).first()
        org = session.exec(select(Organisation).where(Organisation.code == org_code)).first()
        if person is None or org is None:
            raise AccountError("Không có học sinh này ở trường / no such student at this school")
        member = session.exec(
            select(Membership).where(
                Membership.person_id == person.id,
                Membership.org_id == org.id,
                col(Membership.role).in_(["student", "parent"]),
            )
        ).first()
        if member is None:
            raise AccountError(
                "Người này không phải học sinh hay phụ huynh của trường / not a pupil or parent of this school"
            )
        assert person.id is not None and org.id is not None
        session.add(
            OneTimeCode(
                id=sha256_hex(_normal_code(code)),
                person_id=person.id,
                org_id=org.id,
                created_by=created_by,
                expires_at=utcnow() + STUDENT_CODE_LIFETIME,
            )
        )
        session.commit()
    return code


def _normal_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def redeem_student_code(engine: Engine, code: str) -> Person:
    return redeem_code(engine, code)[0]


def redeem_code(engine: Engine, code: str) -> tuple[Person, int]:
    """The person a one-time code was made for, and the organisation (id) that made it."""
    bad = AccountError("Mã đăng nhập không đúng hoặc đã hết hạn / the code is wrong, used or expired")
    with Session(engine) as session:
        row = session.get(OneTimeCode, sha256_hex(_normal_code(code)))
        if row is None or row.used_at is not None or aware(row.expires_at) <= utcnow():
            raise bad
        row.used_at = utcnow()
        session.add(row)
        person = session.get(Person, row.person_id)
        if person is None or not person.active:
            raise bad
        org_id = row.org_id
        session.commit()
        session.refresh(person)
        session.expunge(person)
        return person, org_id


# --- sessions --------------------------------------------------------------------------------------------------


def start_session(
    engine: Engine, person: Person, kind: str, ip: str, replaces: str | None = None, org_id: int | None = None
) -> str:
    """A new session (its cookie value is returned; only its hash is stored). Any session the browser had
    before is ended, so a session id planted before sign-in is worthless afterwards (fixation)."""
    assert person.id is not None
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with Session(engine) as session:
        if replaces:
            old = session.get(LoginSession, sha256_hex(replaces))
            if old is not None:
                old.revoked = True
                session.add(old)
        session.add(
            LoginSession(
                id=sha256_hex(token),
                person_id=person.id,
                kind=kind,
                csrf_token=secrets.token_urlsafe(24),
                created_at=now,
                last_seen=now,
                expires_at=now + SESSION_LIFETIME,
                ip=ip[:64],
                org_id=org_id,
            )
        )
        session.commit()
    return token


def actor_from_session(engine: Engine, token: str) -> Actor | None:
    now = utcnow()
    with Session(engine) as session:
        row = session.get(LoginSession, sha256_hex(token))
        if row is None or row.revoked or aware(row.expires_at) <= now or aware(row.last_seen) + SESSION_IDLE <= now:
            return None
        person = session.get(Person, row.person_id)
        if person is None or not person.active:
            return None
        if now - aware(row.last_seen) > timedelta(minutes=1):  # keep writes rare
            row.last_seen = now
            session.add(row)
            session.commit()
            session.refresh(person)
            session.refresh(row)
        session.expunge(person)
        csrf, sid, kind, org_id = row.csrf_token, row.id, row.kind, row.org_id
        org_code = None
        if org_id is not None:
            org = session.get(Organisation, org_id)
            org_code = org.code if org is not None else "-"
    actor = actor_for(engine, person, kind)
    if org_code is not None:  # a session opened for one organisation sees nothing of the others
        actor.roles = {code: roles for code, roles in actor.roles.items() if code == org_code}
        actor.inherited = {}
    actor.session_id, actor.csrf_token = sid, csrf
    return actor


def end_session(engine: Engine, session_id: str) -> None:
    with Session(engine) as session:
        row = session.get(LoginSession, session_id)
        if row is not None:
            row.revoked = True
            session.add(row)
            session.commit()


# --- audit -----------------------------------------------------------------------------------------------------


def audit_row(
    actor: str,
    action: str,
    *,
    org_code: str | None = None,
    target: str = "",
    outcome: str = "ok",
    ip: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent(
        actor=actor[:128],
        org_code=org_code,
        action=action,
        target=target[:128],
        outcome=outcome,
        ip=ip[:64],
        detail=detail or {},
    )


def derive_key(secret: bytes, purpose: str) -> bytes:
    """32 bytes for ``purpose`` from an installation secret: HMAC-SHA256, one independent key per purpose."""
    return hmac.new(secret, b"sealtrail-derived-key\0" + purpose.encode(), hashlib.sha256).digest()


def audit_commitment(key: bytes, event: AuditEvent) -> str:
    """HMAC-SHA256 of the event's canonical JSON under a secret key: what a ledger ``key`` entry carries instead of
    any personal data. A plain hash could be reversed by trying user names and times ("admin linked parent X to
    pupil Y"); without the key nothing can be tried, while the operator (or an auditor given the key) can still
    show that an audit row is the one the log committed to."""
    body = {
        "at": aware(event.at).astimezone(UTC).isoformat(),
        "actor": event.actor,
        "org": event.org_code,
        "action": event.action,
        "target": event.target,
        "outcome": event.outcome,
        "detail": event.detail,
    }
    return hmac.new(key, json.dumps(body, sort_keys=True, ensure_ascii=False).encode(), hashlib.sha256).hexdigest()


def export_audit(engine: Engine, org_code: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    with Session(engine) as session:
        rows: Iterable[AuditEvent] = session.exec(
            select(AuditEvent)
            .where(AuditEvent.org_code == org_code, AuditEvent.at >= start, AuditEvent.at < end)
            .order_by(AuditEvent.id)  # type: ignore[arg-type]
        ).all()
        return [
            {
                "id": r.id,
                "at": aware(r.at).astimezone(UTC).isoformat(),
                "actor": r.actor,
                "action": r.action,
                "target": r.target,
                "outcome": r.outcome,
                "ip": r.ip,
                "leaf_index": r.leaf_index,
                "detail": r.detail,
            }
            for r in rows
        ]
