"""Who may do what, in one place: roles → permissions, and the FastAPI dependency ``require(permission)``.

A permission is always checked against one organisation (the ``{school}`` in the URL): a role held in school A
grants nothing in school B. Roles held in a province department (Sở) or district office (Phòng) reach the
schools below it, but only for read-only permissions (``READ_ONLY``): they can look, never sign.

Callers are people signed in with a session cookie (staff or student) or machines with a scoped API key
(``Authorization: Bearer st_…``). State-changing requests that ride on a cookie must carry the session's CSRF
token (form field ``csrf_token`` or header ``X-CSRF-Token``); bearer-key requests cannot be forged by a
browser and need none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES = (
    "homeroom_teacher",
    "subject_teacher",
    "principal",
    "vice_principal",
    "registrar",
    "school_admin",
    "auditor",
    "student",
    "parent",
    "verifier_org",
)
STAFF_ROLES = frozenset(ROLES) - {"student", "parent"}  # signed in with password + TOTP (or SSO)

ROLE_TITLES = {
    "homeroom_teacher": "Giáo viên chủ nhiệm",
    "subject_teacher": "Giáo viên bộ môn",
    "principal": "Hiệu trưởng",
    "vice_principal": "Phó hiệu trưởng",
    "registrar": "Cán bộ văn thư / giáo vụ",
    "school_admin": "Quản trị của trường",
    "auditor": "Kiểm tra viên",
    "student": "Học sinh",
    "parent": "Cha mẹ học sinh",
    "verifier_org": "Đơn vị xác minh",
}

PERMISSIONS: dict[str, frozenset[str]] = {
    # read the school's work items, documents and the principal's queue
    "workflow:read": frozenset(
        {"homeroom_teacher", "subject_teacher", "principal", "vice_principal", "registrar", "school_admin", "auditor"}
    ),
    "workflow:edit": frozenset({"homeroom_teacher", "registrar"}),  # create drafts, corrections
    "workflow:check": frozenset({"homeroom_teacher"}),
    "workflow:teacher_sign": frozenset({"homeroom_teacher"}),
    "workflow:return": frozenset({"homeroom_teacher", "principal"}),
    "workflow:approve": frozenset({"principal"}),  # approve and sign
    "documents:issue": frozenset({"registrar"}),  # the direct issuing API (school software)
    "documents:revoke": frozenset({"principal", "school_admin"}),
    "members:manage": frozenset({"school_admin"}),
    "students:codes": frozenset({"homeroom_teacher", "school_admin", "registrar"}),
    "audit:export": frozenset({"auditor", "school_admin"}),
    # a verifier organisation (university admissions, employer): its people see its look-up keys, its admin
    # (school_admin held in that organisation) makes and revokes them
    "verify:read": frozenset({"verifier_org", "school_admin"}),
    "verify:keys": frozenset({"school_admin"}),
}
READ_ONLY = frozenset({"workflow:read", "audit:export"})  # what a Sở/Phòng role may do in the schools below it

# What a machine's API key may be given (a key never gets more than this).
API_SCOPES = frozenset({"documents:issue", "workflow:read", "workflow:edit", "verify:bulk", "metrics"})
VERIFY_SCOPE = "verify:bulk"  # the bulk CSV look-up (số hiệu, name, birth date): verifier organisations only
METRICS_SCOPE = "metrics"  # GET /metrics from outside the allow-listed addresses
VERIFIER_KINDS = frozenset({"university", "verifier_org"})  # organisations that may hold look-up keys
DEFAULT_API_SCOPES = ("documents:issue",)


def roles_with(permission: str) -> frozenset[str]:
    return PERMISSIONS[permission]


@dataclass
class Actor:
    """Whoever is making the request, and what they hold where."""

    name: str  # username, or "api-key:<first 8 hex of its hash>"
    kind: str  # staff | student | api_key
    person_id: int | None = None
    roles: dict[str, set[str]] = field(default_factory=dict)  # org code → roles held there
    inherited: dict[str, set[str]] = field(default_factory=dict)  # school code → roles reaching it from above
    scopes: frozenset[str] = frozenset()  # API keys only
    session_id: str | None = None
    key_id: str | None = None  # API keys only: first 16 hex of the key's SHA-256 (rate limits, audit)
    csrf_token: str | None = None

    def can(self, permission: str, org: str) -> bool:
        if self.kind == "api_key":
            return permission in self.scopes and org in self.roles
        allowed = PERMISSIONS[permission]
        if self.roles.get(org, set()) & allowed:
            return True
        return permission in READ_ONLY and bool(self.inherited.get(org, set()) & allowed)

    def role_in(self, org: str, candidates: frozenset[str] | set[str]) -> str | None:
        """The first of ``candidates`` this actor holds in ``org`` (for recording the role a transition used)."""
        held = self.roles.get(org, set())
        for role in ROLES:
            if role in held and role in candidates:
                return role
        return None
