"""The staff API: per-school keys, all-or-nothing checking, tenant isolation."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

import schemas
from registry.records import DocumentRecord
from sealtrail.deployment import Deployment
from sealtrail.settings import Settings
from sealtrail.web.api import create_api_key
from tests.conftest import free_port


@pytest.fixture(scope="module")
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None
) -> Iterator[tuple[Deployment, TestClient, str]]:
    """The representative issuing path, run on one school's setup (SQLite, files in the data directory) and on a
    province's (PostgreSQL, files in an S3-compatible bucket)."""
    from sealtrail.web.app import create_app

    storage: dict[str, object] = {}
    if module_database_url is not None:
        s3 = request.getfixturevalue("s3_server")
        storage = {
            "storage_url": f"s3://{s3.new_bucket()}/documents",
            "s3_endpoint_url": s3.endpoint_url,
            "s3_access_key_id": s3.access_key_id,
            "s3_secret_access_key": s3.secret_access_key,
        }
    dep = Deployment(
        Settings(
            data_dir=tmp_path_factory.mktemp("api"),
            dev_pki_url=f"http://127.0.0.1:{free_port()}",
            database_url=module_database_url,
            **storage,  # type: ignore[arg-type]
        )
    )
    services = dep.start_dev_pki_services()
    school = schemas.load_sample("transcript_thcs")["school"]["code"]
    key = create_api_key(dep, school)
    try:
        yield dep, TestClient(create_app(dep.settings)), key
    finally:
        if services:
            services.stop()


def _count(dep: Deployment) -> int:
    with Session(dep.engine) as session:
        return len(session.exec(select(DocumentRecord)).all())


def test_a_key_issues_its_own_schools_documents(api: tuple[Deployment, TestClient, str]) -> None:
    _dep, client, key = api
    response = client.post(
        "/api/v1/documents", json=schemas.load_sample("transcript_thcs"), headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 201, response.text
    (issued,) = response.json()["issued"]
    assert issued["id"].startswith("HB-") and "/v/" in issued["url"]
    assert client.get(issued["url"].split("127.0.0.1:8000", 1)[-1]).status_code == 200
    with Session(_dep.engine) as session:
        record = session.get(DocumentRecord, issued["id"])
    assert record is not None and record.sha256_pdf and record.sha256_xml
    assert _dep.blobs.get(record.sha256_pdf, "pdf").startswith(b"%PDF")
    if _dep.settings.storage_url:  # the files went to the bucket, not to the data directory
        assert not _dep.settings.documents_dir.exists()
    from sealtrail.ledgerwiring import audit_deployment, publish_checkpoint

    publish_checkpoint(_dep)
    assert audit_deployment(_dep) == []


def test_every_problem_of_every_document_is_reported_and_nothing_issued(
    api: tuple[Deployment, TestClient, str],
) -> None:
    dep, client, key = api
    before = _count(dep)
    good = schemas.load_sample("transcript_thcs")
    bad = copy.deepcopy(good)
    bad["years"][0]["subjects"][0]["hk1"]["gk"] = "12"
    worse = copy.deepcopy(good)
    worse["holder"]["birth_date"] = "không rõ"
    response = client.post("/api/v1/documents", json=[good, bad, worse], headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 422
    problems = response.json()["detail"]["problems"]
    assert {p["document"] for p in problems} == {"1", "2"}
    assert any("GK = 12" in p["problem"] for p in problems)
    assert _count(dep) == before


def test_a_key_cannot_issue_for_another_school(api: tuple[Deployment, TestClient, str]) -> None:
    dep, client, key = api
    before = _count(dep)
    other = schemas.load_sample("transcript_thpt")  # another school
    response = client.post("/api/v1/documents", json=other, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 403 and "another school" in response.text
    assert _count(dep) == before


def test_missing_or_wrong_keys_are_refused(api: tuple[Deployment, TestClient, str]) -> None:
    dep, client, key = api
    sample = schemas.load_sample("transcript_thcs")
    assert client.post("/api/v1/documents", json=sample).status_code == 401
    wrong = client.post("/api/v1/documents", json=sample, headers={"Authorization": "Bearer st_guess"})
    assert wrong.status_code == 401
    stored = (dep.settings.resolved_data_dir / "api-keys.json").read_text()
    assert key not in stored  # only the hash is kept
