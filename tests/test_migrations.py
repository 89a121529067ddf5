"""Migrations keep data: a database made by the oldest schema, filled with realistic rows, upgraded to head."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import command
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlmodel import Session, select

from ledger import tlog
from ledger.entry import Entry
from ledger.note import NoteSigner, open_checkpoint
from ledger.store import Ledger
from registry.records import DocumentRecord
from sealtrail.db import alembic_config, make_engine, migrate

OLDEST = "0001_core"
ORIGIN = "migrate.sealtrail.test/log"
SCHOOLS = [
    ("79000701", "Trường THPT Lê Quý Đôn"),
    ("01000123", "Trường THCS Nguyễn Trãi"),
    ("48000055", "Trường Tiểu học Hòa Khánh"),
]
NAMES = ["Nguyễn Thị Ánh Dương", "Trần Văn Bảo", "Lê Hoàng Yến Nhi", "Phạm Đức Mạnh", "Võ Ngọc Trâm"]


def _mask(name: str) -> str:
    parts = name.split()
    return " ".join([p[0] + "." for p in parts[:-1]] + [parts[-1]])


def _rows(n: int) -> list[dict[str, Any]]:
    """Documents as version 0001 stored them: every status, nullable columns both set and empty, Vietnamese text."""
    base = datetime(2025, 5, 30, 8, 0, tzinfo=UTC)
    statuses = ["issued", "issued", "revoked", "superseded", "pending"]
    rows = []
    for i in range(n):
        code, school = SCHOOLS[i % len(SCHOOLS)]
        status = statuses[i % len(statuses)]
        issued = status != "pending"
        rows.append(
            {
                "id": f"HB-2025-{code}-{i:05d}",
                "token": hashlib.sha256(f"token{i}".encode()).hexdigest()[:43],
                "kind": "diploma" if i % 4 == 0 else "transcript",
                "school_code": code,
                "school_name": school,
                "holder_masked": _mask(NAMES[i % len(NAMES)]),
                "issue_date": date(2025, 5, 30) + timedelta(days=i % 3),
                "status": status,
                "status_reason": "Sai điểm môn Toán, đã cấp lại" if status in ("revoked", "superseded") else None,
                "status_changed_at": base + timedelta(days=40) if status in ("revoked", "superseded") else None,
                "superseded_by": f"HB-2025-{code}-{i + 1:05d}" if status == "superseded" else None,
                "sha256_pdf": hashlib.sha256(f"pdf{i}".encode()).hexdigest() if issued else None,
                "sha256_xml": hashlib.sha256(f"xml{i}".encode()).hexdigest() if issued else None,
                "leaf_index": None,
                "signers": [
                    {"role": "homeroom_teacher", "name": "Đỗ Thị Hạnh"},
                    {"role": "principal", "name": "Ngô Quang Vinh"},
                    {"role": "seal", "name": school},
                ]
                if issued
                else [],
                "created_at": base + timedelta(minutes=i),
                "issued_at": base + timedelta(minutes=i, seconds=7) if issued else None,
            }
        )
    return rows


def _as_utc(value: Any) -> Any:
    """SQLite hands timezone-aware columns back naive (stored as UTC); PostgreSQL hands them back aware."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return value


def test_a_database_made_by_the_oldest_schema_upgrades_without_losing_anything(database_url: str) -> None:
    cfg = alembic_config(database_url)
    command.upgrade(cfg, OLDEST)
    engine = make_engine(database_url)
    documents = sa.Table("documents", sa.MetaData(), autoload_with=engine)
    rows = _rows(250)
    with engine.begin() as conn:
        conn.execute(documents.insert(), rows)

    # The next schema adds the ledger: log each issued document, as the issuer of that time did, and sign a checkpoint.
    command.upgrade(cfg, "0002_ledger")
    ledger = Ledger(ORIGIN, NoteSigner(ORIGIN, ed25519.Ed25519PrivateKey.generate()))
    issued = [r for r in rows if r["sha256_pdf"]]
    entries = [
        Entry("issue", r["id"], r["sha256_pdf"], r["sha256_xml"], hashlib.sha256(b"cert").hexdigest(), r["issued_at"])
        for r in issued
    ]
    with engine.begin() as conn:
        indexes = ledger.append(conn, entries)
        conn.execute(
            documents.update().where(documents.c.id == sa.bindparam("doc")).values(leaf_index=sa.bindparam("leaf")),
            [{"doc": r["id"], "leaf": i} for r, i in zip(issued, indexes, strict=True)],
        )
        note = ledger.checkpoint(conn)
    for r, i in zip(issued, indexes, strict=True):
        r["leaf_index"] = i

    command.upgrade(cfg, "head")
    migrate(database_url)  # what start-up does: a no-op now

    with Session(engine) as session:
        stored = {d.id: d for d in session.exec(select(DocumentRecord))}
    assert len(stored) == len(rows)
    for row in rows:
        record = stored[row["id"]]
        for column, value in row.items():
            assert _as_utc(getattr(record, column)) == _as_utc(value), (row["id"], column)
        assert record.archived_sha256_pdf is None and record.archived_at is None

    with engine.connect() as conn:
        assert ledger.audit(conn).ok
        ledger.check_consistent_with(conn, note)
        checkpoint = open_checkpoint(note, ledger.verifier, ORIGIN)
        assert checkpoint.size == len(issued)
        sample = issued[len(issued) // 2]
        data = ledger.entry(conn, sample["leaf_index"])
        proof = ledger.prove_inclusion(conn, sample["leaf_index"], checkpoint.size)
    assert Entry.parse(data).doc_id == sample["id"]
    tlog.verify_inclusion(sample["leaf_index"], checkpoint.size, tlog.leaf_hash(data), proof, checkpoint.root)

    # The upgraded database takes new documents and new log entries as usual.
    with engine.begin() as conn:
        (new_index,) = ledger.append(
            conn, [Entry("issue", "HB-2026-NEW", "ab" * 32, "cd" * 32, "ef" * 32, datetime.now(UTC))]
        )
    assert new_index == len(issued)
