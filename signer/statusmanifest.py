"""The trust bundle's signed "status as of" (issue #20): one JWS over the time the bundle's status was taken and
the SHA-256 of every status and revocation file in it (``status/**``, ``revocation/*``), signed with the seal key like
the status lists themselves. An offline verifier (verifier.bundlestatus) believes a status file only when it
matches this manifest, prints the time, and warns when it is old. Reading it is verifier.bundlestatus.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from schemas.statuslist import STATUS_DIR
from signer.host import Installation
from signer.vc import sign_jwt

MANIFEST = "status-manifest.jwt"
MANIFEST_TYPE = "SealTrailStatusManifest"
COVERED_DIRS = (STATUS_DIR, "revocation")  # verifier.revocation.CRL_DIR


def covered_files(directory: Path) -> dict[str, str]:
    """Each covered file's path (relative, with /) → its SHA-256 in hex."""
    out: dict[str, str] = {}
    for sub in COVERED_DIRS:
        base = directory / sub
        if not base.is_dir():
            continue
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            out[path.relative_to(directory).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def write_status_manifest(dep: Installation, directory: Path, *, as_of: datetime | None = None) -> Path:
    """Sign and write ``directory/status-manifest.jwt`` for the status files already written there."""
    moment = (as_of or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    payload = {
        "type": MANIFEST_TYPE,
        "asOf": moment.isoformat().replace("+00:00", "Z"),
        "files": covered_files(directory),
    }
    kid = f"{dep.settings.public_base_url.rstrip('/')}/trust#seal"
    path = directory / MANIFEST
    path.write_text(sign_jwt(payload, dep.signing_keys["seal"], kid) + "\n", encoding="ascii")
    return path
