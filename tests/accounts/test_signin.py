"""Staff sign-in: argon2 passwords plus TOTP, sessions in the database, cookie flags, rotation, expiry, lockout,
CSRF on cookie-authenticated changes, and a per-client limit on the sign-in form."""

from __future__ import annotations

from datetime import UTC, timedelta

import pyotp
from sqlmodel import Session, select

from accounts import service
from accounts.models import AuditEvent, LoginSession, Person
from tests.accounts.conftest import PASSWORD, SCHOOL_A, World


def _form(world: World, username: str, password: str = PASSWORD, code: str | None = None) -> dict[str, str]:
    return {"username": username, "password": password, "totp": code or pyotp.TOTP(world.totp[username]).now()}


def test_password_and_totp_open_a_session_with_a_strict_cookie(world: World) -> None:
    client = world.client()
    response = client.post("/dang-nhap", data=_form(world, "principal-a"))
    assert response.status_code == 303 and response.headers["location"] == "/can-bo"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-st_session=")
    for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
        assert flag.lower() in cookie.lower(), cookie
    token = cookie.split("=", 1)[1].split(";", 1)[0]
    with Session(world.dep.engine) as session:
        rows = session.exec(select(LoginSession)).all()
        person = session.exec(select(Person).where(Person.username == "principal-a")).one()
    assert [r.id for r in rows] == [service.sha256_hex(token)]  # only the hash is stored
    assert person.password_hash and person.password_hash.startswith("$argon2id$")
    home = client.get("/can-bo")
    assert home.status_code == 200 and SCHOOL_A in home.text and "principal" in home.text


def test_wrong_password_wrong_code_and_replayed_code_are_refused_alike(world: World) -> None:
    client = world.client()
    wrong_pw = client.post("/dang-nhap", data=_form(world, "principal-a", password="sai-mat-khau-roi"))
    wrong_code = client.post("/dang-nhap", data=_form(world, "principal-a", code="000000"))
    nobody = client.post("/dang-nhap", data={"username": "khong-co", "password": PASSWORD, "totp": "123456"})
    assert wrong_pw.status_code == wrong_code.status_code == nobody.status_code == 401
    assert "Sai tên đăng nhập, mật khẩu hoặc mã xác thực" in wrong_pw.text
    code = pyotp.TOTP(world.totp["principal-a"]).now()
    assert client.post("/dang-nhap", data=_form(world, "principal-a", code=code)).status_code == 303
    replay = world.client().post("/dang-nhap", data=_form(world, "principal-a", code=code))
    assert replay.status_code == 401  # a TOTP code works once


def test_five_failures_from_one_address_slow_that_address_only_and_the_owner_still_signs_in(world: World) -> None:
    """Failures count per (account, address): after five, this address waits (even with the right password),
    with the same message for a real and a made-up username; the owner at another address is not locked out."""
    attacker = world.client()  # TestClient's peer address is "testclient"
    ghost_form = {"username": "khong-co-ai", "password": PASSWORD, "totp": "123456"}
    for _ in range(5):
        wrong = _form(world, "registrar-a", password="sai-mat-khau-roi")
        assert attacker.post("/dang-nhap", data=wrong).status_code == 401
        assert attacker.post("/dang-nhap", data=ghost_form).status_code == 401
    locked = attacker.post("/dang-nhap", data=_form(world, "registrar-a"))
    ghost = attacker.post("/dang-nhap", data=ghost_form)
    assert locked.status_code == ghost.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert "thử lại sau 1 phút" in locked.text and "thử lại sau 1 phút" in ghost.text  # nothing tells them apart
    from fastapi.testclient import TestClient

    owner = TestClient(world.app, base_url="https://testserver", client=("192.0.2.7", 5000), follow_redirects=False)  # type: ignore[arg-type]
    assert owner.post("/dang-nhap", data=_form(world, "registrar-a")).status_code == 303
    with Session(world.dep.engine) as session:
        failed = session.exec(select(AuditEvent).where(AuditEvent.action == "login.failed")).all()
        throttled = session.exec(select(AuditEvent).where(AuditEvent.action == "login.throttled")).all()
    assert len(failed) == 10 and len(throttled) == 2


