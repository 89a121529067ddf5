"""Fixtures shared by every test area: free ports, a dev PKI with live services, databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("SEALTRAIL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def dev_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A dev PKI whose OCSP responder, CRLs and TSA answer over HTTP on loopback for the whole session."""
    from sealtrail.devpki import PkiServices, create_dev_pki

    port = free_port()
    pki = create_dev_pki(tmp_path_factory.mktemp("pki"), f"http://127.0.0.1:{port}")
    with PkiServices(pki, port=port):
        yield pki


def _pg_reachable() -> bool:
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(PG_ADMIN_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_available() -> bool:
    return _pg_reachable()


@pytest.fixture
def pg_url(pg_available: bool) -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database for one test, dropped afterwards."""
    import sqlalchemy

    if not pg_available:
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}; the PostgreSQL half of this test is skipped")
    name = f"sealtrail_test_{secrets.token_hex(4)}"
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        from sealtrail.db import make_engine

        make_engine(url).dispose()
        make_engine.cache_clear()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sealtrail.db'}"
    return str(request.getfixturevalue("pg_url"))
