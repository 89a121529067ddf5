"""Tables for people and workflow: organisations, people, memberships, sessions, codes, audit, shares, work items.

Secrets are never stored as given: passwords as argon2 hashes, session ids, one-time codes and share tokens as
SHA-256 digests. Only the TOTP seed is kept as is (the server needs it to check codes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they were written in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class OrgKind(StrEnum):
    DEPARTMENT = "department"  # Sở Giáo dục và Đào tạo (province)
    DISTRICT_OFFICE = "district_office"  # Phòng Giáo dục và Đào tạo (district)
    SCHOOL = "school"
    UNIVERSITY = "university"
    VERIFIER_ORG = "verifier_org"  # an employer or admissions office that checks documents


class Organisation(SQLModel, table=True):
    __tablename__ = "organisations"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(index=True, unique=True, max_length=32)
    name: str = Field(max_length=255)
    kind: str = Field(max_length=24)
    parent_id: int | None = Field(default=None, foreign_key="organisations.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Person(SQLModel, table=True):
    __tablename__ = "people"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True, max_length=64)
    full_name: str = Field(max_length=255)
    personal_id: str | None = Field(default=None, index=True, max_length=12)  # ties a student to documents
    password_hash: str | None = Field(default=None, max_length=255)
    totp_secret: str | None = Field(default=None, max_length=64)
    totp_last_step: int | None = None  # a TOTP code is accepted once
    active: bool = True
    failed_logins: int = 0
    locked_until: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    must_change_password: bool = False  # set by an admin's reset: the next sign-in leads to the change form
    email: str | None = Field(default=None, index=True, max_length=255)  # for single sign-on by e-mail claim


class SsoIdentity(SQLModel, table=True):
    """A provider's identity (issuer + subject) linked beforehand to a person; SSO never creates people."""

    __tablename__ = "sso_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: int | None = Field(default=None, primary_key=True)
    issuer: str = Field(max_length=255)
    subject: str = Field(max_length=255)
    person_id: int = Field(foreign_key="people.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class ParentLink(SQLModel, table=True):
    """A parent (role ``parent`` in the school) linked by the school to one of its pupils (a minor)."""

    __tablename__ = "parent_links"
    __table_args__ = (UniqueConstraint("parent_id", "student_id", "org_id"),)

    id: int | None = Field(default=None, primary_key=True)
    parent_id: int = Field(foreign_key="people.id", index=True)
    student_id: int = Field(foreign_key="people.id")
    org_id: int = Field(foreign_key="organisations.id")
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Membership(SQLModel, table=True):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("person_id", "org_id", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="people.id", index=True)
    org_id: int = Field(foreign_key="organisations.id", index=True)
    role: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class LoginSession(SQLModel, table=True):
    """A signed-in browser. ``id`` is the SHA-256 of the cookie's value, so a database leak opens no session."""

    __tablename__ = "login_sessions"

    id: str = Field(primary_key=True, max_length=64)
    person_id: int = Field(foreign_key="people.id", index=True)
    kind: str = Field(max_length=16)  # staff | student
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    last_seen: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    ip: str = Field(default="", max_length=64)
    revoked: bool = False
    org_id: int | None = None  # the organisation a portal session was opened for (its roles elsewhere do not count)


class OneTimeCode(SQLModel, table=True):
    """A sign-in code a school hands a student; used once, expires."""

    __tablename__ = "one_time_codes"

    id: str = Field(primary_key=True, max_length=64)  # sha256 of the code
    person_id: int = Field(foreign_key="people.id", index=True)
    org_id: int = Field(foreign_key="organisations.id")
    created_by: int | None = Field(default=None, foreign_key="people.id")
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    used_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class AuditEvent(SQLModel, table=True):
    """Who did what, when, from where. Written for every action, allowed or refused."""

    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True), index=True)
    actor: str = Field(max_length=128)
    org_code: str | None = Field(default=None, index=True, max_length=32)
    action: str = Field(max_length=64)
    target: str = Field(default="", max_length=128)
    outcome: str = Field(default="ok", max_length=16)
    ip: str = Field(default="", max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    leaf_index: int | None = None  # set when the event was also written to the public log


class ShareLink(SQLModel, table=True):
    """A link a student made to show one document (and only the fields chosen) to someone, until it expires."""

    __tablename__ = "share_links"

    id: str = Field(primary_key=True, max_length=64)  # sha256 of the token in the URL
    person_id: int = Field(foreign_key="people.id", index=True)
    doc_id: str = Field(max_length=64)
    fields: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    label: str = Field(default="", max_length=120)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
