"""Minors' data behind real gates (issue 22), attacked through the real app on SQLite and PostgreSQL: the QR page's
date-of-birth form under a scripted guessing attack, the details code, client addresses behind proxies, the bulk
look-up without an existence oracle or birth-date sweeps, framing, /readyz, file modes, names."""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

import schemas
from sealtrail.deployment import Deployment
from signer.issue import IssuedDocument
from tests.conftest import free_port
from tests.verifier.conftest import installation
from verifier.gate import AttemptGate, Backoff, code_matches, details_code


class Clock:
    """A clock the test moves by hand, so the backoff is tested without waiting."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def issued(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None
) -> Iterator[tuple[Deployment, list[IssuedDocument]]]:
    with installation(tmp_path_factory.mktemp("gates"), module_database_url, public_rate_per_minute=6000) as inst:
        yield inst


def _app(dep: Deployment, clock: Clock | None = None, **settings: Any) -> Any:
    from sealtrail.web.app import create_app

    app = create_app(dep.settings.model_copy(update=settings) if settings else dep.settings)
    if clock is not None:
        app.state.public_gate.clock = clock
    return app


def _holder(sample: str) -> schemas.Person:
    return schemas.parse_document(schemas.load_sample(sample)).holder


def _sweep(right: date, tries: int) -> list[str]:
    """An attacker's guesses: every day of the birth year, the right one last (the worst case for the gate)."""
    start = date(right.year, 1, 1)
    guesses = [start + timedelta(days=i) for i in range(tries + 5)]
    wrong = [d.strftime("%d/%m/%Y") for d in guesses if d != right][: tries - 1]
    return [*wrong, right.strftime("%d/%m/%Y")]


def test_73_scripted_guesses_do_not_get_in_and_the_owner_still_can_after_the_backoff(
    issued: tuple[Deployment, list[IssuedDocument]],
) -> None:
    dep, docs = issued
    doc, holder = docs[0], _holder("diploma_thpt")
    clock = Clock()
    # Two app instances on one database stand for two server processes: the attacker alternates between them.
    servers = [TestClient(_app(dep, clock)), TestClient(_app(dep, clock))]
    answers = []
    for n, guess in enumerate(_sweep(holder.birth_date, 73)):
        answers.append(servers[n % 2].post(f"/v/{doc.token}", data={"dob": guess}))
        clock.advance(0.1)  # 10 guesses a second, as in the report (73 tries in 7 s)
    assert all(holder.full_name not in a.text for a in answers)  # the right date, tried last, did not get in
    statuses = [a.status_code for a in answers]
    assert statuses[:5] == [200] * 5 and set(statuses[5:]) == {429}  # five free tries, then the form is locked
    assert all(int(a.headers["Retry-After"]) > 0 for a in answers[5:])
    assert "thử lại sau" in answers[-1].text and 'id="locked"' in answers[-1].text
    # the attacker's hammering during the lock did not extend it: the owner waits the lock out and gets in
    wait = int(answers[-1].headers["Retry-After"])
    assert wait <= 60
    clock.advance(wait)
    owner = servers[0].post(f"/v/{doc.token}", data={"dob": holder.birth_date.strftime("%d/%m/%Y")})
    assert owner.status_code == 200 and holder.full_name in owner.text
    # a right answer clears the count: the owner's next typo does not lock the form
    assert servers[1].post(f"/v/{doc.token}", data={"dob": "01/01/1990"}).status_code == 200


def test_an_attacker_who_waits_out_every_lock_needs_weeks_for_73_guesses() -> None:
    backoff = Backoff()
    waited = sum((backoff.lock_for(n) or timedelta(0) for n in range(1, 73)), timedelta(0))
    assert waited > timedelta(days=9)  # the report's 7 seconds become more than nine days
    assert max(backoff.lock_for(n) or timedelta(0) for n in range(1, 1000)) == timedelta(hours=4)  # never forever


