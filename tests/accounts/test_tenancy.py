"""Issue 22 on the accounts side, attacked as one organisation's admin, a university, a verifier organisation or
nobody, across two schools (A, B), a university and a verifier organisation, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

import schemas
from accounts import service
from tests.accounts.conftest import SCHOOL_A, SCHOOL_B, World

UNIVERSITY = "DHQG-HN"
VERIFIER = "XACMINH-1"


@pytest.fixture
def orgs(world: World) -> World:
    """The conftest's Sở, Phòng and schools A and B, plus a university and a verifier organisation with admins."""
    service.create_org(world.dep.engine, UNIVERSITY, "Đại học Quốc gia Hà Nội", "university")
    service.create_org(world.dep.engine, VERIFIER, "Công ty xác minh hồ sơ", "verifier_org")
    world.add_staff("admin-b", SCHOOL_B, "school_admin")
    world.add_staff("admin-uni", UNIVERSITY, "school_admin")
    world.add_staff("admin-ver", VERIFIER, "school_admin")
    return world


def test_audit_exports_neutralise_formulas_written_by_anyone(orgs: World) -> None:
    ctx = orgs.app.state.accounts  # type: ignore[attr-defined]
    for hostile in ('=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\r=1"):
        ctx.record(None, hostile, "document.revoke", org=SCHOOL_A, target=hostile)
    client = orgs.login("auditor-a")
    export = client.get(f"/can-bo/{SCHOOL_A}/nhat-ky")
    assert export.status_code == 200
    rows = [r for r in csv.DictReader(io.StringIO(export.text)) if r["action"] == "document.revoke"]
    assert len(rows) == 6
    for row in rows:
        for cell in (row["actor"], row["target"]):
            assert cell.startswith("'") and cell[1] in "=+-@\t\r", cell


@pytest.mark.parametrize("query", ["tu=2020-01-01&den=9999-12-31", "tu=0001-01-01", "tu=2021-01-02&den=2021-01-01"])
def test_audit_dates_out_of_range_are_a_400_not_a_500(orgs: World, query: str) -> None:
    client = orgs.login("auditor-a")
    response = client.get(f"/can-bo/{SCHOOL_A}/nhat-ky?{query}")
    assert response.status_code == 400 and "/" in response.json()["detail"]
    api = query.replace("tu=", "start=").replace("den=", "end=")
    assert client.get(f"/api/v1/schools/{SCHOOL_A}/audit?{api}").status_code == 400


def _grant(world: World, admin: str, org: str, username: str, role: str, action: str = "grant") -> Any:
    client = world.clients.get(admin) or world.clients.setdefault(admin, world.login(admin))
    data = {"csrf_token": world.csrf[admin], "username": username, "role": role, "action": action}
    return client.post(f"/can-bo/{org}/thanh-vien", data=data)


def _student_client(world: World, org: str, username: str) -> Any:
    """A portal session opened with a one-time code from ``org`` (minted as the school's staff would)."""
    code = service.issue_student_code(world.dep.engine, username, org)
    pupil = world.client()
    assert pupil.post("/hoc-sinh/dang-nhap", data={"code": code}).status_code == 303
    return pupil


def test_no_other_organisation_can_make_a_schools_pupil_its_own(orgs: World) -> None:
    """The reported takeover: B's admin (or a university's, or a verifier's) grants A's pupil a pupil or parent
    role, mints a sign-in code and reads A's transcripts. Every step is refused, with one message for all."""
    answers = {}
    for admin, org in (("admin-b", SCHOOL_B), ("admin-uni", UNIVERSITY), ("admin-ver", VERIFIER)):
        for role in ("student", "parent"):
            answer = _grant(orgs, admin, org, "student-a", role)
            assert answer.status_code == 422, (admin, role)
            answers[(admin, role)] = answer.json()["detail"]
        nobody = _grant(orgs, admin, org, "khong-co-ai-ten-nay", "student").json()["detail"]
        assert {answers[(admin, "student")], answers[(admin, "parent")]} == {nobody}  # nothing tells them apart
        minted = orgs.clients[admin].post(
            f"/can-bo/{org}/hoc-sinh/ma-dang-nhap", data={"csrf_token": orgs.csrf[admin], "username": "student-a"}
        )
        assert minted.status_code == 404
    roles = {(o, r) for u, o, r in _memberships(orgs) if u == "student-a"}
    assert roles == {(SCHOOL_A, "student")}
    for admin, org in (("admin-uni", UNIVERSITY), ("admin-ver", VERIFIER)):  # nor as a new person of their own
        made = orgs.clients[admin].post(
            f"/can-bo/{org}/thanh-vien/moi",
            data={"csrf_token": orgs.csrf[admin], "username": f"hs-{org}", "full_name": "Nguyễn Thị Thu Hằng",
                  "role": "student", "personal_id": "001310012345"},
        )  # fmt: skip
        assert made.status_code == 422 and "pupil" in made.json()["detail"]


def _memberships(world: World) -> list[tuple[str, str, str]]:
    from sqlmodel import Session, select

    from accounts.models import Membership, Organisation, Person

    with Session(world.dep.engine) as session:
        rows = session.exec(
            select(Person.username, Organisation.code, Membership.role)
            .join(Membership, Membership.person_id == Person.id)  # type: ignore[arg-type]
            .join(Organisation, Organisation.id == Membership.org_id)  # type: ignore[arg-type]
        ).all()
    return [(u, o, r) for u, o, r in rows]


def test_no_grant_reaches_another_organisations_staff(orgs: World) -> None:
    """B's admin cannot give A's principal a role at B (which blocked A's resets and let B end A's sessions)."""
    refused = _grant(orgs, "admin-b", SCHOOL_B, "principal-a", "subject_teacher")
    assert refused.status_code == 422
    assert refused.json()["detail"] == _grant(orgs, "admin-b", SCHOOL_B, "no-such-user-x", "auditor").json()["detail"]
    assert not [m for m in _memberships(orgs) if m[0] == "principal-a" and m[1] != SCHOOL_A]
    deactivate = orgs.clients["admin-b"].post(
        f"/can-bo/{SCHOOL_B}/thanh-vien/principal-a/ngung", data={"csrf_token": orgs.csrf["admin-b"]}
    )
    assert deactivate.status_code == 422
    principal = orgs.login("principal-a")
    assert principal.get(f"/can-bo/{SCHOOL_A}/hang-doi").status_code == 200  # A's principal is untouched
    from sqlmodel import Session, select

    from accounts.models import AuditEvent

    with Session(orgs.dep.engine) as session:
        refusals = session.exec(
            select(AuditEvent).where(AuditEvent.action == "role.grant", AuditEvent.outcome == "refused")
        ).all()
    assert {(e.actor, e.org_code, e.target) for e in refusals} >= {("admin-b", SCHOOL_B, "principal-a")}


def test_a_pupils_session_ends_when_the_role_goes_and_sees_only_its_school(orgs: World) -> None:
    from accounts.models import Organisation  # noqa: F401 - the tables are defined

    pupil = _student_client(orgs, SCHOOL_A, "student-a")
    assert pupil.get("/hoc-sinh").status_code == 200
    # an operator (CLI) made the same person a pupil at B too: a session opened with A's code sees A only
    service.grant(orgs.dep.engine, "student-a", SCHOOL_B, "student")
    token = next(v for k, v in pupil.cookies.items() if k.endswith("st_session"))
    actor = service.actor_from_session(orgs.dep.engine, token)
    assert actor is not None and set(actor.roles) == {SCHOOL_A}
    revoked = _grant(orgs, "school_admin-a", SCHOOL_A, "student-a", "student", action="revoke")
    assert revoked.status_code == 303
    assert pupil.get("/hoc-sinh").status_code == 303  # the session opened with the role ended with it
    assert service.actor_from_session(orgs.dep.engine, token) is None


def test_an_admin_cannot_give_itself_signing_roles(orgs: World) -> None:
    for role in ("homeroom_teacher", "principal", "registrar"):
        answer = _grant(orgs, "school_admin-a", SCHOOL_A, "school_admin-a", role)
        assert answer.status_code == 422 and "separation of duties" in answer.json()["detail"], role
    orgs.add_staff("admin2-a", SCHOOL_A, "school_admin")
    answer = _grant(orgs, "admin2-a", SCHOOL_A, "school_admin-a", "principal")  # nor through a colleague
    assert answer.status_code == 422 and "administrator cannot hold a signing role" in answer.json()["detail"]
    answer = _grant(orgs, "school_admin-a", SCHOOL_A, "principal-a", "school_admin")  # nor a signer made admin
    assert answer.status_code == 422
    assert _grant(orgs, "school_admin-a", SCHOOL_A, "subject_teacher-a", "homeroom_teacher").status_code == 303
    roles = {r for u, o, r in _memberships(orgs) if u == "school_admin-a"}
    assert roles == {"school_admin"}


def test_a_signers_credentials_are_reset_only_by_two_admins(orgs: World) -> None:
    orgs.add_staff("admin2-a", SCHOOL_A, "school_admin")
    first = orgs.login("school_admin-a")
    url = f"/can-bo/{SCHOOL_A}/thanh-vien/principal-a/dat-lai-mat-khau"
    for _ in range(2):  # the same admin asking twice is still one admin
        asked = first.post(url, data={"csrf_token": orgs.csrf["school_admin-a"]})
        assert asked.status_code == 303 and "second%20admin" in asked.headers["location"]
    orgs.login("principal-a")  # the principal's password still works: nothing was reset
    second = orgs.login("admin2-a")
    done = second.post(url, data={"csrf_token": orgs.csrf["admin2-a"]})
    assert done.status_code == 200 and 'id="temporary-password"' in done.text
    from sqlmodel import Session, select

    from accounts.models import AuditEvent

    with Session(orgs.dep.engine) as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.target == "principal-a")).all()
    trail = [(e.actor, e.action, e.outcome) for e in events if e.action.startswith("password.")]
    assert trail == [("school_admin-a", "password.request", "pending")] * 2 + [("admin2-a", "password.reset", "ok")]
    # a non-signer (the auditor) is reset by one admin, as before
    assert (
        first.post(
            f"/can-bo/{SCHOOL_A}/thanh-vien/auditor-a/dat-lai-mat-khau",
            data={"csrf_token": orgs.csrf["school_admin-a"]},
        ).status_code
        == 200
    )