def test_a_sign_in_form_posted_from_another_site_is_refused(world: World) -> None:
    client = world.client()
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}, {"Origin": "null"}):
        assert client.post("/dang-nhap", data=_form(world, "principal-a"), headers=headers).status_code == 403
        assert client.post("/hoc-sinh/dang-nhap", data={"code": "X"}, headers=headers).status_code == 403
    same = {"Sec-Fetch-Site": "same-origin", "Origin": "null"}  # what Chromium sends under no-referrer
    assert client.post("/dang-nhap", data=_form(world, "principal-a"), headers=same).status_code == 303


def test_signing_in_again_rotates_the_session_and_ends_the_old_one(world: World) -> None:
    client = world.login("auditor-a")
    old = next(iter(client.cookies.values()))
    import time

    time.sleep(0.01)
    with Session(world.dep.engine) as session:  # allow the next TOTP step without waiting 30 s
        person = session.exec(select(Person).where(Person.username == "auditor-a")).one()
        person.totp_last_step = (person.totp_last_step or 0) - 1
        session.add(person)
        session.commit()
    response = client.post("/dang-nhap", data=_form(world, "auditor-a"))
    assert response.status_code == 303
    new = response.cookies.get("__Host-st_session")
    assert new and new != old
    assert service.actor_from_session(world.dep.engine, old) is None
    assert service.actor_from_session(world.dep.engine, new) is not None


def test_expired_and_idle_sessions_are_refused(world: World) -> None:
    client = world.login("auditor-a")
    assert client.get(f"/can-bo/{SCHOOL_A}/hang-doi").status_code == 200
    with Session(world.dep.engine) as session:
        row = session.exec(select(LoginSession)).one()
        row.last_seen = row.last_seen - service.SESSION_IDLE - timedelta(seconds=1)
        session.add(row)
        session.commit()
    response = client.get(f"/can-bo/{SCHOOL_A}/hang-doi")
    assert response.status_code == 303 and response.headers["location"] == "/dang-nhap"
    assert client.get(f"/api/v1/schools/{SCHOOL_A}/work-items").status_code == 401


def test_cookie_requests_that_change_things_need_the_csrf_token(world: World) -> None:
    client = world.login("school_admin-a")
    data = {"username": "auditor-a", "role": "registrar"}
    refused = client.post(f"/can-bo/{SCHOOL_A}/thanh-vien", data=data)
    wrong = client.post(f"/can-bo/{SCHOOL_A}/thanh-vien", data={**data, "csrf_token": "x" * 32})
    assert refused.status_code == wrong.status_code == 403
    assert (
        "registrar"
        not in service.actor_for(
            world.dep.engine,
            service.person_by_username(world.dep.engine, "auditor-a"),
            "staff",  # type: ignore[arg-type]
        ).roles[SCHOOL_A]
    )
    ok = client.post(f"/can-bo/{SCHOOL_A}/thanh-vien", data={**data, "csrf_token": world.csrf["school_admin-a"]})
    assert ok.status_code == 303
    person = service.person_by_username(world.dep.engine, "auditor-a")
    assert person is not None
    assert "registrar" in service.actor_for(world.dep.engine, person, "staff").roles[SCHOOL_A]
    members = client.get(f"/can-bo/{SCHOOL_A}/thanh-vien")
    assert members.status_code == 200 and "auditor-a" in members.text and "Cán bộ văn thư" in members.text


def test_role_changes_are_audited_and_enter_the_public_log(world: World) -> None:
    from ledger.entry import Entry
    from sealtrail.ledgerwiring import ledger_for

    client = world.login("school_admin-a")
    data = {"username": "auditor-a", "role": "registrar", "csrf_token": world.csrf["school_admin-a"]}
    assert client.post(f"/can-bo/{SCHOOL_A}/thanh-vien", data=data).status_code == 303
    with Session(world.dep.engine) as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "role.grant")).one()
    assert event.actor == "school_admin-a" and event.target == "auditor-a" and event.leaf_index is not None
    ledger, _ = ledger_for(world.dep)
    with world.dep.engine.connect() as conn:
        entry = Entry.parse(ledger.entry(conn, event.leaf_index))
    assert entry.type == "key" and entry.doc_id == f"role.grant:{SCHOOL_A}"
    from sealtrail.secretkeys import derived_key

    assert entry.xml_sha256 == service.audit_commitment(derived_key(world.dep, "audit-commitment"), event)
    assert b"auditor-a" not in entry.canonical()  # no personal data in the log
    # a salted commitment: the plain hash of the same row, which anyone could recompute from guessed names, differs
    import hashlib
    import json

    from accounts.models import aware

    at = aware(event.at).astimezone(UTC).isoformat()
    body = {"at": at, "actor": event.actor, "org": event.org_code, "action": event.action,
            "target": event.target, "outcome": event.outcome, "detail": event.detail}  # fmt: skip
    guess = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    assert entry.xml_sha256 != guess


