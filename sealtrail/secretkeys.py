"""Secrets derived from the installation secret (``DATA_DIR/pki/keys/lookup-hmac.key``, kept and backed up like
the other keys): one independent key per purpose, so no purpose's outputs help with another's."""

from __future__ import annotations

from accounts.service import derive_key
from sealtrail.deployment import Deployment


def derived_key(dep: Deployment, purpose: str) -> bytes:
    """32 bytes for ``purpose`` (e.g. "details-code", "audit-commitment"): HMAC-SHA256 of the installation secret."""
    return derive_key(dep.lookup_key, purpose)
