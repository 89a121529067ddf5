"""The app under hostile requests: missing, wrong and foreign keys on protected routes, public routes that never
fail, request bodies cut off while they stream in, and mutated uploads through the real API (never a 500)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schemas
from sealtrail.web.api import create_api_key
from tests.hardening.conftest import Signed
from tests.hardening.live import LiveServer, live_server

# The school-key and public routes the hostile checks below run against. That every route of the app has an access
# rule is checked once, for all of them, by tests/accounts/test_permissions.py::test_every_endpoint_has_a_rule.
PUBLIC, SCHOOL_KEY, DOCS = "public", "school API key", "API description"
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/v/{token}"): PUBLIC,
    ("POST", "/v/{token}"): PUBLIC,  # the date-of-birth form: reveals details only for the right date
    ("GET", "/v/{token}/tlog-proof"): PUBLIC,
    ("GET", "/kiem-tra"): PUBLIC,
    ("POST", "/kiem-tra"): PUBLIC,
    ("POST", "/api/v1/verify"): PUBLIC,
    ("POST", "/api/v1/verify/bulk"): PUBLIC,
    ("GET", "/log/checkpoint"): PUBLIC,
    ("GET", "/log/key"): PUBLIC,
    ("GET", "/log/tile/{path:path}"): PUBLIC,
    ("POST", "/api/v1/documents"): SCHOOL_KEY,
    ("GET", "/openapi.json"): DOCS,
    ("HEAD", "/openapi.json"): DOCS,
    ("GET", "/docs"): DOCS,
    ("HEAD", "/docs"): DOCS,
    ("GET", "/docs/oauth2-redirect"): DOCS,
    ("HEAD", "/docs/oauth2-redirect"): DOCS,
    ("GET", "/redoc"): DOCS,
    ("HEAD", "/redoc"): DOCS,
}


@pytest.fixture(scope="module")
def client(signed: Signed) -> TestClient:
    from sealtrail.web.app import create_app

    return TestClient(create_app(signed.dep.settings))


def _request(client: TestClient, method: str, path: str, signed: Signed, **kw: Any) -> Any:
    concrete = path.replace("{token}", signed.docs[0].token).replace("{path:path}", "0/x/000")
    body: dict[str, Any] = {}
    if method == "POST" and path == "/api/v1/documents":
        body = {"json": schemas.load_sample("transcript_thcs")}
    return client.request(method, concrete, **body, **kw)


@pytest.mark.parametrize("route", [r for r, rule in ROUTES.items() if rule == SCHOOL_KEY])
def test_protected_routes_refuse_missing_wrong_and_foreign_keys(
    client: TestClient, signed: Signed, route: tuple[str, str]
) -> None:
    method, path = route
    foreign = create_api_key(signed.dep, "99999999")  # a real key, of another school
    for headers in ({}, {"Authorization": "Bearer st_wrong"}, {"Authorization": "Basic abc"}, {"Authorization": ""}):
        response = _request(client, method, path, signed, headers=headers)
        assert response.status_code == 401, (route, headers, response.text)
    response = _request(client, method, path, signed, headers={"Authorization": f"Bearer {foreign}"})
    assert response.status_code == 403, response.text
    assert "another school" in response.text


@pytest.mark.parametrize("route", [r for r, rule in ROUTES.items() if rule in (PUBLIC, DOCS)])
def test_public_routes_need_no_key_and_never_fail(client: TestClient, signed: Signed, route: tuple[str, str]) -> None:
    method, path = route
    response = _request(client, method, path, signed)
    assert response.status_code not in (401, 403) and response.status_code < 500, (route, response.status_code)


def test_a_body_declared_too_large_is_refused_before_it_is_read(live: LiveServer) -> None:
    """Content-Length of 10 GB: 413 at once, without the server waiting for (or spooling) the body."""
    for path in ("/api/v1/verify", "/kiem-tra", "/api/v1/verify/bulk", "/api/v1/documents"):
        with socket.create_connection(("127.0.0.1", live.port), timeout=10) as s:
            s.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                f"Content-Length: {10 * 1024**3}\r\n\r\n".encode()
                + b"--b\r\n" * 10
            )
            started = time.perf_counter()
            reply = s.recv(4096)
            assert reply.startswith(b"HTTP/1.1 413"), (path, reply[:200])
            assert time.perf_counter() - started < 5


def test_a_streamed_body_is_cut_off_at_the_limit(live: LiveServer, tmp_path: Any) -> None:
    """No Content-Length (chunked): the body is counted as it arrives and refused once past the limit."""
    import httpx

    from verifier.pdf import MAX_PDF_BYTES

    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.pdf"\r\n\r\n'
        chunk = b"%PDF" + bytes(1024 * 1024 - 4)
        while sent < 3 * MAX_PDF_BYTES:
            sent += len(chunk)
            yield chunk

    try:
        response = httpx.post(
            f"{live.url}/api/v1/verify",
            content=body(),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
            timeout=60,
        )
        assert response.status_code == 413, response.text
    except (httpx.RemoteProtocolError, httpx.WriteError):
        pass  # the server closed the connection after answering 413 while the client was still sending
    assert sent < 3 * MAX_PDF_BYTES, "the server read the whole oversized body"


@pytest.fixture(scope="module")
def live(signed: Signed) -> Iterator[LiveServer]:
    with live_server(signed.dep.settings) as server:
        yield server


API_FUZZ = settings(
    max_examples=int(os.environ.get("SEALTRAIL_FUZZ_EXAMPLES", "0")) or 30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


@API_FUZZ
@given(data=st.data())
def test_mutated_uploads_through_the_api_are_never_a_500(
    client: TestClient, signed: Signed, data: st.DataObject
) -> None:
    from tests.hardening.hostile import mutated

    original = data.draw(st.sampled_from([signed.docs[0].pdf, signed.docs[1].xml]))
    case = data.draw(mutated(original))
    name = data.draw(st.sampled_from(["a.pdf", "a.xml", "", "../../x", "=cmd|' /C calc'!A0.csv"]))
    response = client.post("/api/v1/verify", files={"file": (name, case)})
    assert response.status_code in (200, 400, 413, 422), response.text
    if response.status_code == 200 and case != original:  # a changed file is not the registered one: never valid
        assert response.json()["verdict"] in ("invalid", "indeterminate"), response.json()


def test_bulk_csv_neutralises_formulas_in_file_names(client: TestClient, signed: Signed) -> None:
    from tests.hardening.hostile import make_zip

    upload = make_zip([('=HYPERLINK("http://evil")', signed.xml), ("@SUM(1).pdf", b"%PDF")])
    response = client.post("/api/v1/verify/bulk?format=csv", files={"file": ("z.zip", upload)})
    assert response.status_code == 200, response.text
    rows = response.text.splitlines()[1:]
    assert all(row.startswith("'") or row.startswith("\"'") for row in rows), rows
