"""Fixtures for deferred signing: a deployment on the session's dev PKI (whose teacher key is on the USB token)."""

from __future__ import annotations

from pathlib import Path

import pytest
from asn1crypto import pem

from sealtrail.deployment import Deployment
from sealtrail.devpki import DevPki
from sealtrail.settings import Settings


def make_deployment(data_dir: Path, dev_pki: DevPki, database_url: str | None = None) -> Deployment:
    """A deployment whose dev PKI is the session's one (same root, same responders, same token keys)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "pki").symlink_to(dev_pki.directory)
    return Deployment(Settings(data_dir=data_dir, dev_pki_url=dev_pki.base_url, database_url=database_url))


@pytest.fixture
def deployment(tmp_path: Path, dev_pki: DevPki) -> Deployment:
    return make_deployment(tmp_path / "data", dev_pki)


def cert_pem(dev_pki: DevPki, role: str) -> bytes:
    return pem.armor("CERTIFICATE", dev_pki.cert(role).dump())
