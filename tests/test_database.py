"""The schema is built by Alembic migrations on SQLite and PostgreSQL alike, and data directories stay apart."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import sqlalchemy
from sqlmodel import Session, select

from registry.records import DocumentRecord
from sealtrail.db import make_engine, migrate
from sealtrail.settings import Settings


def test_migrations_build_the_documents_registry(database_url: str) -> None:
    migrate(database_url)
    migrate(database_url)  # a second run is a no-op
    engine = make_engine(database_url)
    with Session(engine) as session:
        session.add(
            DocumentRecord(
                id="VB-2025-TEST",
                token="t" * 22,
                kind="diploma",
                school_code="01",
                school_name="Trường THPT Chu Văn An",
                holder_masked="N. T. T. Hằng",
                issue_date=date(2025, 9, 5),
            )
        )
        session.commit()
    with Session(engine) as session:
        record = session.exec(select(DocumentRecord).where(DocumentRecord.token == "t" * 22)).one()
        assert record.holder_masked == "N. T. T. Hằng"
        assert record.status == "pending"
    tables = set(sqlalchemy.inspect(engine).get_table_names())
    assert {"documents", "alembic_version"} <= tables


def test_each_data_directory_has_its_own_database(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SEALTRAIL_DATA_DIR", str(tmp_path / "a"))
    a = Settings()
    monkeypatch.setenv("SEALTRAIL_DATA_DIR", str(tmp_path / "b"))
    b = Settings()
    assert a.effective_database_url != b.effective_database_url
    assert a.pki_dir != b.pki_dir and a.documents_dir != b.documents_dir
    assert str(tmp_path / "a") in a.effective_database_url
