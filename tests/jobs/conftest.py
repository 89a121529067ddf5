"""Fixtures for batch jobs: a deployment (SQLite or PostgreSQL) with its own dev PKI services and an API key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import schemas
from sealtrail.deployment import Deployment
from sealtrail.devpki import PkiServices
from sealtrail.settings import Settings
from sealtrail.web.api import create_api_key
from tests.conftest import free_port


@dataclass
class JobEnv:
    dep: Deployment
    key: str
    services: PkiServices | None
    env: dict[str, str]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def client(self) -> TestClient:
        from sealtrail.web.app import create_app

        return TestClient(create_app(self.dep.settings))

    def stop_pki(self) -> None:
        assert self.services is not None
        self.services.stop()
        self.services = None

    def start_pki(self) -> None:
        self.services = self.dep.start_dev_pki_services()


def make_env(data_dir: Path, database_url: str | None, **settings: Any) -> JobEnv:
    port = free_port()
    env = {
        "SEALTRAIL_DATA_DIR": str(data_dir),
        "SEALTRAIL_DEV_PKI_URL": f"http://127.0.0.1:{port}",
        "SEALTRAIL_JOB_RETRY_WAIT": "0.5",
        "SEALTRAIL_JOB_HEARTBEAT": "1",
        "SEALTRAIL_JOB_STALLED_AFTER": "4",
    }
    if database_url:
        env["SEALTRAIL_DATABASE_URL"] = database_url
    values = {k.removeprefix("SEALTRAIL_").lower(): v for k, v in env.items()} | settings
    dep = Deployment(Settings(**values))
    services = dep.start_dev_pki_services()
    key = create_api_key(dep, schemas.load_sample("transcript_thcs")["school"]["code"])
    return JobEnv(dep, key, services, env)


@pytest.fixture
def job_env_factory(tmp_path: Path) -> Iterator[Callable[..., JobEnv]]:
    made: list[JobEnv] = []

    def make(database_url: str | None = None, **settings: Any) -> JobEnv:
        made.append(make_env(tmp_path / f"data{len(made)}", database_url, **settings))
        return made[-1]

    yield make
    for env in made:
        if env.services:
            env.services.stop()


GIVEN_NAMES = ("Hằng", "Lan", "Mai", "Hoa", "Đào", "Cúc", "Huệ", "Ngọc")


def transcripts(n: int) -> list[dict[str, Any]]:
    """``n`` valid transcripts of the sample school, each for a different pupil."""
    out = []
    for i in range(n):
        doc = schemas.load_sample("transcript_thcs")
        doc["holder"]["given_name"] = GIVEN_NAMES[i % len(GIVEN_NAMES)]
        out.append(doc)
    return out