def test_the_counter_is_in_the_database_and_each_answer_is_one_transaction(
    issued: tuple[Deployment, list[IssuedDocument]],
) -> None:
    dep, _ = issued
    clock = Clock()
    gates = [AttemptGate(dep.engine, clock=clock), AttemptGate(dep.engine, clock=clock)]
    subject = f"TEST-{os.urandom(4).hex()}"
    outcomes = [gates[i % 2].attempt("dob", subject, lambda: False) for i in range(5)]
    assert [(o.locked, o.retry_after) for o in outcomes] == [(False, 0)] * 4 + [(False, 60)]  # 5th wrong: 1 min
    assert gates[1].attempt("dob", subject, lambda: True).locked  # the other "process" sees the lock
    for wait in (60, 120):  # each wrong answer after a lock doubles the next one
        clock.advance(wait)
        assert gates[0].attempt("dob", subject, lambda: False).retry_after == 2 * wait
    assert gates[1].retry_after("dob", subject) == 240
    clock.advance(240)
    assert gates[1].attempt("dob", subject, lambda: True).allowed
    assert gates[0].retry_after("dob", subject) == 0
    with dep.engine.connect() as conn:
        failures = conn.execute(
            text("SELECT failures FROM public_attempts WHERE scope = 'dob' AND subject = :s"), {"s": subject}
        ).scalar_one()
    assert failures == 0


def test_the_details_code_opens_the_details_even_while_the_date_form_is_locked(
    issued: tuple[Deployment, list[IssuedDocument]],
) -> None:
    from sealtrail.secretkeys import derived_key

    dep, docs = issued
    doc, holder = docs[1], _holder("diploma_bachelor")
    clock = Clock()
    client = TestClient(_app(dep, clock))
    page = client.get(f"/v/{doc.token}").text
    assert 'name="code"' in page
    for _ in range(6):
        client.post(f"/v/{doc.token}", data={"dob": "01/01/1990"})
    assert client.post(f"/v/{doc.token}", data={"dob": "01/01/1990"}).status_code == 429
    code = details_code(derived_key(dep, "details-code"), doc.doc_id)
    assert re.fullmatch(r"[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}", code)
    wrong = client.post(f"/v/{doc.token}", data={"code": "AAAA-BBBB-CCCC"})
    assert wrong.status_code == 200 and "Mã không đúng" in wrong.text and holder.full_name not in wrong.text
    right = client.post(f"/v/{doc.token}", data={"code": code.lower().replace("-", " ")})
    assert right.status_code == 200 and holder.full_name in right.text
    assert not code_matches(derived_key(dep, "details-code"), docs[0].doc_id, code)  # one code per document
    assert details_code(derived_key(dep, "other"), doc.doc_id) != code


def test_client_addresses_come_from_x_forwarded_for_only_behind_a_trusted_proxy(
    issued: tuple[Deployment, list[IssuedDocument]],
) -> None:
    dep, docs = issued
    url = f"/v/{docs[0].token}"

    def second_request(client: TestClient) -> int:
        client.get(url, headers={"X-Forwarded-For": "203.0.113.1"})
        return client.get(url, headers={"X-Forwarded-For": "203.0.113.2"}).status_code

    # one request per address allowed (burst 1): a rotated header must not buy a second one
    strict = {"public_rate_per_minute": 2}
    assert second_request(TestClient(_app(dep, **strict), client=("127.0.0.1", 4000))) == 429  # local, not trusted
    trusted = {**strict, "trusted_proxies": ["10.0.0.0/8"]}
    assert second_request(TestClient(_app(dep, **trusted), client=("198.51.100.9", 4000))) == 429  # not the proxy
    assert second_request(TestClient(_app(dep, **trusted), client=("10.1.2.3", 4000))) == 200  # the proxy: believed
    # behind the proxy, a client cannot hide by prepending its own X-Forwarded-For: the proxy's entry is used
    proxied = TestClient(_app(dep, **trusted), client=("10.1.2.3", 4000))
    proxied.get(url, headers={"X-Forwarded-For": "1.1.1.1, 203.0.113.7"})
    assert proxied.get(url, headers={"X-Forwarded-For": "9.9.9.9, 203.0.113.7"}).status_code == 429
    from pydantic import ValidationError

    from sealtrail.settings import Settings

    with pytest.raises(ValidationError):
        Settings(trusted_proxies=["*"])
    assert Settings().trusted_proxies == []


def _lookup_client(dep: Deployment, clock: Clock | None = None) -> TestClient:
    from sealtrail.web.api import create_api_key

    key = create_api_key(dep, "DH-TUYENSINH", ["verify:bulk"])
    return TestClient(_app(dep, clock), headers={"Authorization": f"Bearer {key}"})