def test_a_password_change_ends_the_other_sessions(orgs: World) -> None:
    from tests.accounts.conftest import PASSWORD, csrf_of

    laptop = orgs.login("auditor-a")
    import time

    import pyotp

    phone = orgs.client()
    code = pyotp.TOTP(orgs.totp["auditor-a"]).at(time.time() + 30)
    assert (
        phone.post("/dang-nhap", data={"username": "auditor-a", "password": PASSWORD, "totp": code}).status_code == 303
    )
    new = "mật khẩu mới của tôi 2027"
    changed = laptop.post(
        "/doi-mat-khau", data={"csrf_token": csrf_of(orgs.dep, laptop), "current": PASSWORD, "new": new, "repeat": new}
    )
    assert changed.status_code == 303
    assert laptop.get(f"/can-bo/{SCHOOL_A}/nhat-ky").status_code == 200  # the session that changed it goes on
    assert phone.get(f"/can-bo/{SCHOOL_A}/nhat-ky").status_code == 303  # the other one ended


@pytest.mark.parametrize(
    "weak", ["aaaaaaaaaaaa", "abababababab", "password1234", "PASSWORD1234", "matkhau12345", "chỉtoànchữcáithôi"]
)
def test_weak_and_breached_passwords_are_refused(weak: str) -> None:
    with pytest.raises(service.AccountError):
        service.check_password_strength(weak)


