"""A deployment with two schools under one Phòng and one Sở, a person for every role, and signed-in clients.

Runs on SQLite and PostgreSQL (``database_url``); signing uses the session's dev PKI with live OCSP/CRL/TSA.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient

from accounts import service
from sealtrail.deployment import Deployment
from sealtrail.settings import Settings

SCHOOL_A = "01001503"  # THCS Nguyễn Du: the class_9a1 and transcript_thcs samples
SCHOOL_B = "01000105"  # the THPT sample's school
PASSWORD = "mật-khẩu-đủ-dài-2026"
STAFF = (
    "homeroom_teacher",
    "subject_teacher",
    "principal",
    "vice_principal",
    "registrar",
    "school_admin",
    "auditor",
)
CLASS_HOLDERS = ("001310012345",)  # the first pupil of class_9a1 signs in as the student


@dataclass
class World:
    dep: Deployment
    app: object
    totp: dict[str, str] = field(default_factory=dict)  # username → TOTP secret
    clients: dict[str, TestClient] = field(default_factory=dict)  # "principal@A" → signed-in client
    csrf: dict[str, str] = field(default_factory=dict)

    def client(self) -> TestClient:
        return TestClient(self.app, base_url="https://testserver", follow_redirects=False)  # type: ignore[arg-type]

    def login(self, username: str) -> TestClient:
        client = self.client()
        response = client.post(
            "/dang-nhap",
            data={"username": username, "password": PASSWORD, "totp": pyotp.TOTP(self.totp[username]).now()},
        )
        assert response.status_code == 303, response.text
        self.csrf[username] = csrf_of(self.dep, client)
        return client

    def add_staff(self, username: str, org: str, role: str) -> None:
        """One more signed-in-able person (password ``PASSWORD`` and a TOTP seed) with ``role`` in ``org``."""
        made = service.create_person(self.dep.engine, username, username, password=PASSWORD)
        service.grant(self.dep.engine, username, org, role)
        assert made.person.totp_secret
        self.totp[username] = made.person.totp_secret


def csrf_of(dep: Deployment, client: TestClient) -> str:
    token = next(v for k, v in client.cookies.items() if k.endswith("st_session"))
    actor = service.actor_from_session(dep.engine, token)
    assert actor is not None and actor.csrf_token
    return actor.csrf_token


def make_deployment(root: Path, database_url: str, dev_pki: object) -> Deployment:
    data = root / "var"
    data.mkdir(parents=True)
    (data / "pki").symlink_to(dev_pki.directory)  # type: ignore[attr-defined]
    prefix = dev_pki.service_prefix  # type: ignore[attr-defined]
    base = prefix.split("/", 3)
    return Deployment(Settings(data_dir=data, database_url=database_url, dev_pki_url=f"{base[0]}//{base[2]}"))


def populate(dep: Deployment) -> dict[str, str]:
    """Sở → Phòng → two schools; one person per staff role in school A, a principal and a homeroom teacher in B,
    an auditor at the Sở, and a student of A. Returns username → TOTP secret."""
    engine = dep.engine
    service.create_org(engine, "SO-HN", "Sở GD&ĐT Hà Nội", "department")
    service.create_org(engine, "PGD-HK", "Phòng GD&ĐT Hoàn Kiếm", "district_office", parent="SO-HN")
    service.create_org(engine, SCHOOL_A, "Trường THCS Nguyễn Du", "school", parent="PGD-HK")
    service.create_org(engine, SCHOOL_B, "Trường THPT mẫu", "school", parent="SO-HN")
    secrets: dict[str, str] = {}

    def staff(username: str, org: str, role: str) -> None:
        made = service.create_person(engine, username, username, password=PASSWORD)
        service.grant(engine, username, org, role)
        assert made.person.totp_secret
        secrets[username] = made.person.totp_secret

    for role in STAFF:
        staff(f"{role}-a", SCHOOL_A, role)
    staff("principal-b", SCHOOL_B, "principal")
    staff("homeroom_teacher-b", SCHOOL_B, "homeroom_teacher")
    staff("auditor-so", "SO-HN", "auditor")
    service.create_person(engine, "student-a", "Nguyễn Thị Thu Hằng", personal_id=CLASS_HOLDERS[0], with_totp=False)
    service.grant(engine, "student-a", SCHOOL_A, "student")
    return secrets


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2's production cost (64 MiB, 3 passes) takes ~0.6 s here per hash; tests use a cheaper argon2id."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(service, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def world(tmp_path: Path, database_url: str, dev_pki: object) -> Iterator[World]:
    from sealtrail.web.app import create_app

    dep = make_deployment(tmp_path, database_url, dev_pki)
    secrets = populate(dep)
    app = create_app(dep.settings)
    yield World(dep, app, secrets)


def staff_actor(world: World, username: str):  # type: ignore[no-untyped-def]
    person = service.person_by_username(world.dep.engine, username)
    assert person is not None
    return service.actor_for(world.dep.engine, person, "staff")


def teacher_signed(world: World, payloads: list[dict], school: str = SCHOOL_A) -> list[str]:  # type: ignore[type-arg]
    """Drafts filed by the registrar, checked and signed by the homeroom teacher (the server's teacher key)."""
    from workflow import operations as wf

    ctx = world.app.state.accounts  # type: ignore[attr-defined]
    items = wf.submit(ctx, None, staff_actor(world, "registrar-a"), school, payloads)
    ids = [i.id for i in items]
    teacher = staff_actor(world, "homeroom_teacher-a")
    wf.move(ctx, None, teacher, school, ids, "check")
    signed, problems = wf.teacher_sign(ctx, None, teacher, school, ids)
    assert not problems and len(signed) == len(ids), problems
    return ids


def finish_batch(world: World, batch_id: str, timeout: float = 300) -> dict:  # type: ignore[type-arg]
    """Wait for a batch job to end: SQLite runs it in the app's thread; on PostgreSQL (no worker in these tests)
    this test process runs the job's items itself, as `sealtrail worker` would."""
    import time

    from jobs import batches as jobs

    if jobs.is_postgres(world.dep.engine):
        jobs.run_open_items(world.dep)
    deadline = time.monotonic() + timeout
    while (progress := jobs.batch_progress(world.dep, batch_id))["state"] in ("queued", "running"):  # type: ignore[index]
        assert time.monotonic() < deadline, progress
        time.sleep(0.3)
    return progress  # type: ignore[return-value]
