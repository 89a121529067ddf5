"""Single sign-on through OpenID Connect, against a real provider on loopback (tests/accounts/oidc_provider.py):
the whole redirect dance over real HTTP (httpx against SealTrail served by uvicorn) and in headless Chromium.
Success (RS256 and ES256, TOTP after SSO unless the provider enforces MFA), wrong state, a replayed code, a bad
signature, the wrong audience, an expired token, an unverified e-mail and an identity nobody linked."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pyotp
import pytest
import uvicorn
from sqlmodel import Session, select

from accounts import service, sso
from accounts.models import AuditEvent, Person
from tests.accounts.conftest import PASSWORD, SCHOOL_A, World, make_deployment, populate
from tests.accounts.oidc_provider import LoopbackProvider, Served
from tests.conftest import free_port


@dataclass
class SsoSetup:
    world: World
    base: str
    provider: LoopbackProvider


@pytest.fixture
def served_sso(tmp_path: Path, dev_pki: object, cheap_argon2: None) -> Iterator[SsoSetup]:
    """SealTrail on loopback (uvicorn) configured for the test provider, which also runs on loopback; the
    principal of school A and the pupil student-a are linked to provider subjects beforehand."""
    from sealtrail.web.app import create_app

    provider = LoopbackProvider()
    with Served(provider):
        port = free_port()
        dep = make_deployment(tmp_path, f"sqlite:///{tmp_path / 'st.db'}", dev_pki)
        secret_file = tmp_path / "oidc-secret"
        secret_file.write_text(provider.client_secret)
        s = dep.settings
        s.public_base_url, s.session_cookie_secure = f"http://127.0.0.1:{port}", False  # plain HTTP on loopback
        s.oidc_issuer, s.oidc_client_id, s.oidc_client_secret_file = provider.issuer, provider.client_id, secret_file
        secrets = populate(dep)
        for username, subject in (("principal-a", "gv-0001"), ("student-a", "hs-0001")):
            person = service.person_by_username(dep.engine, username)
            assert person is not None and person.id is not None
            sso.link_identity(dep.engine, person.id, provider.issuer, subject)
        app = create_app(s)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        try:
            yield SsoSetup(World(dep, app, secrets), f"http://127.0.0.1:{port}", provider)
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def _to_provider(client: httpx.Client, base: str) -> str:
    """SealTrail sends the browser to the provider; the provider sends it back. Returns the callback URL."""
    leave = client.get(f"{base}/dang-nhap/sso")
    assert leave.status_code == 303
    authorize = leave.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    back = client.get(authorize)
    assert back.status_code == 302
    return back.headers["location"]


def _dance(client: httpx.Client, base: str) -> httpx.Response:
    return client.get(_to_provider(client, base))


def _csrf(world: World, client: httpx.Client) -> str:
    actor = service.actor_from_session(world.dep.engine, client.cookies["st_session"])
    assert actor is not None and actor.csrf_token
    return actor.csrf_token


def test_staff_sign_in_through_the_provider_then_enter_their_totp(served_sso: SsoSetup) -> None:
    world, base = served_sso.world, served_sso.base
    with httpx.Client() as client:
        landed = _dance(client, base)
        assert (landed.status_code, landed.headers["location"]) == (303, "/dang-nhap/sso/ma-xac-thuc")
        assert client.get(f"{base}/can-bo/{SCHOOL_A}/hang-doi").status_code == 403  # no role before the TOTP step
        csrf = _csrf(world, client)
        wrong = client.post(f"{base}/dang-nhap/sso/ma-xac-thuc", data={"csrf_token": csrf, "totp": "000000"})
        assert wrong.status_code == 401
        code = pyotp.TOTP(world.totp["principal-a"]).now()
        done = client.post(f"{base}/dang-nhap/sso/ma-xac-thuc", data={"csrf_token": csrf, "totp": code})
        assert (done.status_code, done.headers["location"]) == (303, "/can-bo")
        assert client.get(f"{base}/can-bo/{SCHOOL_A}/hang-doi").status_code == 200
        assert client.get(f"{base}/can-bo/01000105/hang-doi").status_code == 403  # SSO adds no cross-school reach


def test_with_mfa_enforced_by_the_provider_es256_tokens_sign_staff_straight_in(served_sso: SsoSetup) -> None:
    served_sso.world.dep.settings.oidc_mfa_enforced = True
    served_sso.provider.algorithm = "ES256"
    with httpx.Client() as client:
        landed = _dance(client, served_sso.base)
        assert (landed.status_code, landed.headers["location"]) == (303, "/can-bo")
        assert client.get(f"{served_sso.base}/can-bo/{SCHOOL_A}/hang-doi").status_code == 200


def test_a_pupil_signs_in_to_the_portal_with_no_totp(served_sso: SsoSetup) -> None:
    served_sso.provider.user = {"sub": "hs-0001"}
    with httpx.Client() as client:
        landed = _dance(client, served_sso.base)
        assert (landed.status_code, landed.headers["location"]) == (303, "/hoc-sinh")
        assert client.get(f"{served_sso.base}/hoc-sinh").status_code == 200
        assert client.get(f"{served_sso.base}/can-bo/{SCHOOL_A}/hang-doi").status_code == 403


def test_a_wrong_or_missing_state_is_refused(served_sso: SsoSetup) -> None:
    with httpx.Client() as client:
        back = urlsplit(_to_provider(client, served_sso.base))
        query = {k: v[0] for k, v in parse_qs(back.query).items()}
        forged = client.get(f"{served_sso.base}{back.path}?{urlencode({**query, 'state': 'x' * 32})}")
        assert forged.status_code == 401 and "state" in forged.text
    with httpx.Client() as other:  # a callback in a browser that never started the flow (login CSRF)
        assert other.get(f"{served_sso.base}{back.path}?{back.query}").status_code == 401
    assert served_sso.provider.token_requests == 0  # the code was never even traded


def test_a_replayed_code_is_refused(served_sso: SsoSetup) -> None:
    base = served_sso.base
    with httpx.Client() as client:
        first = urlsplit(_to_provider(client, base))
        assert client.get(f"{base}{first.path}?{first.query}").status_code == 303
        code = parse_qs(first.query)["code"][0]
        again = urlsplit(_to_provider(client, base))  # a fresh flow (fresh state), with the old code put in
        state = parse_qs(again.query)["state"][0]
        replay = client.get(f"{base}{again.path}?{urlencode({'code': code, 'state': state})}")
        assert replay.status_code == 401 and "used already" in replay.text


@pytest.mark.parametrize(
    ("knob", "value", "words"),
    [("forge", True, "not valid"), ("audience", "another-client", "not valid"), ("lifetime", -600, "not valid")],
)
def test_bad_id_tokens_are_refused(served_sso: SsoSetup, knob: str, value: object, words: str) -> None:
    setattr(served_sso.provider, knob, value)
    with httpx.Client() as client:
        refused = _dance(client, served_sso.base)
        assert refused.status_code == 401 and words in refused.text
        assert "st_session" not in client.cookies
    with Session(served_sso.world.dep.engine) as session:
        failures = session.exec(select(AuditEvent).where(AuditEvent.action == "sso.failed")).all()
    assert len(failures) == 1 and failures[0].outcome == "refused"


def test_an_identity_nobody_linked_gets_a_clear_refusal_and_no_account(served_sso: SsoSetup) -> None:
    served_sso.provider.user = {"sub": "nguoi-la", "email": "la@example.vn"}
    engine = served_sso.world.dep.engine
    with Session(engine) as session:
        before = len(session.exec(select(Person)).all())
    with httpx.Client() as client:
        refused = _dance(client, served_sso.base)
    assert refused.status_code == 403 and "not linked" in refused.text and "school admin" in refused.text
    with Session(engine) as session:
        assert len(session.exec(select(Person)).all()) == before  # SSO never creates people


def test_matching_by_email_needs_a_verified_email(served_sso: SsoSetup) -> None:
    engine = served_sso.world.dep.engine
    served_sso.world.dep.settings.oidc_claim = "email"
    with Session(engine) as session:
        person = session.exec(select(Person).where(Person.username == "registrar-a")).one()
        person.email = "vanthu@truong.edu.vn"
        session.add(person)
        session.commit()
    served_sso.provider.user = {"sub": "x-1", "email": "vanthu@truong.edu.vn", "email_verified": False}
    with httpx.Client() as client:
        assert _dance(client, served_sso.base).status_code == 403
    served_sso.provider.user = {"sub": "x-1", "email": "vanthu@truong.edu.vn"}
    with httpx.Client() as client:
        assert _dance(client, served_sso.base).headers["location"] == "/dang-nhap/sso/ma-xac-thuc"


@pytest.mark.slow
def test_the_redirect_dance_in_headless_chromium(served_sso: SsoSetup) -> None:
    from tests.browser import chromium

    world, base = served_sso.world, served_sso.base
    with chromium() as browser:
        page = browser.new_page(java_script_enabled=False)
        page.goto(f"{base}/dang-nhap")
        page.click("#sso")
        assert page.url == f"{base}/dang-nhap/sso/ma-xac-thuc"
        page.fill("#totp", pyotp.TOTP(world.totp["principal-a"]).now())
        page.click("button[type=submit] >> nth=-1")
        assert page.url == f"{base}/can-bo" and "principal-a" in page.content()
        served_sso.provider.user = {"sub": "nguoi-la"}
        other = browser.new_page(java_script_enabled=False)
        other.goto(f"{base}/dang-nhap")
        other.click("#sso")
        assert re.search("not linked", other.content())


def test_the_school_admin_links_an_identity_for_their_own_people_only(served_sso: SsoSetup) -> None:
    world, base = served_sso.world, served_sso.base
    with httpx.Client() as admin:
        signed_in = admin.post(
            f"{base}/dang-nhap",
            data={
                "username": "school_admin-a",
                "password": PASSWORD,
                "totp": pyotp.TOTP(world.totp["school_admin-a"]).now(),
            },
        )
        assert signed_in.status_code == 303
        csrf = _csrf(world, admin)
        link = {"csrf_token": csrf, "subject": "gv-0002"}
        assert admin.post(f"{base}/can-bo/{SCHOOL_A}/thanh-vien/homeroom_teacher-a/sso", data=link).status_code == 303
        assert admin.post(f"{base}/can-bo/01000105/thanh-vien/principal-b/sso", data=link).status_code == 403
        assert admin.post(f"{base}/can-bo/{SCHOOL_A}/thanh-vien/principal-b/sso", data=link).status_code == 422
    served_sso.provider.user = {"sub": "gv-0002"}
    with httpx.Client() as client:
        assert _dance(client, served_sso.base).headers["location"] == "/dang-nhap/sso/ma-xac-thuc"
        actor = service.actor_from_session(world.dep.engine, client.cookies["st_session"])
        assert actor is not None and actor.name == "homeroom_teacher-a"
    with Session(world.dep.engine) as session:
        (event,) = session.exec(select(AuditEvent).where(AuditEvent.action == "key.change")).all()
    assert event.actor == "school_admin-a" and event.leaf_index is not None


def test_a_token_for_another_sign_in_attempt_fails_the_nonce_check(served_sso: SsoSetup) -> None:
    from accounts.sso import Provider, SsoError

    provider = Provider(served_sso.world.dep.settings)
    token = served_sso.provider.id_token("the-nonce-of-another-attempt")
    with pytest.raises(SsoError, match="not valid"):
        provider.check_id_token(token, "this-attempts-nonce")
    assert provider.check_id_token(token, "the-nonce-of-another-attempt").subject == "gv-0001"
