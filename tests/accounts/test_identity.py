"""People management by the school admin (add, reset password → forced change, re-enrol TOTP, deactivate), parents
of minors, verifier organisations' look-up keys (and the bulk CSV look-up that now needs one), and /metrics access.
"""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

import schemas
from accounts import service
from accounts.models import AuditEvent
from sealtrail.web.api import create_api_key, list_api_keys
from tests.accounts.conftest import PASSWORD, SCHOOL_A, SCHOOL_B, World, csrf_of

VERIFIER = "DHQG-TS"  # a university's admissions office
LOOKUP_CSV = b"so_hieu,ho_ten,ngay_sinh\r\nB-000123,Nguyen Van An,01/02/2008\r\n"


def _audit(world: World, action: str) -> list[AuditEvent]:
    with Session(world.dep.engine) as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


def _next_code(world: World, username: str) -> str:
    """The authenticator's code for the next 30-second step (a code is accepted once, so a second sign-in in the
    same step needs the next one; the server allows one step of clock drift)."""
    return pyotp.TOTP(world.totp[username]).at(time.time() + 30)


def _sign_in(world: World, username: str, password: str, code: str) -> tuple[TestClient, int, str]:
    client = world.client()
    response = client.post("/dang-nhap", data={"username": username, "password": password, "totp": code})
    return client, response.status_code, response.headers.get("location", "")


@pytest.fixture
def verifier(world: World) -> World:
    service.create_org(world.dep.engine, VERIFIER, "Phòng tuyển sinh Đại học Quốc gia", "university")
    world.add_staff("ts-admin", VERIFIER, "school_admin")
    world.add_staff("ts-staff", VERIFIER, "verifier_org")
    return world


# --- verifier organisations and the bulk look-up -----------------------------------------------------------------


def test_the_csv_look_up_needs_a_verifier_key_while_zip_checks_stay_public(verifier: World) -> None:
    world = verifier
    anonymous = world.client()
    refused = anonymous.post("/api/v1/verify/bulk", files={"file": ("t.csv", LOOKUP_CSV, "text/csv")})
    assert refused.status_code == 401 and "verifier organisation" in refused.json()["detail"]
    assert anonymous.post("/api/v1/verify/bulk", files={"file": ("x.zip", b"PK no")}).status_code == 400  # checked

    school_key = create_api_key(world.dep, SCHOOL_A, ["documents:issue"])
    wrong = anonymous.post(
        "/api/v1/verify/bulk",
        files={"file": ("t.csv", LOOKUP_CSV, "text/csv")},
        headers={"Authorization": f"Bearer {school_key}"},
    )
    assert wrong.status_code == 403

    admin = world.login("ts-admin")
    page = admin.post(f"/can-bo/{VERIFIER}/khoa-tra-cuu", data={"csrf_token": world.csrf["ts-admin"], "label": "TS"})
    assert page.status_code == 200
    key = re.search(r'id="new-key">(st_[^<]+)<', page.text).group(1)  # type: ignore[union-attr]
    auth = {"Authorization": f"Bearer {key}"}
    answer = world.client().post("/api/v1/verify/bulk", files={"file": ("t.csv", LOOKUP_CSV, "text/csv")}, headers=auth)
    assert answer.status_code == 200 and answer.json()["items"][0]["result"] == "no_match"
    assert [e.org_code for e in _audit(world, "verify.lookup") if e.outcome == "ok"] == [VERIFIER]

    key_id = re.search(r"/khoa-tra-cuu/([0-9a-f]{16})/thu-hoi", admin.get(f"/can-bo/{VERIFIER}/khoa-tra-cuu").text)
    assert key_id is not None
    revoked = admin.post(
        f"/can-bo/{VERIFIER}/khoa-tra-cuu/{key_id.group(1)}/thu-hoi", data={"csrf_token": world.csrf["ts-admin"]}
    )
    assert revoked.status_code == 303
    gone = world.client().post("/api/v1/verify/bulk", files={"file": ("t.csv", LOOKUP_CSV, "text/csv")}, headers=auth)
    assert gone.status_code == 401
    created, removed = _audit(world, "apikey.create"), _audit(world, "apikey.revoke")
    assert created[-1].leaf_index is not None and removed[-1].leaf_index is not None  # key changes: public log
    assert created[-1].actor == "ts-admin" and removed[-1].ip


