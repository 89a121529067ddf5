"""Database engine and migrations: SQLite under the data directory by default, PostgreSQL when configured."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


@lru_cache(maxsize=8)
def make_engine(url: str) -> Engine:
    """One engine per URL per process. SQLite gets WAL and a busy timeout so readers never block the writer."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def create_private_file(path: Path) -> None:
    """Create ``path`` (and its folder) readable by this user only (0600), whatever the umask; SQLite gives its
    -wal and -shm files the database file's mode. An existing file is left as it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name in ("", ":memory:") or path.exists():
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made meanwhile by another process
        return
    os.fchmod(fd, 0o600)
    os.close(fd)


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (creating the SQLite file's folder if needed)."""
    if url.startswith("sqlite:///"):
        create_private_file(Path(url.removeprefix("sqlite:///")))
    command.upgrade(alembic_config(url), "head")