def _csv(rows: list[tuple[str, str, str]]) -> bytes:
    out = io.StringIO()
    out.write("so_hieu,ho_ten,ngay_sinh\r\n")
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def _lookup(client: TestClient, rows: list[tuple[str, str, str]]) -> Any:
    return client.post("/api/v1/verify/bulk", files={"file": ("tra-cuu.csv", _csv(rows), "text/csv")})


def test_the_lookup_answers_an_unknown_number_and_wrong_details_alike(
    issued: tuple[Deployment, list[IssuedDocument]],
) -> None:
    dep, _ = issued
    thpt = schemas.parse_document(schemas.load_sample("diploma_thpt"))
    assert isinstance(thpt, schemas.Diploma)
    dob = thpt.holder.birth_date.strftime("%d/%m/%Y")
    response = _lookup(
        _lookup_client(dep),
        [
            (thpt.diploma_number, thpt.holder.full_name, "02/02/1990"),  # the number exists, the date is wrong
            ("KHONG-CO-SO-NAY-1", thpt.holder.full_name, dob),  # no such number
        ],
    )
    assert response.status_code == 200, response.text
    exists, missing = response.json()["items"]
    for item in (exists, missing):
        item.pop("line"), item.pop("so_hieu")
    assert exists == missing  # nothing tells the two apart
    assert exists["result"] == "no_match" and exists["document_id"] is None
    assert [r["code"] for r in exists["reasons"]] == ["NO_MATCH"]
    assert "mismatch" not in response.text and "not_found" not in response.text


def test_a_birth_date_sweep_in_one_upload_is_refused(issued: tuple[Deployment, list[IssuedDocument]]) -> None:
    dep, _ = issued
    thpt = schemas.parse_document(schemas.load_sample("diploma_thpt"))
    assert isinstance(thpt, schemas.Diploma)
    year = [(date(2008, 1, 1) + timedelta(days=i)).strftime("%d/%m/%Y") for i in range(366)]
    rows = [(thpt.diploma_number, thpt.holder.full_name, d) for d in year]
    response = _lookup(_lookup_client(dep), rows)
    assert response.status_code == 400
    (problem,) = response.json()["detail"]["problems"]
    assert problem["line"] == 5 and "366" in problem["problem"] and "sweep" in problem["problem"]
    assert "valid" not in response.text
    # three rows for one number (say, a name written three ways) are still answered
    three = [(f" {thpt.diploma_number}", thpt.holder.full_name, d) for d in year[:3]]
    assert _lookup(_lookup_client(dep), three).status_code == 200


def test_a_number_that_keeps_failing_is_locked_for_every_key(issued: tuple[Deployment, list[IssuedDocument]]) -> None:
    dep, _ = issued
    bachelor = schemas.parse_document(schemas.load_sample("diploma_bachelor"))
    assert isinstance(bachelor, schemas.Diploma)
    clock = Clock()
    right = (bachelor.diploma_number, bachelor.holder.full_name, bachelor.holder.birth_date.strftime("%d/%m/%Y"))
    wrong = [(bachelor.diploma_number, bachelor.holder.full_name, f"0{d}/03/2001") for d in range(1, 4)]
    results = []
    for n in range(2):  # two uploads of three wrong dates, each with a new key (as two verifier organisations)
        response = _lookup(_lookup_client(dep, clock), wrong if n == 0 else [*wrong[:2], right])
        results += [i["result"] for i in response.json()["items"]]
    assert results == ["no_match"] * 5 + ["rate_limited"]  # the sixth row was not looked up, right as it was
    clock.advance(61)
    again = _lookup(_lookup_client(dep, clock), [right]).json()["items"]
    assert [i["result"] for i in again] in (["valid"], ["revoked"])
    assert again[0]["document_id"] is not None


def test_every_page_refuses_to_be_framed(issued: tuple[Deployment, list[IssuedDocument]]) -> None:
    dep, docs = issued
    client = TestClient(_app(dep))
    for path in (f"/v/{docs[0].token}", "/v/unknown", "/kiem-tra", "/healthz", "/openapi.json", "/dang-nhap",
                 "/log/checkpoint", "/hoc-sinh/dang-nhap"):  # fmt: skip
        response = client.get(path, follow_redirects=False)
        assert response.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
    page = client.get(f"/v/{docs[0].token}").headers["content-security-policy"]
    assert "default-src 'none'" in page and page.count("frame-ancestors") == 1  # the page's own policy is kept


