"""The one composition root: builds SealTrail's working parts (database, keys, the issuer, the ledger, the
verifiers, the trust list) from Settings, once.

Domain packages never import this module: they receive a Deployment (or the part they need) and describe what they
use of it as a small Protocol of their own (``signer.host``, ``verifier.host``, ``accounts.apikeys``,
``workflow.audit``).

In development the keys, the trust anchors and the timestamp authority come from the dev PKI (``sealtrail.devpki``).
In production the keys come from the HSM (PKCS#11) and the timestamp authorities from the settings, and the dev PKI
is refused; trust anchors from settings (``SEALTRAIL_TRUST_DIR`` in the design) are not built yet.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from asn1crypto import pem, x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from sqlalchemy import Engine

from errors import PermanentError
from hsm_adapters.base import KeyBackend, KeyBackendError
from hsm_adapters.pkcs11 import Pkcs11Config, Pkcs11KeyBackend
from hsm_adapters.soft import SoftKeyBackend
from ledger.store import Ledger
from registry.records import DocumentRecord
from schemas.qrseal import PublicKey as QrPublicKey
from sealtrail.db import make_engine, migrate
from sealtrail.devpki import SIGNER_ROLES, DevPki, PkiServices, create_dev_pki, dev_revocation, port_is_open
from sealtrail.settings import Settings
from signer.issue import Issuer
from signer.metrics import TimedKey
from signer.pdf import PadesSigner
from signer.render import Renderer
from signer.storage import Blobs, BlobStore, S3BlobStore
from verifier.pdf import PdfVerifier
from verifier.policy import SignerRegistry
from verifier.revocation import CRL_DIR, LocalRevocation, read_crls
from verifier.trustlist import TrustList, build_trust_list
from verifier.xml import XmlVerifier


class DeploymentError(PermanentError):
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
        self._signing_keys: dict[str, KeyBackend] | None = None
        self._signing_keys_failure: tuple[int | None, KeyBackendError] | None = None
        self._chain_checks: dict[bytes, tuple[float, str | None]] = {}
        self._issuer_keys: dict[str, KeyBackend] = {}
        self._issuer_key_failures: dict[str, tuple[int | None, KeyBackendError]] = {}

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
    def trust_list(self) -> TrustList:
        """The one trust list every checker reads (verifier/trustlist.py): SEALTRAIL_TRUST_DIR, the shipped national
        list when SEALTRAIL_TRUST_NATIONAL is set, and in development the dev PKI's root and issuing CA."""
        s = self.settings
        dev = self.dev_pki if s.mode == "development" else None
        return build_trust_list(
            dev_roots=[dev.root] if dev else [],
            dev_intermediates=[dev.issuing_ca] if dev else [],
            national=s.trust_national,
            directory=s.trust_dir,
        )

    @property
    def trust_roots(self) -> list[x509.Certificate]:
        roots = self.trust_list.roots
        if not roots:
            raise DeploymentError(
                "Chưa có danh sách tin cậy: đặt SEALTRAIL_TRUST_DIR (thư mục chứng thư gốc) hoặc "
                "SEALTRAIL_TRUST_NATIONAL=true / no trust list: set SEALTRAIL_TRUST_DIR to a folder of trusted root "
                "certificates or SEALTRAIL_TRUST_NATIONAL=true"
            )
        return roots

    @property
    def intermediates(self) -> list[x509.Certificate]:
        return self.trust_list.intermediates

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

    @property
    def signing_keys(self) -> dict[str, KeyBackend]:
        """The signing keys, built once. A permanent failure (a wrong or locked PIN) is remembered and raised again
        without logging in again until the PIN file changes: a token locks after a few wrong PINs, and /readyz asks
        every few seconds."""
        if self._signing_keys is not None:
            return self._signing_keys
        stamp = self._pin_stamp()
        if self._signing_keys_failure is not None and self._signing_keys_failure[0] == stamp:
            raise self._signing_keys_failure[1]
        try:
            self._signing_keys = self._make_signing_keys()
        except KeyBackendError as exc:
            if not exc.transient:  # wrong or locked PIN, missing key: permanent (errors.SealTrailError)
                self._signing_keys_failure = (stamp, exc)
            raise
        return self._signing_keys

    def _pin_stamp(self) -> int | None:
        pin_file = self.settings.pkcs11_pin_file
        return pin_file.stat().st_mtime_ns if pin_file is not None and pin_file.exists() else None

    def _make_signing_keys(self) -> dict[str, KeyBackend]:
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
        """The QR-seal key: in production with an HSM (and no key file), the token's key
        ``SEALTRAIL_PKCS11_QR_KEY_LABEL`` made by `sealtrail init`; otherwise the key file."""
        s = self.settings
        if (
            s.mode == "production"
            and s.key_backend == "pkcs11"
            and not (s.pki_dir / "keys" / "qrseal.key.pem").exists()
        ):
            return Pkcs11KeyBackend(self.pkcs11_config(s.pkcs11_qr_key_label))
        return self._key_file("qrseal.key.pem")

    @property
    def qr_public_key(self) -> QrPublicKey:
        """The QR-seal key's public half (a cryptography public key), wherever the private key lives."""
        key = self.qr_private_key
        if isinstance(key, Pkcs11KeyBackend):
            public = serialization.load_der_public_key(key.certificate.public_key.dump())
        else:
            public = key.public_key()  # type: ignore[attr-defined]
        if not isinstance(public, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
            raise DeploymentError("The QR-seal key must be ECDSA P-256 or Ed25519")
        return public

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
        verifier.signer_registry = self.signer_registry
        return verifier

    @cached_property
    def xml_verifier(self) -> XmlVerifier:
        verifier = XmlVerifier(self.trust_roots, self.intermediates)
        verifier.local_revocation = self.local_revocation
        verifier.signer_registry = self.signer_registry
        return verifier

    @cached_property
    def local_revocation(self) -> LocalRevocation:
        """The revocation data this installation knows besides each document's own (verifier.revocation): the
        CRLs an operator puts in ``<data dir>/revocation/``, and outside production the dev PKI's current CRLs and
        OCSP answers for its signers (made locally, never fetched). Re-made every 10 minutes."""

        def load() -> tuple[list[Any], list[Any]]:
            crls: list[Any] = list(read_crls(self.settings.resolved_data_dir / CRL_DIR))
            ocsps: list[Any] = []
            if self.settings.mode != "production":
                dev_crls, ocsps = dev_revocation(self.dev_pki)
                crls += dev_crls
            return crls, ocsps

        return LocalRevocation(load)

    @property
    def signer_registry(self) -> SignerRegistry:
        """Signatures bound to their issuer: the signing identities registered here (registry.identities)."""
        from registry.identities import identity_registry

        return identity_registry(self.engine)

    @property
    def verify_hosts(self) -> list[str]:
        return self.settings.registered_verify_hosts or [urlparse(self.settings.public_base_url).netloc]

    @cached_property
    def ledger(self) -> Ledger:
        """The public log, signed with this installation's log key."""
        from sealtrail.ledgerwiring import ledger_for

        return ledger_for(self)[0]

    @property
    def log_vkey(self) -> str:
        return self.ledger.verifier.vkey

    def keys_for_issuer(self, issuer_code: str | None) -> dict[str, KeyBackend]:
        """The issuer's own signing keys: its active identities whose key is in the HSM (``hsm:<token>/<key label>``
        or ``hsm:<key label>`` on SEALTRAIL_PKCS11_TOKEN_LABEL); the installation's keys for roles it has none for."""
        from dataclasses import replace

        from registry.identities import list_identities, utcnow

        if issuer_code is None:
            return self.signing_keys
        now = utcnow()
        own: dict[str, KeyBackend] = {}
        for row in list_identities(self.engine, issuer_code):
            if not row.key_location.startswith("hsm:") or row.retired_at is not None:
                continue
            if not (row.valid_from.replace(tzinfo=now.tzinfo) <= now < row.valid_until.replace(tzinfo=now.tzinfo)):
                continue
            token, _, label = row.key_location.removeprefix("hsm:").rpartition("/")
            cache_key = f"{row.key_location}#{row.cert_sha256}"
            if cache_key not in self._issuer_keys:
                config = replace(self.pkcs11_config(label), token_label=token or self.settings.pkcs11_token_label)
                stamp = self._pin_stamp()
                failed = self._issuer_key_failures.get(cache_key)
                if failed is not None and failed[0] == stamp:
                    raise failed[1]  # a wrong PIN is not offered to the token again until the PIN file changes
                try:
                    self._issuer_keys[cache_key] = TimedKey(Pkcs11KeyBackend(config), row.role)
                except KeyBackendError as exc:
                    if not exc.transient:
                        self._issuer_key_failures[cache_key] = (stamp, exc)
                    raise
            own[row.role] = self._issuer_keys[cache_key]
        if not own:
            return self.signing_keys
        if set(own) >= set(SIGNER_ROLES):
            return own
        try:  # roles the issuer has no key of its own for (a diploma has no homeroom teacher): the installation's
            installation = self.signing_keys
        except (KeyBackendError, DeploymentError):
            installation = {}
        return {**installation, **own}

    def make_issuer(self, issuer_code: str | None = None) -> Issuer:
        """A new Issuer (render, sign, store, log) for this installation, signing with ``issuer_code``'s own
        registered keys when it has them; one per thread (batch workers)."""
        urls = self.timestamp_urls
        return Issuer(
            engine=self.engine,
            renderer=Renderer(self.settings.template_dir),
            pades=PadesSigner(trust_roots=self.trust_roots, other_certs=self.intermediates, timestamp_urls=urls),
            keys=self.keys_for_issuer(issuer_code),
            qr_key=self.qr_private_key,
            ledger=self.ledger,
            blobs=self.blobs,
            verify_base_url=self.settings.public_base_url,
            timestamp_urls=urls,
            lookup_key=self.lookup_key,
            pending_dir=self.settings.resolved_data_dir / "pending",
            precheck=self.check_before_signing,
        )

    def check_before_signing(self, doc: object, signers: list[tuple[str, KeyBackend]]) -> None:
        """Refuse (SigningRefused, nothing signed) unless each signer's certificate is registered for its role at the
        document's issuer, names the organisation (seal) or the printed signer, is valid now, not revoked and chains
        to the trust list. In development an issuer with no registered identities is not checked (the demo)."""
        import time

        import schemas
        from registry.identities import list_identities, refusal_before_signing
        from signer.precheck import SigningRefused, chain_problem

        school = doc.school if isinstance(doc, schemas.Transcript) else doc.issuer  # type: ignore[attr-defined]
        if self.settings.mode != "production" and not list_identities(self.engine, school.code):
            return
        printed = {s.role: s.name for s in getattr(doc, "signatories", ()) if s.name}
        if getattr(doc, "signer_name", None):
            printed.setdefault("principal", doc.signer_name)  # type: ignore[attr-defined]
        for role, key in signers:
            cert = key.certificate
            reason = refusal_before_signing(
                self.engine,
                role=role,
                organisation=school.code,
                organisation_name=school.name,
                printed_signer=printed.get(role),
                certificate=cert,
            )
            if reason is None:
                cached = self._chain_checks.get(cert.sha256)
                if cached is None or time.monotonic() - cached[0] > 300:  # a good answer is kept for 5 minutes
                    cached = (time.monotonic(), chain_problem(cert, key.chain, self.trust_roots, self.intermediates))
                    if cached[1] is None:
                        self._chain_checks[cert.sha256] = cached
                reason = cached[1]
            if reason is not None:
                raise SigningRefused(f"Không ký / not signed: {reason}")

    def publish_checkpoint(self) -> bytes:
        """Sign a checkpoint of the log (witnessed when configured) and remember it outside the database."""
        from sealtrail.ledgerwiring import publish_checkpoint

        return publish_checkpoint(self)

    def prove_record(self, record: DocumentRecord) -> bool:
        """Prove the record's issue entry against the latest signed checkpoint; False when it cannot be."""
        from sealtrail.ledgerwiring import prove_record

        return prove_record(self, record)

    def signed_status_list(self, name: str) -> str | None:
        """The school-year status list ``name`` signed now with the seal key; None when the key is unreachable
        (then a credential's status is unknown, never valid)."""
        import logging

        from schemas.statuslist import StatusListError
        from signer.credentials import status_list_jwt

        try:
            return status_list_jwt(self, name)
        except (KeyBackendError, StatusListError) as exc:
            logging.getLogger(__name__).warning("status list %s could not be signed: %s", name, exc)
            return None

    def export_trust(self, directory: Path) -> None:
        """Write this installation's trust bundle for offline verifiers (``verifier.offline``): roots, QR seal
        keys, log key and checkpoint, hosts, the revocation data it knows, and every school-year status list signed
        now under a signed "status as of" manifest (signer.statusmanifest)."""
        from signer.credentials import write_status_lists
        from verifier.offline import write_trust_bundle

        with self.engine.connect() as conn:
            checkpoint = self.ledger.latest_checkpoint(conn)
        write_trust_bundle(
            directory,
            roots=self.trust_roots,
            intermediates=self.intermediates,
            qr_public_keys=[self.qr_public_key],
            hosts=self.verify_hosts,
            log_vkey=self.log_vkey,
            checkpoint=checkpoint,
        )
        from verifier.revocation import write_revocation

        write_revocation(directory / CRL_DIR, self.local_revocation.get())  # the signers' certificate status
        if self.settings.mode == "production" and self.settings.key_backend != "pkcs11":
            return  # a verification-only instance has no seal key to sign status lists with
        from signer.statusmanifest import write_status_manifest

        write_status_lists(self, directory)
        write_status_manifest(self, directory)  # last: signs the time and the hash of every status file above


def _default_for_jobs() -> Deployment:
    return Deployment(Settings())


def wire_jobs() -> None:
    """Batch tasks that run in a process that chose no deployment build one from the environment."""
    from jobs import batches

    if batches.default_deployment is None:
        batches.default_deployment = _default_for_jobs
