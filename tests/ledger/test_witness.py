"""Witness cosigning (C2SP tlog-witness / tlog-cosignature) and k-of-n checkpoint verification."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi import FastAPI

from ledger import tlog
from ledger.entry import Entry
from ledger.note import NoteError, NoteSigner
from ledger.store import Ledger
from ledger.web import make_witness_router
from ledger.witness import Cosigner, Witness, add_checkpoint_body, verify_cosigned
from sealtrail.db import make_engine, migrate
from tests.conftest import free_port

ORIGIN = "w.sealtrail.test/log"


def _entries(lo: int, hi: int) -> list[Entry]:
    return [Entry("issue", f"D{i}", f"{i:064x}", "", "", datetime(2025, 1, 1, tzinfo=UTC)) for i in range(lo, hi)]


@pytest.fixture
def setup(tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    migrate(database_url)
    engine = make_engine(database_url)
    ledger = Ledger(ORIGIN, NoteSigner(ORIGIN, ed25519.Ed25519PrivateKey.generate()))
    witness = Witness(
        Cosigner("w1.test", ed25519.Ed25519PrivateKey.generate()), {ORIGIN: ledger.verifier}, tmp_path / "w1.json"
    )
    return engine, ledger, witness


def _grow(engine, ledger: Ledger, lo: int, hi: int) -> bytes:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        ledger.append(conn, _entries(lo, hi))
        return ledger.checkpoint(conn)


def test_witness_cosigns_consistent_checkpoints_and_refuses_the_rest(setup) -> None:  # type: ignore[no-untyped-def]
    engine, ledger, witness = setup
    first = _grow(engine, ledger, 0, 5)
    ok = witness.add_checkpoint(add_checkpoint_body(0, [], first))
    assert ok.status == 200 and ok.body.startswith("\u2014 w1.test ")
    second = _grow(engine, ledger, 5, 12)
    stale = witness.add_checkpoint(add_checkpoint_body(0, [], second))
    assert (stale.status, stale.body, stale.content_type) == (409, "5\n", "text/x.tlog.size")
    with engine.connect() as conn:
        proof = ledger.prove_consistency(conn, 5, 12)
    bad = [*proof]
    bad[0] = bytes(32)
    assert witness.add_checkpoint(add_checkpoint_body(5, bad, second)).status == 422
    assert witness.add_checkpoint(add_checkpoint_body(5, proof, second)).status == 200
    forged = Ledger(ORIGIN, NoteSigner(ORIGIN, ed25519.Ed25519PrivateKey.generate()))
    with engine.begin() as conn:
        fake = forged.checkpoint(conn)
    assert witness.add_checkpoint(add_checkpoint_body(12, [], fake)).status == 403
    other = Ledger("other.test/log", ledger.signer.__class__("other.test/log", ed25519.Ed25519PrivateKey.generate()))
    with engine.begin() as conn:
        assert witness.add_checkpoint(add_checkpoint_body(0, [], other.checkpoint(conn))).status == 404
    assert witness.add_checkpoint(b"garbage").status == 400


def test_k_of_n_cosignatures(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine, ledger, w1 = setup
    w2 = Witness(
        Cosigner("w2.test", ed25519.Ed25519PrivateKey.generate()), {ORIGIN: ledger.verifier}, tmp_path / "w2.json"
    )
    note = _grow(engine, ledger, 0, 3)
    lines = [w.add_checkpoint(add_checkpoint_body(0, [], note)).body for w in (w1, w2)]
    with engine.begin() as conn:
        cosigned = ledger.add_cosignatures(conn, note, lines)
    keys = [w1.cosigner.verifier, w2.cosigner.verifier]
    cp = verify_cosigned(cosigned, ledger.verifier, ORIGIN, keys, quorum=2)
    assert cp.size == 3 and cp.root == tlog.tree_hash([tlog.leaf_hash(e.canonical()) for e in _entries(0, 3)])
    with pytest.raises(NoteError, match="1 of the required 2"):
        verify_cosigned(note + lines[0].encode(), ledger.verifier, ORIGIN, keys, quorum=2)
    tampered = cosigned.replace(lines[1].split()[2].encode(), b"A" * len(lines[1].split()[2]))
    with pytest.raises(NoteError):
        verify_cosigned(tampered, ledger.verifier, ORIGIN, keys, quorum=2)
    with engine.connect() as conn:
        assert ledger.latest_checkpoint(conn) == cosigned


@pytest.fixture
def witness_server(setup) -> Iterator[tuple[str, Witness]]:  # type: ignore[no-untyped-def]
    _engine, _ledger, witness = setup
    app = FastAPI()
    app.include_router(make_witness_router(witness))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", witness
    server.should_exit = True
    thread.join(timeout=5)


def test_the_protocol_over_real_http(setup, witness_server) -> None:  # type: ignore[no-untyped-def]
    engine, ledger, _ = setup
    url, witness = witness_server
    note = _grow(engine, ledger, 0, 4)
    response = httpx.post(url + "/add-checkpoint", content=add_checkpoint_body(0, [], note))
    assert response.status_code == 200
    cp = verify_cosigned(note + response.content, ledger.verifier, ORIGIN, [witness.cosigner.verifier], quorum=1)
    assert cp.size == 4


def test_the_installation_publishes_witnessed_checkpoints(tmp_path: Path, witness_server, database_url: str) -> None:  # type: ignore[no-untyped-def]
    from ledger.note import NoteVerifier
    from sealtrail.deployment import Deployment
    from sealtrail.ledgerwiring import Checkpointer, ledger_for, publish_checkpoint
    from sealtrail.settings import Settings

    url, witness = witness_server
    settings = Settings(
        data_dir=tmp_path / "var", log_origin=ORIGIN, dev_pki_url="http://127.0.0.1:9", database_url=database_url
    )
    dep = Deployment(settings)
    ledger, vkey = ledger_for(dep)
    witness.logs[ORIGIN] = NoteVerifier.from_vkey(vkey)
    settings = Settings(
        data_dir=tmp_path / "var",
        log_origin=ORIGIN,
        dev_pki_url="http://127.0.0.1:9",
        witnesses=[f"{url} {witness.cosigner.verifier.vkey}"],
        witness_quorum=1,
        database_url=database_url,
    )
    dep = Deployment(settings)
    with dep.engine.begin() as conn:
        ledger.append(conn, _entries(0, 3))
    first = publish_checkpoint(dep)
    with dep.engine.begin() as conn:
        ledger.append(conn, _entries(3, 9))
    assert Checkpointer(dep).tick() is True
    assert Checkpointer(dep).tick() is False
    with dep.engine.connect() as conn:
        latest = ledger.latest_checkpoint(conn)
    assert latest is not None and latest != first
    cp = verify_cosigned(latest, ledger.verifier, ORIGIN, [witness.cosigner.verifier], quorum=1)
    assert cp.size == 9
    assert (dep.settings.resolved_data_dir / "published-checkpoint").read_bytes() == latest


def test_verifier_keys_round_trip_even_with_plus_signs_in_base64() -> None:
    from ledger.note import NoteVerifier

    for _ in range(40):
        signer = NoteSigner(ORIGIN, ed25519.Ed25519PrivateKey.generate())
        assert NoteVerifier.from_vkey(signer.verifier.vkey) == signer.verifier
        cosigner = Cosigner("w.test", ed25519.Ed25519PrivateKey.generate())
        assert type(cosigner.verifier).from_vkey(cosigner.verifier.vkey) == cosigner.verifier