def test_readyz_tells_details_only_to_the_operators_and_reuses_its_probes(
    issued: tuple[Deployment, list[IssuedDocument]],
) -> None:
    from sealtrail import observability
    from sealtrail.web.api import create_api_key

    dep, _ = issued
    app = _app(dep)
    public = TestClient(app, client=("203.0.113.5", 4000)).get("/readyz")
    assert public.status_code == 200 and public.json() == {"status": "ready"}
    assert "ocsp" not in public.text and "http" not in public.text
    inside = TestClient(app, client=("127.0.0.1", 4000)).get("/readyz").json()
    assert inside["status"] == "ready" and inside["checks"]["database"]["status"] == "ok"
    metrics_key = create_api_key(dep, "SO-GDDT", ["metrics"])
    keyed = TestClient(app, client=("203.0.113.5", 4000), headers={"Authorization": f"Bearer {metrics_key}"})
    assert "checks" in keyed.get("/readyz").json()
    # the OCSP and TSA answers are reused: counting the probes sent shows none on the next calls
    calls: list[str] = []
    real_tsa = observability._tsa_probe
    observability._PROBES.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(observability, "_tsa_probe", lambda url, timeout: (calls.append(url), real_tsa(url, timeout))[1])
        client = TestClient(app, client=("127.0.0.1", 4000))
        for _ in range(5):
            assert client.get("/readyz").status_code == 200
    assert len(calls) == len(dep.timestamp_urls) >= 1


def test_production_serves_no_api_docs_from_a_cdn(issued: tuple[Deployment, list[IssuedDocument]]) -> None:
    dep, _ = issued
    development = TestClient(_app(dep))
    assert development.get("/docs").status_code == 200
    production = TestClient(_app(dep, mode="production"))  # the same keys and data, as an installation in production
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert production.get(path).status_code == 404, path
    assert production.get("/openapi.json").status_code == 200  # the schema itself stays published


def _settings(tmp_path: Path, **extra: Any) -> Any:
    from sealtrail.settings import Settings

    return Settings(data_dir=tmp_path, dev_pki_url=f"http://127.0.0.1:{free_port()}", **extra)


def test_the_database_and_key_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        dep = Deployment(_settings(tmp_path / "var"))
        dep.lookup_key  # noqa: B018 - creates the installation secret
        dep.dev_pki  # noqa: B018 - creates the development keys
        with dep.engine.begin() as conn:
            conn.exec_driver_sql("SELECT 1")
    finally:
        os.umask(old)
    data = dep.settings.resolved_data_dir
    db = data / "sealtrail.db"
    assert db.stat().st_mode & 0o777 == 0o600
    for extra in (data / "sealtrail.db-wal", data / "sealtrail.db-shm"):
        if extra.exists():
            assert extra.stat().st_mode & 0o077 == 0, extra
    keys = list((dep.settings.pki_dir / "keys").glob("*.key*"))
    assert keys and all(k.stat().st_mode & 0o077 == 0 for k in keys), [(k, oct(k.stat().st_mode)) for k in keys]


@pytest.mark.parametrize(
    "bad", ["Nguyễn\x00Văn", "Nguyễn\u202eVăn", "Ngu\u200byễn", "An\u2066h", "\ufeffAn", "Văn\nAn", "An\u0007"]
)
def test_names_hold_printable_unicode_only(bad: str) -> None:
    data = schemas.load_sample("diploma_thpt")
    data["holder"]["given_name"] = bad
    with pytest.raises(schemas.SchemaError) as caught:
        schemas.parse_document(data)
    assert "U+" in str(caught.value) and "non-printable" in str(caught.value)


def test_vietnamese_names_in_any_normal_form_are_accepted() -> None:
    import unicodedata

    data = schemas.load_sample("diploma_thpt")
    data["holder"]["given_name"] = unicodedata.normalize("NFD", "Hằng")
    assert schemas.parse_document(data).holder.given_name == "Hằng"
