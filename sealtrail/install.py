"""Setting up and checking a production installation: `sealtrail init`, and what `serve` needs before it starts.

A province's (Sở's) verification-only instance runs from SEALTRAIL_MODE=production, SEALTRAIL_DATA_DIR,
SEALTRAIL_TRUST_DIR (and/or SEALTRAIL_TRUST_NATIONAL), SEALTRAIL_TIMESTAMP_URLS, SEALTRAIL_LOG_ORIGIN and
SEALTRAIL_PUBLIC_BASE_URL after ``sealtrail init`` has made its log key and QR-seal key. Signing keys come later
(SEALTRAIL_KEY_BACKEND=pkcs11); until then /readyz lists what issuing still lacks.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from sealtrail.deployment import Deployment
from sealtrail.settings import Settings

LOG_KEY = "log.key.pem"
QR_KEY = "qrseal.key.pem"


def production_problems(settings: Settings) -> list[str]:
    """What a production `serve` lacks, each naming the setting to add (empty: it may start)."""
    if settings.mode != "production":
        return []
    problems = []
    if settings.trust_dir is None and not settings.trust_national:
        problems.append(
            "Thiếu danh sách tin cậy: đặt SEALTRAIL_TRUST_DIR (và/hoặc SEALTRAIL_TRUST_NATIONAL=true) / "
            "no trust list: set SEALTRAIL_TRUST_DIR (and/or SEALTRAIL_TRUST_NATIONAL=true)"
        )
    elif settings.trust_dir is not None and not settings.trust_dir.is_dir():
        problems.append(
            f"SEALTRAIL_TRUST_DIR={settings.trust_dir} không phải thư mục / is not a folder (sealtrail trust import)"
        )
    if not settings.timestamp_urls:
        problems.append(
            "Thiếu dịch vụ cấp dấu thời gian: đặt SEALTRAIL_TIMESTAMP_URLS / "
            'no timestamp authority: set SEALTRAIL_TIMESTAMP_URLS (JSON list, e.g. ["https://tsa.example.vn"])'
        )
    if "log_origin" not in settings.model_fields_set:
        problems.append(
            "Thiếu tên sổ cái công khai: đặt SEALTRAIL_LOG_ORIGIN (vd. xacthuc.sogd.example.vn/log) / "
            "no log origin: set SEALTRAIL_LOG_ORIGIN (e.g. verify.so-gd.example.vn/log)"
        )
    if "public_base_url" not in settings.model_fields_set:
        problems.append(
            "Thiếu địa chỉ xác thực công khai: đặt SEALTRAIL_PUBLIC_BASE_URL / "
            "no public verification address: set SEALTRAIL_PUBLIC_BASE_URL (e.g. https://verify.so-gd.example.vn)"
        )
    keys = settings.pki_dir / "keys"
    qr_in_hsm = settings.key_backend == "pkcs11"  # made on the token by `sealtrail init`
    if not (keys / LOG_KEY).exists() or not (qr_in_hsm or (keys / QR_KEY).exists()):
        problems.append(
            "Chưa khởi tạo khoá sổ cái và khoá mã QR: chạy `sealtrail init` / the log and QR-seal keys are missing: "
            "run `sealtrail init` (or restore them from the key backup)"
        )
    return problems


def issuing_missing(dep: Deployment) -> list[str]:
    """What a production instance still lacks to issue documents (empty when it has signing keys configured)."""
    s = dep.settings
    if s.mode != "production" or s.key_backend == "pkcs11":
        return []
    return [
        "Chưa có khoá ký trong HSM/USB token: đặt SEALTRAIL_KEY_BACKEND=pkcs11, SEALTRAIL_PKCS11_TOKEN_LABEL, "
        "SEALTRAIL_PKCS11_PIN_FILE, SEALTRAIL_PKCS11_KEYS / no signing keys yet: set SEALTRAIL_KEY_BACKEND=pkcs11 "
        "with the token, PIN file and key labels (sealtrail hsm keygen / csr / import-cert)"
    ]


@dataclass(frozen=True)
class MadeKey:
    name: str
    path: Path
    fingerprint: str  # SHA-256 of the public key (SubjectPublicKeyInfo DER)
    created: bool


def _spki_sha256(public: object) -> str:
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]
    return hashlib.sha256(der).hexdigest().upper()


def _make_key_file(path: Path, key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bool:
    """Write a new private key with mode 0600; an existing file is never overwritten (False then)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return True


def init_installation(dep: Deployment) -> list[MadeKey]:
    """Create the installation's log key (Ed25519, C2SP signed notes) and QR-seal key (ECDSA P-256, COSE ES256).

    Development: the dev PKI makes them with everything else. Production: new keys under the data directory's
    pki/keys (mode 0600), never overwriting one that exists. The database is migrated."""
    dep.engine  # noqa: B018 - creates and migrates the database
    keys = dep.settings.pki_dir / "keys"
    if dep.settings.mode == "development":
        dep.dev_pki  # noqa: B018 - makes the dev PKI with its log and QR keys
    made = []
    s = dep.settings
    hsm_qr = s.mode == "production" and s.key_backend == "pkcs11" and not (keys / QR_KEY).exists()
    makers: list[tuple[str, object]] = [(LOG_KEY, ed25519.Ed25519PrivateKey.generate)]
    if not hsm_qr:
        makers.append((QR_KEY, lambda: ec.generate_private_key(ec.SECP256R1())))
    for name, maker in makers:
        path = keys / name
        created = _make_key_file(path, maker())  # type: ignore[operator]
        key = serialization.load_pem_private_key(path.read_bytes(), None)
        made.append(MadeKey(name, path, _spki_sha256(key.public_key()), created))
    if hsm_qr:
        made.append(_qr_key_in_hsm(dep))
    return made


def _qr_key_in_hsm(dep: Deployment) -> MadeKey:
    """The QR-seal key (ECDSA P-256, non-extractable) on the configured token, with a self-signed certificate beside
    it (the SHA-256 of its public key is what gets published); an existing key of that label is kept."""
    from hsm_adapters.base import KeyBackendError
    from hsm_adapters.pkcs11 import Pkcs11KeyBackend, generate_key, import_certificates, self_signed_certificate

    s = dep.settings
    config = dep.pkcs11_config(s.pkcs11_qr_key_label)
    where = f"hsm:{s.pkcs11_token_label or s.pkcs11_token_serial}/{s.pkcs11_qr_key_label}"
    try:
        existing: Pkcs11KeyBackend | None = Pkcs11KeyBackend(config)
    except KeyBackendError as exc:
        if "PIN" in str(exc):
            raise  # never guess on: a wrong PIN is reported, not retried
        existing = None
    if existing is not None:
        public = existing.certificate.public_key
        existing.close()
        created = False
    else:
        public = generate_key(config, key_type="ec")
        subject = {"country_name": "VN", "common_name": "SealTrail QR seal"}
        import_certificates(config, [self_signed_certificate(config, public, subject)])
        created = True
    return MadeKey(QR_KEY, Path(where), hashlib.sha256(public.dump()).hexdigest().upper(), created)
