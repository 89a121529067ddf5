"""Every role against every endpoint, allowed and refused, in its own school and in another one.

The table below is written by hand, independently of ``accounts.permissions``. The test walks the
app's routes: an endpoint that is neither listed here nor public fails it, so a new endpoint cannot ship
without a rule.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from accounts import service
from accounts.models import AuditEvent
from sealtrail.web.api import create_api_key
from tests.accounts.conftest import SCHOOL_A, SCHOOL_B, STAFF, World

READERS = {"homeroom_teacher", "subject_teacher", "principal", "vice_principal", "registrar", "school_admin", "auditor"}
# (method, path) → staff roles allowed in their own school; "student" marks the student portal's routes.
RULES: dict[tuple[str, str], set[str]] = {
    ("GET", "/can-bo/{school}/hang-doi"): READERS,
    ("GET", "/can-bo/{school}/ho-so/{item_id}"): READERS,
    ("GET", "/can-bo/{school}/lo-ky/{batch_id}"): READERS,
    ("POST", "/can-bo/{school}/ho-so/kiem-tra"): {"homeroom_teacher"},
    ("POST", "/can-bo/{school}/ho-so/ky"): {"homeroom_teacher"},
    ("POST", "/can-bo/{school}/ho-so/tra-lai"): {"homeroom_teacher", "principal"},
    ("POST", "/can-bo/{school}/duyet-ky"): {"principal"},
    ("POST", "/can-bo/{school}/lo-ky/{batch_id}/tiep-tuc"): {"principal"},
    ("POST", "/can-bo/{school}/lo-ky/{batch_id}/huy"): {"principal"},
    ("POST", "/can-bo/{school}/van-ban/{doc_id}/thu-hoi"): {"principal", "school_admin"},
    ("GET", "/can-bo/{school}/thanh-vien"): {"school_admin"},
    ("POST", "/can-bo/{school}/thanh-vien"): {"school_admin"},
    ("POST", "/can-bo/{school}/hoc-sinh/ma-dang-nhap"): {"homeroom_teacher", "school_admin", "registrar"},
    ("GET", "/can-bo/{school}/nhat-ky"): {"auditor", "school_admin"},
    ("GET", "/api/v1/schools/{school}/work-items"): READERS,
    ("POST", "/api/v1/schools/{school}/work-items"): {"homeroom_teacher", "registrar"},
    ("POST", "/api/v1/schools/{school}/documents/{doc_id}/correction"): {"homeroom_teacher", "registrar"},
    ("POST", "/api/v1/schools/{school}/documents/{doc_id}/revoke"): {"principal", "school_admin"},
    ("GET", "/api/v1/schools/{school}/audit"): {"auditor", "school_admin"},
    ("POST", "/can-bo/{school}/thanh-vien/moi"): {"school_admin"},
    ("POST", "/can-bo/{school}/thanh-vien/{username}/dat-lai-mat-khau"): {"school_admin"},
    ("POST", "/can-bo/{school}/thanh-vien/{username}/xac-thuc-lai"): {"school_admin"},
    ("POST", "/can-bo/{school}/thanh-vien/{username}/ngung"): {"school_admin"},
    ("POST", "/can-bo/{school}/phu-huynh"): {"school_admin"},
    ("GET", "/can-bo/{school}/chia-se"): {"school_admin"},
    ("POST", "/can-bo/{school}/chia-se/{share_id}/thu-hoi"): {"school_admin"},
    ("POST", "/can-bo/{school}/thanh-vien/{username}/sso"): {"school_admin"},
    ("GET", "/can-bo/{school}/khoa-tra-cuu"): {"school_admin"},  # and verifier_org (tests/accounts/test_identity.py)
    ("POST", "/can-bo/{school}/khoa-tra-cuu"): {"school_admin"},  # refused (422) outside verifier organisations
    ("POST", "/can-bo/{school}/khoa-tra-cuu/{key_id}/thu-hoi"): {"school_admin"},
    ("POST", "/api/v1/schools/{school}/signing/documents"): {"registrar"},  # and keys with documents:issue
    ("POST", "/api/v1/schools/{school}/signing/documents/{doc_id}/cancel"): {"registrar"},
}
STUDENT_ROUTES = {
    ("GET", "/hoc-sinh"),
    ("GET", "/hoc-sinh/van-ban/{doc_id}/tai/{fmt}"),
    ("POST", "/hoc-sinh/van-ban/{doc_id}/ban-sao"),
    ("POST", "/hoc-sinh/van-ban/{doc_id}/ban-dich"),
    ("POST", "/hoc-sinh/chia-se"),
    ("POST", "/hoc-sinh/chia-se/{share_id}/thu-hoi"),
}
SIGNED_IN = {  # anyone signed in: their own page, signing out, changing their password
    ("GET", "/can-bo"), ("POST", "/dang-xuat"), ("GET", "/doi-mat-khau"), ("POST", "/doi-mat-khau"),
    ("GET", "/dang-nhap/sso/ma-xac-thuc"), ("POST", "/dang-nhap/sso/ma-xac-thuc"),  # the TOTP step after SSO
}  # fmt: skip
API_KEY_ONLY = {  # school software; tested in tests/test_api.py, tests/jobs, tests/interop and below
    ("POST", "/api/v1/documents"),
    ("GET", "/api/v1/batches/{batch_id}"),
    ("POST", "/api/v1/batches/{batch_id}/cancel"),
    ("GET", "/api/v1/documents/{doc_id}/vc"),
    ("POST", "/api/v1/documents/{doc_id}/translation"),
    ("GET", "/metrics"),  # or from SEALTRAIL_METRICS_ALLOW addresses (loopback); tests/accounts/test_identity.py
}
SIGNER_ONLY = {  # a registered signer's bearer credential (sealtrail agent / remote-sign); tested in tests/deferred
    ("GET", "/api/v1/signing/me"),
    ("GET", "/api/v1/signing/pending"),
    ("GET", "/api/v1/signing/{task_id}/prepared.{ext}"),
    ("POST", "/api/v1/signing/{task_id}/signature"),
}
PUBLIC = {
    ("GET", "/dang-nhap"), ("POST", "/dang-nhap"), ("GET", "/dang-nhap/sso"), ("GET", "/dang-nhap/sso/ve"),
    ("GET", "/hoc-sinh/dang-nhap"), ("POST", "/hoc-sinh/dang-nhap"),
    ("GET", "/chia-se/{token}"), ("GET", "/healthz"), ("GET", "/kiem-tra"), ("POST", "/kiem-tra"),
    ("POST", "/api/v1/verify"), ("POST", "/api/v1/verify/bulk"), ("GET", "/v/{token}"), ("POST", "/v/{token}"),
    ("GET", "/v/{token}/tlog-proof"), ("GET", "/log/checkpoint"), ("GET", "/log/key"), ("GET", "/log/tile/{path:path}"),
    ("GET", "/readyz"), ("GET", "/lo/{batch_id}"), ("GET", "/issuers/{school}"),
    ("GET", "/status/{school}/{year}/{purpose}"), ("GET", "/ns/credentials/v1"),
    ("GET", "/ns/credentials/transcript-credential.schema.json"),
}  # fmt: skip


def _app_routes(app: object) -> set[tuple[str, str]]:
    """(method, path) of every endpoint, including those of included routers (FastAPI ≥ 0.16x nests them)."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list[object], prefix: str) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                found.update((method, prefix + route.path) for method in route.methods - {"HEAD"})
            elif hasattr(route, "original_router"):
                walk(route.original_router.routes, prefix + route.include_context.prefix)  # type: ignore[attr-defined]

    walk(app.routes, "")  # type: ignore[attr-defined]
    return found