def test_the_look_up_is_rate_limited_per_key(verifier: World) -> None:
    first, second = (create_api_key(verifier.dep, VERIFIER, ["verify:bulk"]) for _ in range(2))
    client = verifier.client()

    def ask(key: str) -> int:
        files = {"file": ("t.csv", LOOKUP_CSV, "text/csv")}
        return client.post("/api/v1/verify/bulk", files=files, headers={"Authorization": f"Bearer {key}"}).status_code

    assert [ask(first) for _ in range(4)] == [200, 200, 200, 429]
    assert ask(second) == 200  # another key (same address) has its own budget


def test_verifier_keys_are_managed_by_that_organisations_admin_only(verifier: World) -> None:
    world = verifier
    staff = world.login("ts-staff")
    assert staff.get(f"/can-bo/{VERIFIER}/khoa-tra-cuu").status_code == 200  # its people see the keys
    assert (
        staff.post(f"/can-bo/{VERIFIER}/khoa-tra-cuu", data={"csrf_token": world.csrf["ts-staff"]}).status_code == 403
    )
    admin = world.login("ts-admin")
    csrf = world.csrf["ts-admin"]
    for school in (SCHOOL_A, SCHOOL_B):  # nothing in the schools
        assert admin.get(f"/can-bo/{school}/khoa-tra-cuu").status_code == 403
        assert admin.get(f"/can-bo/{school}/thanh-vien").status_code == 403
    school_admin = world.login("school_admin-a")
    made = school_admin.post(f"/can-bo/{SCHOOL_A}/khoa-tra-cuu", data={"csrf_token": world.csrf["school_admin-a"]})
    assert made.status_code == 422  # a school is not a verifier organisation
    assert school_admin.get(f"/can-bo/{VERIFIER}/khoa-tra-cuu").status_code == 403
    create_api_key(world.dep, "DH-KHAC", ["verify:bulk"])
    (other_id,) = [k["id"] for k in list_api_keys(world.dep, "DH-KHAC", "verify:bulk")]
    revoke = admin.post(f"/can-bo/{VERIFIER}/khoa-tra-cuu/{other_id}/thu-hoi", data={"csrf_token": csrf})
    assert revoke.status_code == 404 and list_api_keys(world.dep, "DH-KHAC", "verify:bulk")  # another org's key stays
    create_api_key(world.dep, SCHOOL_A, ["documents:issue"])  # a school's issuing key: not on this page
    listing = school_admin.get(f"/can-bo/{SCHOOL_A}/khoa-tra-cuu")
    assert listing.status_code == 200 and "documents:issue" not in listing.text
    (issuing_id,) = [k["id"] for k in list_api_keys(world.dep, SCHOOL_A, "documents:issue")]
    gone = school_admin.post(
        f"/can-bo/{SCHOOL_A}/khoa-tra-cuu/{issuing_id}/thu-hoi", data={"csrf_token": world.csrf["school_admin-a"]}
    )
    assert gone.status_code == 404 and list_api_keys(world.dep, SCHOOL_A, "documents:issue")


# --- /metrics ------------------------------------------------------------------------------------------------------


def test_metrics_need_a_metrics_key_or_an_allowed_address(world: World) -> None:
    outside = world.client()  # TestClient's address is "testclient", not loopback
    assert outside.get("/metrics").status_code == 401
    assert outside.get("/metrics", headers={"Authorization": "Bearer st_nope"}).status_code == 401
    issuing = create_api_key(world.dep, SCHOOL_A, ["documents:issue"])
    assert outside.get("/metrics", headers={"Authorization": f"Bearer {issuing}"}).status_code == 403
    metrics = create_api_key(world.dep, "ops", ["metrics"])
    got = outside.get("/metrics", headers={"Authorization": f"Bearer {metrics}"})
    assert got.status_code == 200 and "sealtrail_database_up" in got.text
    from sealtrail.web.app import create_app

    loopback = TestClient(create_app(world.dep.settings), client=("127.0.0.1", 40000))  # type: ignore[arg-type]
    assert loopback.get("/metrics").status_code == 200
    assert world.login("principal-a").get("/metrics").status_code == 401  # a staff session is not a metrics key


