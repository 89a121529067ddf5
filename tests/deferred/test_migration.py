"""Migration 0006_deferred builds exactly the tables the models describe, and down/up keeps existing documents."""

from __future__ import annotations

from datetime import date

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import Session, SQLModel

import workflow.signing  # noqa: F401 - registers the tables on SQLModel.metadata
from registry.records import DocumentRecord
from sealtrail.db import alembic_config, make_engine, migrate

OURS = {"registered_signers", "signing_tasks"}


def test_tables_match_the_models_and_downgrade_keeps_documents(database_url: str) -> None:
    migrate(database_url)
    engine = make_engine(database_url)
    with Session(engine) as session:
        session.add(
            DocumentRecord(
                id="HB-2025-KEEP", token="k" * 22, kind="transcript", school_code="01", school_name="Trường",
                holder_masked="N. T. Hằng", issue_date=date(2025, 5, 30),
            )
        )  # fmt: skip
        session.commit()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    ours = [d for d in diff if any(t in repr(d) for t in OURS)]
    assert ours == [], ours
    command.downgrade(alembic_config(database_url), "0003_archives")
    command.upgrade(alembic_config(database_url), "head")
    with Session(engine) as session:
        assert session.get(DocumentRecord, "HB-2025-KEEP") is not None
