"""The log in a real database (SQLite and PostgreSQL): sequencing, proofs, tiles, append-only, audit, forks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ledger import tlog
from ledger.entry import Entry
from ledger.note import NoteSigner, open_checkpoint
from ledger.proof import TlogProof
from ledger.store import Ledger, LedgerError, LedgerForkError
from ledger.tile import parse_tile_path, tile_path
from ledger.web import make_router
from sealtrail.db import make_engine, migrate

ORIGIN = "test.sealtrail.vn/log"


def _entry(i: int) -> Entry:
    return Entry("issue", f"VB-2025-{i:06d}", f"{i:064x}", "", "", datetime(2025, 9, 5, tzinfo=UTC))


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(ORIGIN, NoteSigner(ORIGIN, ed25519.Ed25519PrivateKey.generate()))


@pytest.fixture
def engine(database_url: str) -> sqlalchemy.Engine:
    migrate(database_url)
    return make_engine(database_url)


def test_appends_are_numbered_and_proofs_verify_against_signed_checkpoints(engine, ledger: Ledger) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        assert ledger.append(conn, [_entry(i) for i in range(7)]) == list(range(7))
        first = open_checkpoint(ledger.checkpoint(conn), ledger.verifier, ORIGIN)
    with engine.begin() as conn:
        assert ledger.append(conn, [_entry(i) for i in range(7, 300)]) == list(range(7, 300))
        note = ledger.checkpoint(conn)
    cp = open_checkpoint(note, ledger.verifier, ORIGIN)
    assert (first.size, cp.size) == (7, 300)
    leaves = [tlog.leaf_hash(_entry(i).canonical()) for i in range(300)]
    assert cp.root == tlog.tree_hash(leaves) and first.root == tlog.tree_hash(leaves[:7])
    with engine.connect() as conn:
        for index in (0, 6, 255, 256, 299):
            tlog.verify_inclusion(index, 300, leaves[index], ledger.prove_inclusion(conn, index, 300), cp.root)
        tlog.verify_consistency(7, 300, ledger.prove_consistency(conn, 7, 300), first.root, cp.root)
        with pytest.raises(LedgerError, match="signed"):
            ledger.prove_inclusion(conn, 3, 100)
        proof = TlogProof.parse(ledger.tlog_proof(conn, 42))
        assert proof.verify(_entry(42).canonical(), ledger.verifier, ORIGIN).size == 300
        assert ledger.audit(conn).ok


def test_the_database_refuses_updates_and_deletes(engine, ledger: Ledger) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        ledger.append(conn, [_entry(0), _entry(1)])
        ledger.checkpoint(conn)
    for sql in (
        "UPDATE ledger_entries SET data = data",
        "DELETE FROM ledger_entries",
        "DELETE FROM ledger_nodes",
        "UPDATE ledger_checkpoints SET size = 0",
        "UPDATE ledger_state SET size = 0",
        "DELETE FROM ledger_state",
    ):
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(sql)
    with engine.connect() as conn:
        assert ledger.size(conn) == 2 and ledger.audit(conn).ok


def test_many_writers_leave_no_gap_no_duplicate_and_one_tree(engine, ledger: Ledger) -> None:  # type: ignore[no-untyped-def]
    errors: list[BaseException] = []
    results: list[int] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        try:
            for j in range(15):
                with engine.begin() as conn:
                    got = ledger.append(conn, [_entry(w * 1000 + j)])
                with lock:
                    results.extend(got)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(results) == list(range(120))
    with engine.begin() as conn:
        ledger.checkpoint(conn)
    with engine.connect() as conn:
        report = ledger.audit(conn)
        assert report.ok, report.problems


def test_tiles_are_served_with_cache_headers(engine, ledger: Ledger) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        ledger.append(conn, [_entry(i) for i in range(260)])
        ledger.checkpoint(conn)
    app = FastAPI()
    app.include_router(make_router(engine.connect, ledger, ledger.verifier.vkey))
    client = TestClient(app)
    full = client.get("/log/" + tile_path(0, 0))
    assert full.status_code == 200 and len(full.content) == 256 * 32
    assert "immutable" in full.headers["cache-control"]
    leaves = [tlog.leaf_hash(_entry(i).canonical()) for i in range(260)]
    assert full.content[:32] == leaves[0]
    partial = client.get("/log/" + tile_path(0, 1, 4))
    assert partial.content == b"".join(leaves[256:260])
    level1 = client.get("/log/" + tile_path(1, 0, 1))
    assert level1.content == tlog.tree_hash(leaves[:256])
    bundle = client.get("/log/tile/entries/000.p/3").content
    assert bundle[2 : 2 + int.from_bytes(bundle[:2], "big")] == _entry(0).canonical()
    assert client.get("/log/tile/0/001.p/9").status_code == 404
    assert client.get("/log/checkpoint").text.startswith(ORIGIN + "\n260\n")
    assert client.get("/log/key").text.strip() == ledger.verifier.vkey


def test_a_restored_older_backup_is_refused(engine, ledger: Ledger) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        ledger.append(conn, [_entry(i) for i in range(3)])
        published_small = ledger.checkpoint(conn)
    with engine.begin() as conn:
        ledger.append(conn, [_entry(i) for i in range(3, 5)])
        published_big = ledger.checkpoint(conn)
    with engine.connect() as conn:
        ledger.check_consistent_with(conn, published_small)
        ledger.check_consistent_with(conn, published_big)
    other = Ledger(ORIGIN, ledger.signer)
    fresh = (
        make_engine(str(engine.url).replace("sealtrail.db", "restored.db")) if engine.dialect.name == "sqlite" else None
    )
    if fresh is not None:
        migrate(str(fresh.url))
        with fresh.begin() as conn:
            other.append(conn, [_entry(i) for i in range(3)])
        with fresh.connect() as conn, pytest.raises(LedgerForkError, match="older backup"):
            other.check_consistent_with(conn, published_big)


def test_tile_paths() -> None:
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(2, 5, 17) == "tile/2/005.p/17"
    assert parse_tile_path("tile/entries/x001/234.p/7") == ("entries", 1234, 7)
    for bad in ("tile/0/1234", "tile/64/000", "tile/0/000.p/0", "tile/0/000.p/256", "tile/00/000"):
        with pytest.raises(ValueError):
            parse_tile_path(bad)