# --- account recovery and the people page --------------------------------------------------------------------------


def _ask_second_admin(world: World, username: str, action: str) -> None:
    """Another admin of school A asks first: a signer's credentials are reset only when a second admin confirms."""
    world.add_staff("school_admin2-a", SCHOOL_A, "school_admin")
    other = world.login("school_admin2-a")
    asked = other.post(
        f"/can-bo/{SCHOOL_A}/thanh-vien/{username}/{action}", data={"csrf_token": world.csrf["school_admin2-a"]}
    )
    assert asked.status_code == 303 and "24" in asked.headers["location"]


def test_a_reset_password_must_be_changed_at_the_next_sign_in_and_ends_old_sessions(world: World) -> None:
    teacher = world.login("homeroom_teacher-a")
    assert teacher.get(f"/can-bo/{SCHOOL_A}/hang-doi").status_code == 200
    _ask_second_admin(world, "homeroom_teacher-a", "dat-lai-mat-khau")  # a signer: two admins (issue 22)
    admin = world.login("school_admin-a")
    reset = admin.post(
        f"/can-bo/{SCHOOL_A}/thanh-vien/homeroom_teacher-a/dat-lai-mat-khau",
        data={"csrf_token": world.csrf["school_admin-a"]},
    )
    assert reset.status_code == 200
    temporary = re.search(r'id="temporary-password">([^<]+)<', reset.text).group(1)  # type: ignore[union-attr]
    assert teacher.get(f"/can-bo/{SCHOOL_A}/hang-doi").status_code == 303  # the old session is gone

    _c, status, _ = _sign_in(world, "homeroom_teacher-a", PASSWORD, _next_code(world, "homeroom_teacher-a"))
    assert status == 401  # the old password no longer works
    client, status, where = _sign_in(world, "homeroom_teacher-a", temporary, _next_code(world, "homeroom_teacher-a"))
    assert (status, where) == (303, "/doi-mat-khau")
    assert client.get("/can-bo").headers["location"] == "/doi-mat-khau"
    assert client.get(f"/can-bo/{SCHOOL_A}/hang-doi").status_code == 403  # no role until the password is changed
    csrf = csrf_of(world.dep, client)
    short = client.post("/doi-mat-khau", data={"csrf_token": csrf, "current": temporary, "new": "x", "repeat": "x"})
    assert short.status_code == 422 and "12" in short.text
    new = "một-mật-khẩu-mới-2026"
    changed = client.post("/doi-mat-khau", data={"csrf_token": csrf, "current": temporary, "new": new, "repeat": new})
    assert changed.status_code == 303 and changed.headers["location"] == "/can-bo"
    assert client.get(f"/can-bo/{SCHOOL_A}/hang-doi").status_code == 200

    (event,) = _audit(world, "password.reset")
    assert (event.actor, event.org_code, event.target, event.outcome) == (
        "school_admin-a",
        SCHOOL_A,
        "homeroom_teacher-a",
        "ok",
    )
    assert event.ip and event.at and event.leaf_index is not None  # who, when, from where; in the public log
    assert temporary not in str(event.detail) and temporary not in reset.headers.get("location", "")


def test_re_enrolling_totp_invalidates_the_old_seed(world: World) -> None:
    _ask_second_admin(world, "principal-a", "xac-thuc-lai")
    admin = world.login("school_admin-a")
    old = world.totp["principal-a"]
    answer = admin.post(
        f"/can-bo/{SCHOOL_A}/thanh-vien/principal-a/xac-thuc-lai", data={"csrf_token": world.csrf["school_admin-a"]}
    )
    assert answer.status_code == 200
    new = re.search(r'id="totp-secret">([A-Z2-7]+)<', answer.text).group(1)  # type: ignore[union-attr]
    assert new != old
    _c, status, _ = _sign_in(world, "principal-a", PASSWORD, pyotp.TOTP(old).now())
    assert status == 401
    _c, status, where = _sign_in(world, "principal-a", PASSWORD, pyotp.TOTP(new).now())
    assert (status, where) == (303, "/can-bo")
    (event,) = _audit(world, "totp.reset")
    assert event.actor == "school_admin-a" and event.leaf_index is not None