def test_a_good_password_passes_the_policy() -> None:
    service.check_password_strength("mật-khẩu-đủ-dài-2026")
    service.check_password_strength("Tr4ng-Xanh-Mây-Trắng")


@pytest.mark.slow
def test_share_links_follow_the_sharers_access_show_only_what_was_chosen_and_the_school_sees_them(
    orgs: World,
) -> None:
    from sqlmodel import Session

    from registry.records import DocumentRecord
    from tests.accounts.conftest import csrf_of
    from tests.accounts.test_students import issue_class

    engine = orgs.dep.engine
    (mine,) = issue_class(orgs, schemas.load_sample("class_9a1")[:1])
    admin = orgs.login("school_admin-a")
    csrf = orgs.csrf["school_admin-a"]
    added = admin.post(
        f"/can-bo/{SCHOOL_A}/thanh-vien/moi",
        data={"csrf_token": csrf, "username": "ph-a", "full_name": "Nguyễn Văn Cha", "role": "parent"},
    )
    assert added.status_code == 200
    form = {"csrf_token": csrf, "parent": "ph-a", "student": "student-a"}
    assert admin.post(f"/can-bo/{SCHOOL_A}/phu-huynh", data=form).status_code == 303
    father = _student_client(orgs, SCHOOL_A, "ph-a")
    made = father.post(
        "/hoc-sinh/chia-se",
        data={"csrf_token": csrf_of(orgs.dep, father), "doc_id": mine, "fields": ["holder_name"], "days": 7},
    )
    assert made.status_code == 303
    link = made.headers["location"].split("lien-ket=", 1)[1]
    shown = orgs.client().get(link)
    with Session(engine) as session:
        record = session.get(DocumentRecord, mine)
        assert record is not None
        qr_token = record.token
    assert shown.status_code == 200 and "Nguyễn Thị Thu Hằng" in shown.text
    assert mine not in shown.text and qr_token not in shown.text and "/v/" not in shown.text  # only what was chosen
    # the pupil sees the parent's link, and so does the school
    pupil = _student_client(orgs, SCHOOL_A, "student-a")
    assert link.rsplit("/", 1)[1] not in pupil.get("/hoc-sinh").text  # the token itself is never listed again
    assert mine in pupil.get("/hoc-sinh").text and "ph-a" in admin.get(f"/can-bo/{SCHOOL_A}/chia-se").text
    # the parent is unlinked: the link stops at once
    form = {"csrf_token": csrf, "parent": "ph-a", "student": "student-a", "action": "unlink"}
    assert admin.post(f"/can-bo/{SCHOOL_A}/phu-huynh", data=form).status_code == 303
    assert orgs.client().get(link).status_code == 404
    # a pupil's own link, revoked by the school
    own = pupil.post(
        "/hoc-sinh/chia-se",
        data={"csrf_token": csrf_of(orgs.dep, pupil), "doc_id": mine, "fields": ["kind", "verify"], "days": 3},
    )
    own_link = own.headers["location"].split("lien-ket=", 1)[1]
    page = orgs.client().get(own_link)
    assert page.status_code == 200 and mine in page.text and f"/v/{qr_token}" in page.text  # chosen this time
    from accounts import service as accounts_service

    share_id = accounts_service.sha256_hex(own_link.rsplit("/", 1)[1])
    other_school = orgs.login("admin-b")
    refused = other_school.post(
        f"/can-bo/{SCHOOL_B}/chia-se/{share_id}/thu-hoi", data={"csrf_token": orgs.csrf["admin-b"]}
    )
    assert refused.status_code == 404  # not B's document
    revoked = admin.post(f"/can-bo/{SCHOOL_A}/chia-se/{share_id}/thu-hoi", data={"csrf_token": csrf})
    assert revoked.status_code == 303 and orgs.client().get(own_link).status_code == 404
    # only an issued document can be shared
    with Session(engine) as session:
        record = session.get(DocumentRecord, mine)
        assert record is not None
        record.status = "revoked"
        session.add(record)
        session.commit()
    late = pupil.post(
        "/hoc-sinh/chia-se", data={"csrf_token": csrf_of(orgs.dep, pupil), "doc_id": mine, "fields": ["kind"]}
    )
    assert late.status_code == 422
