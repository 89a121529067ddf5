"""Settings from the environment (SEALTRAIL_*), with safe defaults for one school on one machine."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything SealTrail reads from its environment. All state lives under ``data_dir``."""

    model_config = SettingsConfigDict(env_prefix="SEALTRAIL_", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="Holds the SQLite file, keys and stored documents")
    database_url: str | None = Field(default=None, description="PostgreSQL URL; SQLite under data_dir if unset")
    mode: Literal["development", "production"] = "development"
    public_base_url: str = Field(
        default="http://127.0.0.1:8000", description="Base of the QR links (the verification host)"
    )
    template_dir: Path | None = Field(default=None, description="Per-province template overrides")
    dev_pki_url: str = Field(
        default="http://127.0.0.1:8790", description="Where the development PKI serves OCSP, CRLs and timestamps"
    )
    log_origin: str = Field(default="sealtrail.localhost/log", description="The public log's origin line")
    witnesses: list[str] = Field(
        default_factory=list, description='Witnesses to submit checkpoints to, each "<URL> <vkey>"'
    )
    witness_quorum: int = Field(default=0, ge=0, description="Cosignatures a checkpoint needs before it is published")
    checkpoint_interval: float = Field(default=30.0, gt=0, description="Seconds between checkpoints while serving")
    registered_verify_hosts: list[str] = Field(
        default_factory=list, description="Hosts allowed in QR links (defaults to public_base_url's host)"
    )

    key_backend: Literal["soft", "pkcs11"] = Field(
        default="soft", description="Where signing keys live: soft (dev PKCS#12 files) or pkcs11 (HSM or token)"
    )
    pkcs11_module: Path = Field(
        default=Path("/usr/lib/softhsm/libsofthsm2.so"), description="The HSM vendor's PKCS#11 library"
    )
    pkcs11_token_label: str | None = Field(default=None, description="Label of the token holding the keys")
    pkcs11_token_serial: str | None = Field(default=None, description="Serial of the token (instead of the label)")
    pkcs11_pin_file: Path | None = Field(default=None, description="File holding the token's user PIN (mode 0600)")
    pkcs11_keys: dict[str, str] = Field(
        default_factory=lambda: {"homeroom_teacher": "homeroom_teacher", "principal": "principal", "seal": "seal"},
        description='Key label for each signing role, as JSON: {"principal": "label", ...}',
    )
    pkcs11_qr_key_label: str = Field(
        default="sealtrail-qrseal",
        description="Label of the QR-seal key on the token (production with pkcs11: made there by sealtrail init)",
    )
    pkcs11_pool_size: int = Field(default=4, ge=1, le=64, description="Logged-in sessions kept per key")

    trust_dir: Path | None = Field(
        default=None,
        description="Folder of trusted roots and intermediates (PEM/DER/P7B): in production the whole trust list "
        "(with the national list if SEALTRAIL_TRUST_NATIONAL), in development added to the dev roots",
    )
    trust_national: bool = Field(
        default=False,
        description="Also trust Vietnam's national roots and issuing CAs shipped in verifier/trust/vietnam",
    )
    timestamp_urls: list[str] = Field(
        default_factory=list, description="RFC 3161 timestamp authorities, tried in order (default: the dev PKI's)"
    )
    storage_url: str | None = Field(
        default=None, description="s3://bucket/prefix to keep issued files in a bucket; data_dir/documents if unset"
    )
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint (MinIO, Ceph, a cloud's)")
    s3_region: str | None = Field(default=None, description="The bucket's region (us-east-1 if unset)")
    s3_access_key_id: str | None = Field(default=None, description="Access key; boto3's usual chain if unset")
    s3_secret_access_key: SecretStr | None = Field(default=None, description="Secret key (never logged)")

    log_format: Literal["json", "text"] = Field(
        default="json", description="Service logs: one JSON object per line, or plain text (personal data masked)"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Service log level")
    cert_expiry_warn_days: int = Field(
        default=30, ge=0, description="/readyz warns when a signing certificate expires within this many days"
    )
    readiness_timeout: float = Field(default=3.0, gt=0, description="Seconds each /readyz network probe may take")

    public_rate_per_minute: int = Field(default=120, ge=1, description="QR page requests per client per minute")
    verify_rate_per_minute: int = Field(default=30, ge=1, description="Upload checks per client per minute")
    job_max_attempts: int = Field(default=8, ge=1, description="Tries per batch document before it is marked failed")
    job_retry_wait: float = Field(default=2.0, ge=0, description="Seconds before the first retry (doubling after)")
    job_heartbeat: float = Field(default=10.0, gt=0, description="Seconds between a worker's heartbeats")
    job_stalled_after: float = Field(
        default=30.0, gt=0, description="Seconds without heartbeat after which a worker's jobs are re-queued"
    )
    session_cookie_secure: bool = Field(
        default=True, description="Sign-in cookies only over HTTPS (__Host- prefix); false only for plain-HTTP tests"
    )
    oidc_issuer: str | None = Field(
        default=None, description="OpenID Connect provider (its /.well-known/openid-configuration); SSO off if unset"
    )
    oidc_client_id: str | None = Field(default=None, description="This service's client id at the provider")
    oidc_client_secret_file: Path | None = Field(default=None, description="File holding the client secret (0600)")
    oidc_claim: Literal["sub", "email"] = Field(
        default="sub", description="How a provider identity finds its person: linked subject, or verified e-mail"
    )
    oidc_mfa_enforced: bool = Field(
        default=False, description="The provider enforces MFA itself: staff skip SealTrail's TOTP after SSO"
    )
    oidc_scopes: str = Field(default="openid email profile", description="Scopes asked of the provider")
    oidc_redirect_uri: str | None = Field(
        default=None, description="The callback URL registered at the provider (default: this host's /dang-nhap/sso/ve)"
    )
    oidc_timeout: float = Field(default=5.0, gt=0, description="Seconds each call to the provider may take")
    metrics_allow: list[str] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="Client addresses (CIDR) that may read /metrics without a key; others need a 'metrics' API key",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Reverse proxies (CIDR, JSON list) whose X-Forwarded-For is believed; none by default, never '*'",
    )
    readiness_cache_seconds: float = Field(
        default=15.0, ge=0, description="Seconds a /readyz OCSP or TSA probe's answer is reused (0: probe every call)"
    )
    verify_workers: int = Field(
        default=2, ge=1, le=64, description="Worker processes that check uploaded files (pre-started, isolated)"
    )
    verify_cpu_seconds: int = Field(default=10, ge=1, description="CPU seconds one uploaded file may take to check")
    verify_memory_mb: int = Field(default=512, ge=128, description="Memory (address space, MB) of a check worker")
    verify_wall_seconds: float = Field(
        default=20.0, gt=0, description="Seconds one upload check may take, waiting for a worker included"
    )
    public_proof_cache: bool = Field(
        default=True, description="Cache the QR page's log proofs per signed checkpoint (off: prove every request)"
    )

    @field_validator("trusted_proxies", "metrics_allow")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        import ipaddress

        for cidr in value:
            ipaddress.ip_network(cidr.strip(), strict=False)  # ValueError (a settings error) for '*' or a name
        return [c.strip() for c in value]

    @cached_property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_data_dir / 'sealtrail.db'}"

    @property
    def pki_dir(self) -> Path:
        return self.resolved_data_dir / "pki"

    @property
    def documents_dir(self) -> Path:
        return self.resolved_data_dir / "documents"
