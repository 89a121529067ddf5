"""Fixtures shared by every test area: free ports, a dev PKI with live services, databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import functools
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("SEALTRAIL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


# Tests run in two pytest-xdist workers (pyproject addopts: -n auto): most of their time is waiting on subprocesses,
# services and retries. Each worker has its own session fixtures (dev PKI, SoftHSM tokens, S3 server) in its own
# temporary directory, PostgreSQL databases have random names, and ports come from the OS.
LOAD_MODULES = frozenset({"tests/hardening/test_soak.py", "tests/bench/test_quick_bench.py"})
"""The modules that measure or make load (soak, quick bench): one worker runs them one after the other."""


def xdist_scope(nodeid: str) -> str:
    """The unit of work a worker takes whole: a module (its module-scoped fixtures are built once and its tests run
    in order); all of tests/e2e (its modules share one demo installation); the load modules together."""
    module = nodeid.split("::", 1)[0]
    if module in LOAD_MODULES:
        return "load"
    return "tests/e2e" if module.startswith("tests/e2e/") else module


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Schedule by :func:`xdist_scope`. (xdist's own ``loadgroup`` marks tests by rewriting ``item._nodeid``, which
    pytest 9.2 no longer reads, so groups made with markers were silently split across workers.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ScopeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid)

    return ScopeScheduling(config, log)  # type: ignore[arg-type]


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
    return _pg_reachable_cached()


@contextmanager
def pg_database() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database, dropped afterwards (skips when PostgreSQL is unreachable)."""
    import sqlalchemy

    if not _pg_reachable_cached():
        if os.environ.get("SEALTRAIL_TEST_REQUIRE_PG"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL} and SEALTRAIL_TEST_REQUIRE_PG is set")
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


@functools.cache
def _pg_reachable_cached() -> bool:
    return _pg_reachable()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database for one test, dropped afterwards."""
    with pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sealtrail.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """For module-wide installations: None (SQLite under the data directory), then a PostgreSQL database."""
    if request.param == "sqlite":
        yield None
    else:
        with pg_database() as url:
            yield url


SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
HSM_TOKENS = ("sealtrail-school", "sealtrail-usb", "sealtrail-keygen")


class SoftHsm:
    """A SoftHSM2 token directory for the whole session; PINs live in files, as in production."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tokendir = root / "tokens"
        self.conf = root / "softhsm2.conf"
        self.pin_file = root / "user.pin"
        self.wrong_pin_file = root / "wrong.pin"
        self.pin = secrets.token_hex(4)

    def config(self, token: str, key: str | None = None, **extra: object):  # type: ignore[no-untyped-def]
        from hsm_adapters.pkcs11 import Pkcs11Config

        return Pkcs11Config(module=SOFTHSM_MODULE, pin_file=self.pin_file, token_label=token, key_label=key, **extra)  # type: ignore[arg-type]

    def token_dir(self, label: str) -> Path:
        """The directory SoftHSM keeps one token in (found by the label written in its token.object)."""
        for d in self.tokendir.iterdir():
            if label.encode() in (d / "token.object").read_bytes():
                return d
        raise LookupError(label)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory, dev_pki) -> SoftHsm:  # type: ignore[no-untyped-def]
    """SoftHSM2 through its real PKCS#11 module, with the dev PKI's three signer keys on 'sealtrail-school'.

    The module reads SOFTHSM2_CONF once per process, so this is session-wide and set before anything loads it.
    """
    import subprocess

    from asn1crypto import pem

    from hsm_adapters.pkcs11 import import_certificates, import_private_key
    from sealtrail.devpki import SIGNER_ROLES

    hsm = SoftHsm(tmp_path_factory.mktemp("softhsm"))
    hsm.tokendir.mkdir()
    hsm.conf.write_text(f"directories.tokendir = {hsm.tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(hsm.conf)
    hsm.pin_file.write_text(hsm.pin + "\n")
    hsm.wrong_pin_file.write_text("000000")
    for label in HSM_TOKENS:
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", hsm.pin, "--so-pin", "87654321"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    for token, roles in (("sealtrail-school", SIGNER_ROLES), ("sealtrail-usb", ("homeroom_teacher",))):
        for role in roles:
            config = hsm.config(token, role)
            import_private_key(config, pem.unarmor((dev_pki.directory / "keys" / f"{role}.key.pem").read_bytes())[2])
            import_certificates(config, [dev_pki.cert(role), dev_pki.issuing_ca])
    return hsm


@dataclass
class S3Server:
    """An S3-protocol server on loopback (moto's server mode: a stand-in for a vendor's bucket, over real HTTP)."""

    endpoint_url: str
    access_key_id: str = "sealtrail-test"
    secret_access_key: str = "sealtrail-test-secret"

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )

    def new_bucket(self) -> str:
        name = f"sealtrail-{secrets.token_hex(4)}"
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()
