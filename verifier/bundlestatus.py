"""Reading a trust bundle's signed "status as of" (written by signer.statusmanifest): when its status was taken,
and which status files it vouches for. A status file that the manifest does not name, or whose hash differs, is
not believed (the status is then unknown: never "valid"). The CLI prints the time and warns when it is older
than ``--max-status-age`` days (default 7; ``SEALTRAIL_STATUS_MAX_AGE_DAYS``).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyhanko_certvalidator import CertificateValidator, ValidationContext

from errors import PermanentError
from verifier.vc import JwsError, open_jws

MANIFEST = "status-manifest.jwt"  # the same name signer.statusmanifest writes
MANIFEST_TYPE = "SealTrailStatusManifest"
DEFAULT_MAX_AGE_DAYS = 7.0


class StatusManifestError(PermanentError, ValueError):
    """The bundle has no trustworthy status manifest, or a status file does not match it."""


@dataclass(frozen=True)
class StatusManifest:
    as_of: datetime
    files: dict[str, str]  # relative path → SHA-256 hex
    signer: str

    def age(self, now: datetime | None = None) -> timedelta:
        return (now or datetime.now(UTC)) - self.as_of

    def read(self, bundle_dir: Path, relative: str) -> bytes:
        """A covered file's bytes, only when they are what the manifest signed."""
        expected = self.files.get(relative)
        if expected is None:
            raise StatusManifestError(f"{relative} is not covered by the signed status manifest")
        data = (bundle_dir / relative).read_bytes()
        if hashlib.sha256(data).hexdigest() != expected:
            raise StatusManifestError(f"{relative} differs from the signed status manifest")
        return data


def open_manifest(bundle_dir: Path) -> StatusManifest:
    """The bundle's manifest, its signature checked against the bundle's own roots (offline)."""
    from verifier.offline import TrustBundle

    path = bundle_dir / MANIFEST
    try:
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise StatusManifestError(f"the bundle has no signed status manifest ({MANIFEST})") from exc
    try:
        opened = open_jws(token)
    except JwsError as exc:
        raise StatusManifestError(f"the status manifest's signature does not verify: {exc}") from exc
    bundle = TrustBundle.load(bundle_dir)
    context = ValidationContext(
        trust_roots=bundle.roots,
        other_certs=[*bundle.intermediates, *opened.chain],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    try:
        asyncio.run(
            CertificateValidator(opened.certificate, validation_context=context).async_validate_usage(
                {"digital_signature"}
            )
        )
    except Exception as exc:  # any path or usage failure: the manifest is not trusted
        raise StatusManifestError(f"the status manifest is not signed by a trusted key: {exc}") from exc
    payload = opened.payload
    files = payload.get("files")
    if payload.get("type") != MANIFEST_TYPE or not isinstance(files, dict):
        raise StatusManifestError("the signed object is not a status manifest")
    try:
        as_of = datetime.fromisoformat(str(payload.get("asOf", "")).replace("Z", "+00:00"))
    except ValueError as exc:
        raise StatusManifestError("the status manifest has no readable time") from exc
    if as_of.tzinfo is None:
        raise StatusManifestError("the status manifest's time has no time zone")
    signer = str(opened.certificate.subject.native.get("common_name", ""))
    return StatusManifest(as_of, {str(k): str(v) for k, v in files.items()}, signer)


def as_of_lines(manifest: StatusManifest, max_age_days: float, now: datetime | None = None) -> list[str]:
    """What the CLI prints about the bundle's status time: the time, and a warning when it is too old."""
    age = manifest.age(now)
    days = age.total_seconds() / 86400
    lines = [
        f"Trạng thái tính đến / status as of: {manifest.as_of.isoformat()} "
        f"({days:.1f} ngày trước / days ago, ký bởi / signed by {manifest.signer})"
    ]
    if days > max_age_days:
        lines.append(
            f"CẢNH BÁO / WARNING: dữ liệu trạng thái đã cũ hơn {max_age_days:g} ngày; văn bản có thể đã bị thu hồi "
            f"sau thời điểm đó. Lấy gói tin cậy mới (sealtrail export-trust). / The status data is older than "
            f"{max_age_days:g} days; the document may have been revoked since. Get a fresh trust bundle."
        )
    return lines


def status_lines_for(bundle_dir: Path, max_age_days: float, now: datetime | None = None) -> list[str]:
    """The CLI's lines about a bundle's status time; a bundle without a trustworthy manifest says so."""
    try:
        return as_of_lines(open_manifest(bundle_dir), max_age_days, now)
    except (StatusManifestError, ValueError, OSError) as exc:
        return [
            f"CẢNH BÁO / WARNING: gói tin cậy không có thời điểm trạng thái được ký; không biết trạng thái văn bản. "
            f"/ The trust bundle carries no signed status time; the document's status is unknown. ({exc})"
        ]
