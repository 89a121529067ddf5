"""The Bitstring Status List codec, and the migration that gives existing documents their list positions."""

from __future__ import annotations

import base64
import gzip
from datetime import date

import pytest
import sqlalchemy as sa
from alembic import command

from schemas.statuslist import (
    LIST_SIZE,
    StatusListError,
    bit,
    bitstring,
    decode,
    encode,
    list_url,
    name_from_url,
    school_year,
)
from sealtrail.db import alembic_config


def test_encoded_list_round_trips_with_index_zero_as_the_leftmost_bit() -> None:
    bits = bitstring({0, 9, LIST_SIZE - 1})
    assert len(bits) == 16 * 1024 and bits[0] == 0x80 and bits[1] == 0x40 and bits[-1] == 0x01
    encoded = encode(bits)
    assert encoded.startswith("u") and "=" not in encoded
    raw = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    assert raw == bits  # any GZIP/base64url implementation reads the same bits
    decoded = decode(encoded)
    assert [i for i in (0, 1, 8, 9, LIST_SIZE - 2, LIST_SIZE - 1) if bit(decoded, i)] == [0, 9, LIST_SIZE - 1]


def test_lists_smaller_than_the_herd_privacy_minimum_or_malformed_are_refused() -> None:
    small = "u" + base64.urlsafe_b64encode(gzip.compress(bytes(1024))).decode().rstrip("=")
    with pytest.raises(StatusListError, match="fewer than"):
        decode(small)
    with pytest.raises(StatusListError, match="at least"):
        encode(bytes(1024))
    with pytest.raises(StatusListError, match="multibase"):
        decode("z" + small[1:])
    with pytest.raises(StatusListError, match="GZIP"):
        decode("u" + base64.urlsafe_b64encode(b"not gzip").decode().rstrip("="))
    with pytest.raises(StatusListError, match="outside"):
        bit(bitstring(set()), LIST_SIZE)


def test_a_gzip_bomb_is_not_inflated_past_its_bound() -> None:
    bomb = "u" + base64.urlsafe_b64encode(gzip.compress(bytes(64 * 1024 * 1024))).decode().rstrip("=")
    bits = decode(bomb)
    assert len(bits) <= LIST_SIZE * 8 + 1


def test_school_years_start_in_september_and_urls_name_their_list() -> None:
    assert school_year(date(2025, 9, 1)) == "2025-2026"
    assert school_year(date(2026, 6, 30)) == "2025-2026"
    url = list_url("https://verify.example.vn/", "01001503/2025-2026")
    assert url == "https://verify.example.vn/status/01001503/2025-2026/revocation"
    assert name_from_url(url) == ("01001503/2025-2026", "revocation")
    with pytest.raises(StatusListError):
        name_from_url("https://verify.example.vn/v/abc")


def test_migration_gives_every_existing_document_a_unique_random_position(database_url: str) -> None:
    cfg = alembic_config(database_url)
    command.upgrade(cfg, "0003_archives")
    engine = sa.create_engine(database_url)
    rows = [
        {
            "id": f"HB-{i}",
            "token": f"t{i}",
            "kind": "transcript",
            "school_code": "01001503" if i % 2 else "01",
            "school_name": "Trường",
            "holder_masked": "N. A",
            "issue_date": date(2025, 10, 1) if i < 30 else date(2026, 10, 1),
            "status": "issued",
            "signers": "[]",
            "created_at": "2025-10-01 00:00:00+00:00",
        }
        for i in range(40)
    ]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO documents (id, token, kind, school_code, school_name, holder_masked, issue_date, status,"
                " signers, created_at) VALUES (:id, :token, :kind, :school_code, :school_name, :holder_masked,"
                " :issue_date, :status, :signers, :created_at)"
            ),
            rows,
        )
    command.upgrade(cfg, "0008_status")
    with engine.connect() as conn:
        got = conn.execute(sa.text("SELECT id, status_list, status_index FROM documents")).all()
    assert len(got) == 40 and all(r.status_index is not None and 0 <= r.status_index < LIST_SIZE for r in got)
    assert {r.status_list for r in got} == {"01/2025-2026", "01001503/2025-2026", "01/2026-2027", "01001503/2026-2027"}
    positions = [(r.status_list, r.status_index) for r in got]
    assert len(set(positions)) == len(positions)
    first, second = [r for r in got if r.status_list == "01/2025-2026"][:2]
    with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):  # the database refuses a shared position
        conn.execute(
            sa.text("UPDATE documents SET status_index = :i WHERE id = :id"), {"i": first.status_index, "id": second.id}
        )
    engine.dispose()
    command.downgrade(cfg, "0003_archives")  # and back: the columns go, the documents stay
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM documents")).scalar() == 40
        assert "status_index" not in {c["name"] for c in sa.inspect(conn).get_columns("documents")}
    engine.dispose()


def test_concurrent_issues_get_distinct_positions_in_their_list(database_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from registry.records import DocumentRecord
    from registry.statusindex import add_with_status_index, list_names, status_bits
    from sealtrail.db import make_engine, migrate

    migrate(database_url)
    engine = make_engine(database_url)

    def issue(i: int) -> None:
        record = DocumentRecord(
            id=f"VB-2026-{i:06d}",
            token=f"tok{i}",
            kind="diploma",
            school_code="01",
            school_name="Sở GD&ĐT Hà Nội",
            holder_masked="N. Hằng",
            issue_date=date(2026, 6, 1),
        )
        add_with_status_index(engine, record)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(issue, range(120)))
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT status_list, status_index, status FROM documents")).all()
    assert len(rows) == 120 and {r.status_list for r in rows} == {"01/2025-2026"}
    assert len({r.status_index for r in rows}) == 120
    assert list_names(engine) == ["01/2025-2026"] and list_names(engine, "02") == []
    assert status_bits(engine, "01/2025-2026") == bitstring(set())  # pending documents are not set
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE documents SET status = 'revoked' WHERE id = 'VB-2026-000007'"))
        conn.execute(sa.text("UPDATE documents SET status = 'superseded' WHERE id = 'VB-2026-000008'"))
    index = {r.status_index for r in rows}
    bits = status_bits(engine, "01/2025-2026")
    assert sum(bit(bits, i) for i in index) == 2
