"""Backup and restore of one installation's database and stored documents (keys are backed up separately).

A backup directory holds ``manifest.json``, the database (``sealtrail.db`` made with SQLite's online backup API,
or ``sealtrail.pgdump`` made by ``pg_dump --format=custom``) and, when documents are kept in the data directory,
``documents/``. The file ``published-checkpoint`` is deliberately NOT part of a backup: it is how a restored,
older database is recognised (see ``sealtrail.ledgerwiring.check_not_forked``).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import text

from sealtrail.deployment import Deployment, DeploymentError
from signer.storage import BlobStore

PG_DUMP = "sealtrail.pgdump"
SQLITE_FILE = "sealtrail.db"


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The SQLAlchemy URL as a libpq URL without its password (which goes to PGPASSWORD, not the command line)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    env = {}
    netloc = parts.netloc
    if parts.password is not None:
        env["PGPASSWORD"] = parts.password
        user = parts.username or ""
        netloc = f"{user}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((scheme, netloc, parts.path, parts.query, "")), env


def _run(command: list[str], env: dict[str, str]) -> None:
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, env={**os.environ, **env}, timeout=3600)
    except FileNotFoundError as exc:
        raise DeploymentError(f"{command[0]} is not installed (Debian: postgresql-client)") from exc
    except subprocess.CalledProcessError as exc:
        raise DeploymentError(f"{command[0]} failed: {exc.stderr.strip()[:500]}") from None


def _sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def backup(dep: Deployment, out: Path) -> dict[str, object]:
    """Copy the database (consistent, while SealTrail runs) and the stored documents into ``out`` (new or empty)."""
    if out.exists() and any(out.iterdir()):
        raise DeploymentError(f"{out} is not empty; back up into a new directory")
    out.mkdir(parents=True, exist_ok=True)
    url = dep.settings.effective_database_url
    with dep.engine.connect() as conn:
        ledger_size = int(conn.execute(text("SELECT size FROM ledger_state WHERE id = 1")).scalar_one())
    if url.startswith("sqlite:///"):
        source = sqlite3.connect(_sqlite_path(url))
        target = sqlite3.connect(out / SQLITE_FILE)
        try:
            source.backup(target)  # SQLite's online backup: a consistent copy while writers go on
        finally:
            target.close()
            source.close()
        database = SQLITE_FILE
    else:
        libpq, env = _libpq(url)
        _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(out / PG_DUMP), libpq], env)
        database = PG_DUMP
    documents = None
    if isinstance(dep.blobs, BlobStore) and dep.blobs.root.exists():
        shutil.copytree(dep.blobs.root, out / "documents", ignore=shutil.ignore_patterns(".tmp-*"))
        documents = "documents"
    manifest: dict[str, object] = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": database,
        "documents": documents,
        "ledger_size": ledger_size,
        "log_origin": dep.settings.log_origin,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def restore(dep: Deployment, source: Path) -> dict[str, object]:
    """Put a backup back (SealTrail must be stopped). The next start refuses to run if it is older than the log
    this installation already published."""
    manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
    url = dep.settings.effective_database_url
    if manifest["database"] == SQLITE_FILE:
        if not url.startswith("sqlite:///"):
            raise DeploymentError("this backup is of a SQLite database; the installation uses PostgreSQL")
        dep.engine.dispose()
        backup_db = sqlite3.connect(source / SQLITE_FILE)
        live = sqlite3.connect(_sqlite_path(url))
        try:
            backup_db.backup(live)
        finally:
            live.close()
            backup_db.close()
    else:
        if url.startswith("sqlite"):
            raise DeploymentError("this backup is of a PostgreSQL database; the installation uses SQLite")
        dep.engine.dispose()
        libpq, env = _libpq(url)
        # The ledger's tables refuse UPDATE and DELETE by trigger; --clean drops them whole, which they allow.
        _run(
            ["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", "--dbname", libpq,
             str(source / PG_DUMP)],
            env,
        )  # fmt: skip
    if manifest.get("documents") and isinstance(dep.blobs, BlobStore):
        # Content-addressed files are never changed, only added: copy back what is missing, keep what is newer.
        for path in (source / str(manifest["documents"])).rglob("*.*"):
            target = dep.blobs.root / path.relative_to(source / str(manifest["documents"]))
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
    return dict(manifest)