def test_an_admin_cannot_reset_or_deactivate_people_of_another_school(world: World) -> None:
    admin = world.login("school_admin-a")
    csrf = {"csrf_token": world.csrf["school_admin-a"]}
    for action in ("dat-lai-mat-khau", "xac-thuc-lai", "ngung"):
        assert admin.post(f"/can-bo/{SCHOOL_B}/thanh-vien/principal-b/{action}", data=csrf).status_code == 403
        assert admin.post(f"/can-bo/{SCHOOL_A}/thanh-vien/principal-b/{action}", data=csrf).status_code == 422
    service.grant(world.dep.engine, "principal-b", SCHOOL_A, "subject_teacher")  # works in both schools now
    refused = admin.post(f"/can-bo/{SCHOOL_A}/thanh-vien/principal-b/dat-lai-mat-khau", data=csrf)
    assert refused.status_code == 422 and SCHOOL_B in refused.json()["detail"]
    assert admin.post(f"/can-bo/{SCHOOL_A}/thanh-vien/principal-b/ngung", data=csrf).status_code == 303
    world.login("principal-b")  # still signs in: only the role in school A went
    assert service.members(world.dep.engine, SCHOOL_A).count(("principal-b", "principal-b", "subject_teacher")) == 0


def test_the_admin_adds_a_person_changes_roles_and_deactivates_them(world: World) -> None:
    admin = world.login("school_admin-a")
    csrf = world.csrf["school_admin-a"]
    made = admin.post(
        f"/can-bo/{SCHOOL_A}/thanh-vien/moi",
        data={"csrf_token": csrf, "username": "gv-moi", "full_name": "Trần Văn Mới", "role": "subject_teacher"},
    )
    assert made.status_code == 200
    temporary = re.search(r'id="temporary-password">([^<]+)<', made.text).group(1)  # type: ignore[union-attr]
    world.totp["gv-moi"] = re.search(r'id="totp-secret">([A-Z2-7]+)<', made.text).group(1)  # type: ignore[union-attr]
    listing = admin.get(f"/can-bo/{SCHOOL_A}/thanh-vien")
    assert "Trần Văn Mới" in listing.text and "principal-b" not in listing.text
    granted = admin.post(
        f"/can-bo/{SCHOOL_A}/thanh-vien", data={"csrf_token": csrf, "username": "gv-moi", "role": "homeroom_teacher"}
    )
    assert granted.status_code == 303
    roles = {r for u, _n, r in service.members(world.dep.engine, SCHOOL_A) if u == "gv-moi"}
    assert roles == {"subject_teacher", "homeroom_teacher"}
    client, status, where = _sign_in(world, "gv-moi", temporary, pyotp.TOTP(world.totp["gv-moi"]).now())
    assert (status, where) == (303, "/doi-mat-khau")

    off = admin.post(f"/can-bo/{SCHOOL_A}/thanh-vien/gv-moi/ngung", data={"csrf_token": csrf})
    assert off.status_code == 303
    assert client.get("/doi-mat-khau").status_code == 303  # its session ended
    _c, status, _ = _sign_in(world, "gv-moi", temporary, _next_code(world, "gv-moi"))
    assert status == 401
    assert (
        admin.post(f"/can-bo/{SCHOOL_A}/thanh-vien/school_admin-a/ngung", data={"csrf_token": csrf}).status_code == 422
    )
    assert {e.target for e in _audit(world, "person.create")} == {"gv-moi"}