def _fill(path: str, school: str) -> str:
    path = path.replace("{school}", school).replace("{fmt}", "pdf")
    return re.sub(r"\{[a-z_]+\}", "KHONG-CO", path)


def _call(client: TestClient, method: str, path: str, csrf: str | None) -> int:
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    if method == "GET":
        return client.get(path, headers=headers).status_code
    if path.startswith("/api/"):
        return client.post(path, json=[], headers=headers).status_code
    return client.post(path, data={"csrf_token": csrf or ""}).status_code


def test_every_endpoint_has_a_rule(world: World) -> None:
    routes = _app_routes(world.app)
    ruled = set(RULES) | STUDENT_ROUTES | SIGNED_IN | API_KEY_ONLY | SIGNER_ONLY | PUBLIC
    unknown = {r for r in routes if r not in ruled and not r[1].startswith(("/docs", "/redoc", "/openapi"))}
    assert not unknown, f"endpoints without an access rule in this table: {sorted(unknown)}"
    assert not (ruled - PUBLIC - routes), "rules for endpoints that no longer exist"


def test_every_role_against_every_endpoint_in_its_school_and_another(world: World) -> None:
    routes = _app_routes(world.app)
    clients = {role: world.login(f"{role}-a") for role in STAFF}
    results: list[str] = []
    for (method, path), allowed in sorted(RULES.items()):
        assert (method, path) in routes
        for role, client in clients.items():
            csrf = world.csrf[f"{role}-a"]
            own = _call(client, method, _fill(path, SCHOOL_A), csrf)
            other = _call(client, method, _fill(path, SCHOOL_B), csrf)
            expect_own = "allowed" if role in allowed else "refused"
            got_own = "refused" if own == 403 else ("allowed" if own < 500 and own != 401 else f"error {own}")
            if got_own != expect_own:
                results.append(f"{role} {method} {path} in own school: expected {expect_own}, got {own}")
            if other != 403:
                results.append(f"{role} {method} {path} in another school: expected 403, got {other}")
    assert not results, "\n".join(results)
    with Session(world.dep.engine) as session:
        refusals = session.exec(select(AuditEvent).where(AuditEvent.action == "access.refused")).all()
    assert {r.org_code for r in refusals} == {SCHOOL_A, SCHOOL_B}  # every refusal is in the audit trail


