"""Builds SealTrail's working parts (database, keys, signers, ledger, verifier) from Settings, once."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from asn1crypto import pem, x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Engine

from hsm_adapters.base import KeyBackend, KeyBackendError
from hsm_adapters.pkcs11 import Pkcs11Config, Pkcs11KeyBackend
from hsm_adapters.soft import SoftKeyBackend
from sealtrail.db import make_engine, migrate
from sealtrail.devpki import SIGNER_ROLES, DevPki, PkiServices, create_dev_pki, dev_revocation, port_is_open
from sealtrail.settings import Settings
from signer.metrics import TimedKey
from signer.storage import Blobs, BlobStore, S3BlobStore
from verifier.pdf import PdfVerifier
from verifier.revocation import CRL_DIR, LocalRevocation, read_crls
from verifier.xml import XmlVerifier


class DeploymentError(Exception):
    """The installation is not set up the way this command needs; the message says what to do."""


def load_pem_certs(path: Path) -> list[x509.Certificate]:
    data = path.read_bytes()
    if pem.detect(data):
        return [x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True)]
    return [x509.Certificate.load(data)]


class Deployment:
    """One SealTrail installation: its data directory, database and keys."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def engine(self) -> Engine:
        url = self.settings.effective_database_url
        migrate(url)
        return make_engine(url)

    @property
    def dev_pki(self) -> DevPki:
        if self.settings.mode == "production":
            raise DeploymentError("The development PKI is not available in production mode.")
        return create_dev_pki(self.settings.pki_dir, self.settings.dev_pki_url)

    def start_dev_pki_services(self) -> PkiServices | None:
        """Serve the dev PKI's OCSP/CRL/TSA unless this same PKI is already served on its port (by `serve`).

        A port taken by anything else (another program, another data directory's PKI) is an error: signing
        against someone else's responders would fail later with a far less clear message."""
        url = urlparse(self.settings.dev_pki_url)
        host, port = url.hostname or "127.0.0.1", url.port or 80
        if port_is_open(host, port):
            if self._serves_this_pki():
                return None
            raise DeploymentError(
                f"Port {port} ({self.settings.dev_pki_url}) is used by another program, not by this installation's "
                "development PKI. Stop that program or set SEALTRAIL_DEV_PKI_URL to a free port "
                "(for a new data directory)."
            )
        return PkiServices(self.dev_pki, host=host, port=port).start()

    def _serves_this_pki(self) -> bool:
        """True when the root CRL served on the dev PKI's port is signed by this installation's root."""
        import httpx
        from cryptography import x509 as cx509

        pki = self.dev_pki
        try:
            response = httpx.get(f"{pki.service_prefix}crls/root/latest.crl", timeout=3)
            crl = cx509.load_der_x509_crl(response.content)
            root = cx509.load_der_x509_certificate(pki.root.dump())
            return response.status_code == 200 and crl.is_signature_valid(root.public_key())  # type: ignore[arg-type]
        except (httpx.HTTPError, ValueError, TypeError):
            return False

    @property
    def timestamp_urls(self) -> list[str]:
        if self.settings.timestamp_urls:
            return list(self.settings.timestamp_urls)
        if self.settings.mode == "production":
            raise DeploymentError("Set SEALTRAIL_TIMESTAMP_URLS to the timestamp authorities to use.")
        return [self.dev_pki.tsa_url]

    @cached_property
    def trust_roots(self) -> list[x509.Certificate]:
        return [self.dev_pki.root]

    @cached_property
    def intermediates(self) -> list[x509.Certificate]:
        return [self.dev_pki.issuing_ca]

    def pkcs11_config(self, key_label: str) -> Pkcs11Config:
        s = self.settings
        if s.pkcs11_pin_file is None:
            raise DeploymentError("Set SEALTRAIL_PKCS11_PIN_FILE to the file holding the token's PIN.")
        if not (s.pkcs11_token_label or s.pkcs11_token_serial):
            raise DeploymentError("Set SEALTRAIL_PKCS11_TOKEN_LABEL (or SEALTRAIL_PKCS11_TOKEN_SERIAL).")
        return Pkcs11Config(
            module=s.pkcs11_module,
            pin_file=s.pkcs11_pin_file,
            token_label=s.pkcs11_token_label,
            token_serial=s.pkcs11_token_serial,
            key_label=key_label,
            pool_size=s.pkcs11_pool_size,
        )

    @cached_property
    def signing_keys(self) -> dict[str, KeyBackend]:
        if self.settings.key_backend == "pkcs11":
            missing = [role for role in SIGNER_ROLES if role not in self.settings.pkcs11_keys]
            if missing:
                raise DeploymentError(f"SEALTRAIL_PKCS11_KEYS names no key for: {', '.join(missing)}")
            return {
                role: TimedKey(Pkcs11KeyBackend(self.pkcs11_config(self.settings.pkcs11_keys[role])), role)
                for role in SIGNER_ROLES
            }
        if self.settings.mode == "production":
            raise KeyBackendError(
                "Production signing keys must live in an HSM or on a token: set SEALTRAIL_KEY_BACKEND=pkcs11."
            )
        pki = self.dev_pki
        return {
            role: TimedKey(SoftKeyBackend.from_pkcs12(pki.p12_path(role), mode=self.settings.mode), role)
            for role in SIGNER_ROLES
        }

    @cached_property
    def qr_private_key(self) -> object:
        return self._key_file("qrseal.key.pem")

    @cached_property
    def log_private_key(self) -> object:
        return self._key_file("log.key.pem")

    @cached_property
    def lookup_key(self) -> bytes:
        """The installation secret for the bulk look-up hashes (32 random bytes, made on first use, mode 0600).

        Back it up with the other keys: without it the look-up columns cannot be matched (``sealtrail re-index``
        rebuilds them from the stored documents with a new one)."""
        import secrets

        path = self.settings.pki_dir / "keys" / "lookup-hmac.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_bytes(secrets.token_bytes(32))
        key = path.read_bytes()
        if len(key) < 32:
            raise DeploymentError(f"The look-up secret {path} is damaged; restore it from the key backup.")
        return key

    def _key_file(self, name: str) -> object:
        path = self.settings.pki_dir / "keys" / name
        if self.settings.mode == "development":
            self.dev_pki  # noqa: B018 - creates the development keys on first use
        try:
            return serialization.load_pem_private_key(path.read_bytes(), None)
        except FileNotFoundError as exc:
            raise DeploymentError(f"The key file {path} is missing; restore it from the key backup.") from exc

    @cached_property
    def blobs(self) -> Blobs:
        """Issued files: under the data directory, or in the S3-compatible bucket SEALTRAIL_STORAGE_URL names."""
        s = self.settings
        if not s.storage_url:
            return BlobStore(s.documents_dir)
        if not s.storage_url.startswith("s3://"):
            raise DeploymentError(f"SEALTRAIL_STORAGE_URL must be s3://bucket/prefix, not {s.storage_url!r}")
        secret = s.s3_secret_access_key.get_secret_value() if s.s3_secret_access_key else None
        return S3BlobStore.from_url(
            s.storage_url,
            endpoint_url=s.s3_endpoint_url,
            region=s.s3_region,
            access_key_id=s.s3_access_key_id,
            secret_access_key=secret,
        )

    @cached_property
    def pdf_verifier(self) -> PdfVerifier:
        verifier = PdfVerifier(self.trust_roots, self.intermediates)
        verifier.local_revocation = self.local_revocation
        return verifier

    @cached_property
    def xml_verifier(self) -> XmlVerifier:
        verifier = XmlVerifier(self.trust_roots, self.intermediates)
        verifier.local_revocation = self.local_revocation
        return verifier

    @cached_property
    def local_revocation(self) -> LocalRevocation:
        """The revocation data this installation knows besides each document's own (verifier.revocation): the
        CRLs an operator puts in ``<data dir>/revocation/``, and outside production the dev PKI's current CRLs and
        OCSP answers for its signers (made locally, never fetched). Re-made every 10 minutes."""

        def load() -> tuple[list[Any], list[Any]]:
            crls, ocsps = read_crls(self.settings.resolved_data_dir / CRL_DIR), []
            if self.settings.mode != "production":
                dev_crls, ocsps = dev_revocation(self.dev_pki)
                crls += dev_crls
            return crls, ocsps

        return LocalRevocation(load)

    @property
    def verify_hosts(self) -> list[str]:
        return self.settings.registered_verify_hosts or [urlparse(self.settings.public_base_url).netloc]