# --- parents of minors ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_parents_see_only_their_childrens_documents_in_the_linking_school(world: World) -> None:
    from tests.accounts.test_students import issue_class

    engine = world.dep.engine
    klass = schemas.load_sample("class_9a1")
    mine, theirs = issue_class(world, klass[:2])  # student-a's transcript and a classmate's
    service.create_person(engine, "student-a2", "Bạn cùng lớp", personal_id=klass[1]["holder"]["personal_id"])
    service.grant(engine, "student-a2", SCHOOL_A, "student")
    admin = world.login("school_admin-a")
    csrf = world.csrf["school_admin-a"]
    for username, name in (("ph-a", "Nguyễn Văn Cha"), ("ph-a2", "Lê Thị Mẹ")):
        added = admin.post(
            f"/can-bo/{SCHOOL_A}/thanh-vien/moi",
            data={"csrf_token": csrf, "username": username, "full_name": name, "role": "parent"},
        )
        assert added.status_code == 200 and "temporary-password" not in added.text  # parents sign in with codes
    for parent, child in (("ph-a", "student-a"), ("ph-a2", "student-a2")):
        linked = admin.post(
            f"/can-bo/{SCHOOL_A}/phu-huynh", data={"csrf_token": csrf, "parent": parent, "student": child}
        )
        assert linked.status_code == 303
    assert (
        admin.post(  # a pupil of another school cannot be linked from here
            f"/can-bo/{SCHOOL_A}/phu-huynh", data={"csrf_token": csrf, "parent": "ph-a", "student": "principal-b"}
        ).status_code
        == 422
    )
    foreign = {"csrf_token": csrf, "parent": "ph-a", "student": "student-a"}
    assert admin.post(f"/can-bo/{SCHOOL_B}/phu-huynh", data=foreign).status_code == 403  # not the admin there

    def parent_client(username: str, school: str = SCHOOL_A) -> tuple[TestClient, str]:
        code = service.issue_student_code(engine, username, school)
        client = world.client()
        assert client.post("/hoc-sinh/dang-nhap", data={"code": code}).status_code == 303
        return client, csrf_of(world.dep, client)

    father, father_csrf = parent_client("ph-a")
    home = father.get("/hoc-sinh")
    assert home.status_code == 200 and mine in home.text and theirs not in home.text
    assert father.get(f"/hoc-sinh/van-ban/{mine}/tai/pdf").content.startswith(b"%PDF")
    assert father.get(f"/hoc-sinh/van-ban/{theirs}/tai/pdf").status_code == 404  # another family's child
    assert father.post(f"/hoc-sinh/van-ban/{theirs}/ban-sao", data={"csrf_token": father_csrf}).status_code == 404
    copy = father.post(f"/hoc-sinh/van-ban/{mine}/ban-sao", data={"csrf_token": father_csrf})
    assert copy.status_code == 303
    from workflow.states import Transition, WorkItem

    with Session(engine) as session:
        made = session.exec(select(WorkItem).where(WorkItem.kind == "copy")).one()
        assert made.holder_personal_id == klass[0]["holder"]["personal_id"]
        assert "Nguyễn Văn Cha" in made.data["requested_by"]
        step = session.exec(select(Transition).where(Transition.item_id == made.id)).one()
        assert (step.actor, step.role) == ("ph-a", "parent")

    mother, _ = parent_client("ph-a2")
    other_home = mother.get("/hoc-sinh")
    assert theirs in other_home.text and mine not in other_home.text
    assert father.get(f"/can-bo/{SCHOOL_A}/hang-doi").status_code == 403  # a parent is not staff

    # a parent role in school B linked there to a pupil whose documents are school A's sees nothing of them
    service.create_person(engine, "ph-b", "Phụ huynh B", with_totp=False)
    service.grant(engine, "ph-b", SCHOOL_B, "parent")
    service.grant(engine, "student-a", SCHOOL_B, "student")
    world.add_staff("school_admin-b", SCHOOL_B, "school_admin")
    admin_b = world.login("school_admin-b")
    assert (
        admin_b.post(
            f"/can-bo/{SCHOOL_B}/phu-huynh",
            data={"csrf_token": world.csrf["school_admin-b"], "parent": "ph-b", "student": "student-a"},
        ).status_code
        == 303
    )
    stranger, _ = parent_client("ph-b", SCHOOL_B)
    assert mine not in stranger.get("/hoc-sinh").text
    assert stranger.get(f"/hoc-sinh/van-ban/{mine}/tai/pdf").status_code == 404

    unlinked = admin.post(
        f"/can-bo/{SCHOOL_A}/phu-huynh",
        data={"csrf_token": csrf, "parent": "ph-a", "student": "student-a", "action": "unlink"},
    )
    assert unlinked.status_code == 303
    assert father.get(f"/hoc-sinh/van-ban/{mine}/tai/pdf").status_code == 404
    links = _audit(world, "parent.link") + _audit(world, "parent.unlink")
    assert {(e.actor, e.target) for e in links} >= {("school_admin-a", "ph-a"), ("school_admin-b", "ph-b")}
    assert all(e.leaf_index is not None for e in links)