def test_logout_ends_the_session(world: World) -> None:
    client = world.login("auditor-a")
    response = client.post("/dang-xuat", data={"csrf_token": world.csrf["auditor-a"]})
    assert response.status_code == 303
    assert client.get(f"/can-bo/{SCHOOL_A}/hang-doi").status_code == 303


def test_an_auditor_exports_one_schools_activity_for_a_date_range_as_csv_or_json(world: World) -> None:
    import csv
    import io
    from datetime import UTC, datetime

    from tests.accounts.conftest import SCHOOL_B

    with Session(world.dep.engine) as session:
        for org, when in (
            (SCHOOL_A, datetime(2020, 1, 15, 8, tzinfo=UTC)),
            (SCHOOL_B, datetime(2020, 1, 16, tzinfo=UTC)),
        ):
            event = service.audit_row("principal-x", "document.revoke", org_code=org, target="HB-OLD", ip="10.0.0.9")
            event.at = when
            session.add(event)
        session.commit()
    client = world.login("auditor-a")
    recent = client.get(f"/can-bo/{SCHOOL_A}/nhat-ky")
    assert recent.status_code == 200 and recent.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(recent.text)))
    assert "HB-OLD" not in recent.text  # the default range is the last 30 days
    assert not any(r["action"] == "login.ok" for r in rows)  # sign-ins belong to no school
    january = client.get(f"/can-bo/{SCHOOL_A}/nhat-ky?tu=2020-01-01&den=2020-01-31")
    (row,) = list(csv.DictReader(io.StringIO(january.text)))
    assert (row["actor"], row["action"], row["target"], row["ip"]) == (
        "principal-x",
        "document.revoke",
        "HB-OLD",
        "10.0.0.9",
    )
    assert row["at"].startswith("2020-01-15T08:00")
    as_json = client.get(f"/api/v1/schools/{SCHOOL_A}/audit?start=2020-01-01&end=2020-01-31&format=json")
    assert [r["target"] for r in as_json.json()] == ["HB-OLD"]  # school B's event is not in school A's export
    assert client.get(f"/can-bo/{SCHOOL_B}/nhat-ky?tu=2020-01-01&den=2020-01-31").status_code == 403


def test_a_class_behind_one_school_address_signs_in_while_code_guessing_is_slowed(world: World) -> None:
    """40 pupils sign in with their codes from one address (the school's NAT): none is throttled; wrong codes are
    counted per address and slow only the address that guesses."""
    engine = world.dep.engine
    for n in range(40):
        service.create_person(engine, f"hs-{n}", f"Học sinh {n}", personal_id=f"0013100{n:05d}", with_totp=False)
        service.grant(engine, f"hs-{n}", SCHOOL_A, "student")
    codes = [service.issue_student_code(engine, f"hs-{n}", SCHOOL_A) for n in range(40)]
    school_nat = world.client()
    assert [school_nat.post("/hoc-sinh/dang-nhap", data={"code": c}).status_code for c in codes] == [303] * 40
    from fastapi.testclient import TestClient

    guesser = TestClient(world.app, base_url="https://testserver", client=("198.51.100.66", 1), follow_redirects=False)  # type: ignore[arg-type]
    answers = [
        guesser.post("/hoc-sinh/dang-nhap", data={"code": f"AAAAAA-BBBBBB-{n:06d}"}).status_code for n in range(22)
    ]
    assert answers[:20] == [401] * 20 and answers[20:] == [429, 429]
    fresh = service.issue_student_code(engine, "hs-0", SCHOOL_A)
    assert world.client().post("/hoc-sinh/dang-nhap", data={"code": fresh}).status_code == 303  # others unaffected
