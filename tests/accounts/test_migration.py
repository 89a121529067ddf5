"""Migration 0005_accounts adds the people-and-workflow tables to a populated database without touching its data,
and its model definitions match what the migration builds."""

from __future__ import annotations

from datetime import date

import sqlalchemy
from alembic import command
from sqlmodel import Session, select

from accounts import service
from registry.records import DocumentRecord
from sealtrail.db import alembic_config, make_engine, migrate
from workflow.states import WorkItem

NEW_TABLES = {
    "organisations", "people", "memberships", "login_sessions", "one_time_codes", "audit_events", "share_links",
    "work_items", "work_transitions",
}  # fmt: skip


def test_upgrade_from_0003_keeps_documents_and_adds_the_account_tables(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "0003_archives")
    engine = make_engine(database_url)
    assert not NEW_TABLES & set(sqlalchemy.inspect(engine).get_table_names())
    with engine.begin() as conn:  # a row as the 0003 schema holds it (the current model has later columns)
        conn.execute(
            sqlalchemy.text(
                "INSERT INTO documents (id, token, kind, school_code, school_name, holder_masked, issue_date, status,"
                " leaf_index, signers, created_at) VALUES ('HB-2025-OLD', :token, 'transcript', '01001503',"
                " 'Trường THCS Nguyễn Du', 'N. T. T. Hằng', :issued, 'issued', 0, '[]', :created)"
            ),
            {"token": "o" * 22, "issued": date(2025, 6, 5), "created": "2025-06-05 00:00:00+00:00"},
        )
    migrate(database_url)
    engine.dispose()
    assert set(sqlalchemy.inspect(engine).get_table_names()) >= NEW_TABLES
    with Session(engine) as session:
        old = session.exec(select(DocumentRecord)).one()
        assert (old.id, old.status, old.leaf_index) == ("HB-2025-OLD", "issued", 0)
    service.create_org(engine, "01001503", "Trường THCS Nguyễn Du", "school")  # the models fit the tables
    service.create_person(engine, "gv", "Giáo viên", password="mật-khẩu-đủ-dài-2026")
    service.grant(engine, "gv", "01001503", "homeroom_teacher")
    with Session(engine) as session:
        session.add(
            WorkItem(
                id="WF-1", school_code="01001503", kind="transcript", holder_name="X", data={"a": 1}, created_by="gv"
            )
        )
        session.commit()
    command.downgrade(alembic_config(database_url), "0003_archives")
    assert not NEW_TABLES & set(sqlalchemy.inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT id FROM documents")).scalars().all() == ["HB-2025-OLD"]
