"""`sealtrail org create`, `sealtrail user create|grant`, `sealtrail student code`, `sealtrail api-key create
--scope`: the first organisation and administrator from the command line, and what they leave in the audit trail."""

from __future__ import annotations

import re
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from accounts import service
from accounts.models import AuditEvent
from sealtrail.cli import app
from sealtrail.deployment import Deployment
from sealtrail.settings import Settings


@pytest.fixture
def env(tmp_path: Path, database_url: str, dev_pki: object, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    data = tmp_path / "var"
    data.mkdir()
    (data / "pki").symlink_to(dev_pki.directory)  # type: ignore[attr-defined]
    values = {"SEALTRAIL_DATA_DIR": str(data), "SEALTRAIL_DATABASE_URL": database_url}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def run(*args: str, **env: str) -> str:
    result = CliRunner().invoke(app, list(args), env=env or None)
    assert result.exit_code == 0, result.output
    return result.output


def test_first_admin_from_the_cli_can_sign_in_and_manage_the_school(env: dict[str, str]) -> None:
    run("org", "create", "--code", "SO-HN", "--name", "Sở GD&ĐT Hà Nội", "--kind", "department")
    run("org", "create", "--code", "01001503", "--name", "THCS Nguyễn Du", "--kind", "school", "--parent", "SO-HN")
    bad = CliRunner().invoke(app, ["org", "create", "--code", "X", "--name", "X", "--kind", "castle"])
    assert bad.exit_code == 1 and "unknown organisation kind" in bad.output
    out = run(
        "user", "create", "--username", "admin", "--name", "Quản trị", "--org", "01001503", "--role", "school_admin",
        SEALTRAIL_NEW_PASSWORD="mật-khẩu-quản-trị-dài",
    )  # fmt: skip
    uri = re.search(r"otpauth://\S+", out)
    assert uri, out
    secret = pyotp.parse_uri(uri.group()).secret
    run("user", "create", "--username", "hs1", "--name", "Học Sinh", "--personal-id", "001310012345", "--student")
    run("user", "grant", "--username", "hs1", "--org", "01001503", "--role", "student")
    code = run("student", "code", "--username", "hs1", "--school", "01001503").strip()
    key = run("api-key", "create", "--school", "01001503", "--scope", "workflow:read").strip().splitlines()[-1]

    from sealtrail.web.app import create_app

    dep = Deployment(Settings())
    client = TestClient(create_app(dep.settings), base_url="https://testserver", follow_redirects=False)
    login = client.post(
        "/dang-nhap", data={"username": "admin", "password": "mật-khẩu-quản-trị-dài", "totp": pyotp.TOTP(secret).now()}
    )
    assert login.status_code == 303
    assert client.get("/can-bo/01001503/nhat-ky?dinh-dang=json").status_code == 200
    assert (
        client.get("/api/v1/schools/01001503/work-items", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    )
    assert service.redeem_student_code(dep.engine, code).username == "hs1"
    with Session(dep.engine) as session:
        events = session.exec(select(AuditEvent)).all()
    logged = {e.action for e in events if e.leaf_index is not None}
    assert logged == {"role.grant", "apikey.create"}  # security-relevant: also in the public log
    assert {"org.create", "user.create", "student.code", "login.ok"} <= {e.action for e in events}
