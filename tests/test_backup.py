"""Backup and restore: back up, issue more, restore the backup, and the ledger's fork check refuses the older state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

import schemas
from ledger.store import LedgerForkError
from registry.records import DocumentRecord
from sealtrail.backup import backup, restore
from sealtrail.cli import app
from sealtrail.deployment import Deployment, DeploymentError
from sealtrail.ledgerwiring import audit_deployment, check_not_forked, publish_checkpoint
from sealtrail.settings import Settings
from tests.conftest import free_port


@pytest.fixture
def dep(tmp_path: Path, database_url: str) -> Iterator[Deployment]:
    deployment = Deployment(
        Settings(data_dir=tmp_path / "var", dev_pki_url=f"http://127.0.0.1:{free_port()}", database_url=database_url)
    )
    services = deployment.start_dev_pki_services()
    try:
        yield deployment
    finally:
        if services:
            services.stop()


def _issue(dep: Deployment, sample: str) -> str:
    doc_id = dep.make_issuer().issue(schemas.parse_document(schemas.load_sample(sample))).doc_id
    publish_checkpoint(dep)
    return doc_id


def _exists(dep: Deployment, doc_id: str) -> bool:
    with Session(dep.engine) as session:
        return session.get(DocumentRecord, doc_id) is not None


def test_a_restored_older_backup_is_detected_and_the_newest_one_is_accepted(dep: Deployment, tmp_path: Path) -> None:
    first = _issue(dep, "diploma_thpt")
    env = {
        "SEALTRAIL_DATA_DIR": str(dep.settings.data_dir),
        "SEALTRAIL_DATABASE_URL": dep.settings.effective_database_url,
        "SEALTRAIL_DEV_PKI_URL": dep.settings.dev_pki_url,
    }
    made = CliRunner().invoke(app, ["backup", "--out", str(tmp_path / "b1")], env=env)
    assert made.exit_code == 0, made.output
    assert "1 log entries" in made.output
    older = tmp_path / "b1"
    assert {p.name for p in older.iterdir()} >= {"manifest.json", "documents"}
    assert not (older / "published-checkpoint").exists()
    with pytest.raises(DeploymentError, match="not empty"):
        backup(dep, older)

    second = _issue(dep, "transcript_thcs")
    newest = tmp_path / "b2"
    assert backup(dep, newest)["ledger_size"] == 2

    # The older backup put back: the log it holds is shorter than the checkpoint already published.
    refused = CliRunner().invoke(app, ["restore", "--from", str(older), "--yes"], env=env)
    assert refused.exit_code == 1, refused.output
    assert "restored from an older backup" in refused.output
    assert _exists(dep, first) and not _exists(dep, second)
    with pytest.raises(LedgerForkError, match="older backup"):
        check_not_forked(dep)
    from sealtrail.web.app import create_app

    with pytest.raises(LedgerForkError):
        create_app(dep.settings)  # the service will not start on it

    # The newest backup put back: consistent with what was published, every document and file is there.
    restore(dep, newest)
    check_not_forked(dep)
    assert _exists(dep, first) and _exists(dep, second)
    assert audit_deployment(dep) == []


def test_restore_needs_confirmation_and_the_right_kind_of_database(dep: Deployment, tmp_path: Path) -> None:
    backup(dep, tmp_path / "b")
    env = {
        "SEALTRAIL_DATA_DIR": str(dep.settings.data_dir),
        "SEALTRAIL_DATABASE_URL": dep.settings.effective_database_url,
    }
    unconfirmed = CliRunner().invoke(app, ["restore", "--from", str(tmp_path / "b")], env=env)
    assert unconfirmed.exit_code == 2 and "--yes" in unconfirmed.output
    other = "postgresql+psycopg://x@127.0.0.1:1/x" if dep.engine.dialect.name == "sqlite" else None
    wrong = Deployment(dep.settings.model_copy(update={"database_url": other, "data_dir": tmp_path / "other"}))
    wrong.__dict__["engine"] = dep.engine  # the check comes before any database work
    with pytest.raises(DeploymentError, match="this backup is of a"):
        restore(wrong, tmp_path / "b")