def test_machine_endpoints_refuse_anonymous_callers_and_staff_sessions(world: World) -> None:
    """API-key and signer-credential endpoints answer 401 without their credential, even to a signed-in principal."""
    anonymous, principal = world.client(), world.login("principal-a")
    for method, path in sorted(API_KEY_ONLY | SIGNER_ONLY):
        for client, csrf in ((anonymous, None), (principal, world.csrf["principal-a"])):
            status = _call(client, method, _fill(path, SCHOOL_A), csrf)
            assert status == 401, (method, path, status)


def test_unauthenticated_callers_are_sent_to_sign_in_or_get_401(world: World) -> None:
    anonymous = world.client()
    for method, path in sorted(set(RULES) | STUDENT_ROUTES | SIGNED_IN):
        status = _call(anonymous, method, _fill(path, SCHOOL_A), None)
        assert status == (401 if path.startswith("/api/") else 303), (method, path, status)


def test_students_reach_only_the_portal_and_staff_never_reach_it(world: World) -> None:
    client = world.client()
    code = service.issue_student_code(world.dep.engine, "student-a", SCHOOL_A)
    assert client.post("/hoc-sinh/dang-nhap", data={"code": code}).status_code == 303
    csrf = _csrf(world, client)
    for method, path in sorted(RULES):
        assert _call(client, method, _fill(path, SCHOOL_A), csrf) == 403, (method, path)
    for method, path in sorted(STUDENT_ROUTES):
        status = _call(client, method, _fill(path, SCHOOL_A), csrf)
        assert status not in (401, 403) and status < 500, (method, path, status)
    assert client.post("/hoc-sinh/dang-nhap", data={"code": code}).status_code == 401  # the code works once
    principal = world.login("principal-a")
    for method, path in sorted(STUDENT_ROUTES):
        assert _call(principal, method, _fill(path, SCHOOL_A), world.csrf["principal-a"]) == 403, (method, path)


def _csrf(world: World, client: TestClient) -> str:
    from tests.accounts.conftest import csrf_of

    return csrf_of(world.dep, client)


def test_a_department_auditor_reads_the_schools_below_but_cannot_sign_or_revoke(world: World) -> None:
    client = world.login("auditor-so")
    csrf = world.csrf["auditor-so"]
    for school in (SCHOOL_A, SCHOOL_B):  # A is below the Sở through the Phòng, B directly
        assert client.get(f"/can-bo/{school}/hang-doi").status_code == 200
        assert client.get(f"/can-bo/{school}/nhat-ky?dinh-dang=json").status_code == 200
        assert _call(client, "POST", f"/can-bo/{school}/duyet-ky", csrf) == 403
        assert _call(client, "POST", f"/api/v1/schools/{school}/documents/X/revoke", csrf) == 403
    assert client.get("/can-bo/PGD-OTHER/hang-doi").status_code == 403


@pytest.mark.parametrize(
    ("scopes", "read", "edit"),
    [(["workflow:read"], 200, 403), (["workflow:edit"], 403, 422), (["documents:issue"], 403, 403)],
)
def test_api_keys_act_only_within_their_scopes_and_school(
    world: World, scopes: list[str], read: int, edit: int
) -> None:
    key = create_api_key(world.dep, SCHOOL_A, scopes)
    client = world.client()
    auth = {"Authorization": f"Bearer {key}"}
    assert client.get(f"/api/v1/schools/{SCHOOL_A}/work-items", headers=auth).status_code == read
    assert client.post(f"/api/v1/schools/{SCHOOL_A}/work-items", json=[], headers=auth).status_code == edit
    assert client.get(f"/api/v1/schools/{SCHOOL_B}/work-items", headers=auth).status_code == 403
    assert client.get(f"/can-bo/{SCHOOL_A}/hang-doi", headers=auth).status_code in (403, 200 if read == 200 else 403)
    deferred = f"/api/v1/schools/{SCHOOL_A}/signing/documents"
    assert client.post(deferred, json={}, headers=auth).status_code == (422 if "documents:issue" in scopes else 403)
    assert client.post(f"{deferred}/X/cancel", headers=auth).status_code == (
        404 if "documents:issue" in scopes else 403
    )
    assert client.post(f"/api/v1/schools/{SCHOOL_B}/signing/documents", json={}, headers=auth).status_code == 403
    if "documents:issue" not in scopes:
        assert client.post("/api/v1/documents", json={}, headers=auth).status_code == 403
