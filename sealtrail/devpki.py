"""A development PKI shaped like Vietnam's: a root (standing in for NEAC), an issuing CA (standing in for VGCA),
certificates for a homeroom teacher, a principal and the school's seal, a timestamp authority and an OCSP
responder, all served over real HTTP on loopback by certomancer's Animator.

Every name in it says DEV: these keys are generated on this machine, stored unencrypted under the data
directory, and must never sign a real document.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import yaml
from asn1crypto import algos, keys, x509
from certomancer import crypto_utils
from certomancer.integrations.animator import Animator, AnimatorArchStore
from certomancer.registry import CertomancerConfig, PKIArchitecture
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

ARCH = "sealtrail-dev"
SIGNER_ROLES = ("homeroom_teacher", "principal", "seal")
# Signers that exist only so tests can show what a verifier says about a bad certificate: one revoked (key
# compromise, an hour after the PKI was set up) and one that had already expired when the PKI was created.
TEST_SIGNERS = ("revoked_signer", "expired_signer")
DEV_MARK = "DEV"
# Every dev certificate also says so in its organisational unit. (Kept out of the common name: RFC 5280 bounds
# a CN at 64 characters and some checkers count UTF-8 bytes, which Vietnamese diacritics multiply.)
DEV_UNIT = "KHÔNG DÙNG THẬT - chỉ để thử nghiệm"
_RSA_KEYS = ("root", "issuing", "ocsp", "tsa", *SIGNER_ROLES, *TEST_SIGNERS)

_ENTITIES = {
    "root": {
        "common-name": f"SealTrail Root CA (mô phỏng NEAC) {DEV_MARK}",
        "organization-name": "SealTrail DEV",
        "organizational-unit-name": DEV_UNIT,
    },
    "issuing": {
        "common-name": f"SealTrail Issuing CA (mô phỏng VGCA) {DEV_MARK}",
        "organization-name": "SealTrail DEV",
        "organizational-unit-name": DEV_UNIT,
    },
    "ocsp": {
        "common-name": f"SealTrail OCSP {DEV_MARK}",
        "organization-name": "SealTrail DEV",
        "organizational-unit-name": DEV_UNIT,
    },
    "tsa": {
        "common-name": f"SealTrail TSA {DEV_MARK}",
        "organization-name": "SealTrail DEV",
        "organizational-unit-name": DEV_UNIT,
    },
    "homeroom_teacher": {
        "common-name": f"Phạm Thị Mai (Giáo viên chủ nhiệm) {DEV_MARK}",
        "organization-name": "Trường THCS Nguyễn Du (DEV)",
        "organizational-unit-name": DEV_UNIT,
    },
    "principal": {
        "common-name": f"Lê Văn Hùng (Hiệu trưởng) {DEV_MARK}",
        "organization-name": "Trường THCS Nguyễn Du (DEV)",
        "organizational-unit-name": DEV_UNIT,
    },
    "seal": {
        "common-name": f"Trường THCS Nguyễn Du {DEV_MARK}",
        "organization-name": "Trường THCS Nguyễn Du (DEV)",
        "organizational-unit-name": DEV_UNIT,
    },
    "revoked_signer": {
        "common-name": f"Chứng thư đã thu hồi (thử nghiệm) {DEV_MARK}",
        "organization-name": "Trường THCS Nguyễn Du (DEV)",
        "organizational-unit-name": DEV_UNIT,
    },
    "expired_signer": {
        "common-name": f"Chứng thư đã hết hạn (thử nghiệm) {DEV_MARK}",
        "organization-name": "Trường THCS Nguyễn Du (DEV)",
        "organizational-unit-name": DEV_UNIT,
    },
}


_FMT = "%Y-%m-%dT%H:%M:%S+0000"


def _validity(start: datetime, years: int) -> dict[str, str]:
    return {"valid-from": start.strftime(_FMT), "valid-to": (start + timedelta(days=365 * years)).strftime(_FMT)}


def _key_usage(*params: str) -> dict[str, object]:
    return {"id": "key_usage", "critical": True, "smart-value": {"schema": "key-usage", "params": list(params)}}


def _config(base_url: str, start: datetime) -> dict[str, object]:
    crl = {
        "id": "crl_distribution_points",
        "smart-value": {"schema": "crl-dist-url", "params": {"crl-repo-names": ["issuing"]}},
    }
    aia = {
        "id": "authority_information_access",
        "smart-value": {"schema": "aia-urls", "params": {"ocsp-responder-names": ["issuing"]}},
    }
    signer_cert = {
        "issuer": "issuing",
        "validity": _validity(start, 3),
        "extensions": [_key_usage("digital_signature", "non_repudiation"), crl, aia],
    }
    certs: dict[str, object] = {
        "root": {
            "subject": "root",
            "issuer": "root",
            "validity": _validity(start, 20),
            "extensions": [
                {"id": "basic_constraints", "critical": True, "value": {"ca": True}},
                _key_usage("digital_signature", "key_cert_sign", "crl_sign"),
            ],
        },
        "issuing": {
            "issuer": "root",
            "validity": _validity(start, 10),
            "extensions": [
                {"id": "basic_constraints", "critical": True, "value": {"ca": True, "path-len-constraint": 0}},
                _key_usage("digital_signature", "key_cert_sign", "crl_sign"),
                {
                    "id": "crl_distribution_points",
                    "smart-value": {"schema": "crl-dist-url", "params": {"crl-repo-names": ["root"]}},
                },
            ],
        },
        "ocsp": {
            "issuer": "issuing",
            "validity": _validity(start, 3),
            "extensions": [
                _key_usage("digital_signature"),
                {"id": "extended_key_usage", "critical": True, "value": ["ocsp_signing"]},
                {"id": "ocsp_no_check"},
            ],
        },
        "tsa": {
            "issuer": "root",
            "validity": _validity(start, 10),
            "extensions": [
                _key_usage("digital_signature"),
                {"id": "extended_key_usage", "critical": True, "value": ["time_stamping"]},
                {
                    "id": "crl_distribution_points",
                    "smart-value": {"schema": "crl-dist-url", "params": {"crl-repo-names": ["root"]}},
                },
            ],
        },
        **{role: dict(signer_cert, subject=role) for role in SIGNER_ROLES},
        "revoked_signer": dict(
            signer_cert,
            subject="revoked_signer",
            revocation={"revoked-since": (start + timedelta(hours=1)).strftime(_FMT), "reason": "key_compromise"},
        ),
        "expired_signer": dict(
            signer_cert,
            subject="expired_signer",
            validity={"valid-from": start.strftime(_FMT), "valid-to": (start + timedelta(hours=12)).strftime(_FMT)},
        ),
    }
    return {
        "external-url-prefix": base_url.rstrip("/"),
        "keysets": {"dev": {"path-prefix": "keys", "keys": {name: {"path": f"{name}.key.pem"} for name in _RSA_KEYS}}},
        "pki-architectures": {
            ARCH: {
                "keyset": "dev",
                "entity-defaults": {"country-name": "VN"},
                "entities": _ENTITIES,
                "certs": certs,
                "services": {
                    "ocsp": {"issuing": {"for-issuer": "issuing", "responder-cert": "ocsp", "signing-key": "ocsp"}},
                    "crl-repo": {
                        "root": {"for-issuer": "root", "signing-key": "root", "simulated-update-schedule": "P90D"},
                        "issuing": {
                            "for-issuer": "issuing",
                            "signing-key": "issuing",
                            "simulated-update-schedule": "P7D",
                        },
                    },
                    "time-stamping": {"tsa": {"signing-key": "tsa", "signing-cert": "tsa"}},
                },
            }
        },
    }


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_bytes(data)


@dataclass
class DevPki:
    """A development PKI on disk under ``directory``; certificates are rebuilt deterministically on load."""

    directory: Path

    @property
    def config_path(self) -> Path:
        return self.directory / "certomancer.yml"

    @cached_property
    def _config(self) -> CertomancerConfig:
        return CertomancerConfig.from_file(str(self.config_path), key_search_dir=str(self.directory))

    @property
    def arch(self) -> PKIArchitecture:
        return self._config.pki_archs[ARCH]  # type: ignore[index]

    @property
    def base_url(self) -> str:
        return str(self._config.external_url_prefix)

    def cert(self, label: str) -> x509.Certificate:
        return self.arch.get_cert(label)  # type: ignore[arg-type]

    @property
    def root(self) -> x509.Certificate:
        return self.cert("root")

    @property
    def issuing_ca(self) -> x509.Certificate:
        return self.cert("issuing")

    @property
    def tsa_url(self) -> str:
        return f"{self.base_url}/{ARCH}/tsa/tsa"

    @property
    def service_prefix(self) -> str:
        """URLs under this prefix are the only ones fetched for revocation data (an allow-list)."""
        return f"{self.base_url}/{ARCH}/"

    def p12_path(self, role: str) -> Path:
        return self.directory / "signers" / f"{role}.p12"

    def animator(self) -> Animator:
        return Animator(AnimatorArchStore(self._config.pki_archs), with_web_ui=False, allow_time_override=False)


def create_dev_pki(directory: Path, base_url: str, *, now: datetime | None = None) -> DevPki:
    """Create the dev PKI under ``directory`` if it is not there yet; return it either way."""
    pki = DevPki(directory)
    if pki.config_path.exists():
        return pki
    start = (now or datetime.now(UTC)).replace(microsecond=0) - timedelta(days=1)
    generated: dict[str, rsa.RSAPrivateKey] = {}
    for name in _RSA_KEYS:
        key = generated[name] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_private(directory / "keys" / f"{name}.key.pem", pem)
    directory.mkdir(parents=True, exist_ok=True)
    pki.config_path.write_text(
        "# SealTrail development PKI. DEV ONLY: never use these keys for real documents.\n"
        + yaml.safe_dump(_config(base_url, start), allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    for role in (*SIGNER_ROLES, *TEST_SIGNERS):
        _write_private(pki.p12_path(role), _pkcs12(pki, role, generated[role]))
    _write_private(
        directory / "keys" / "qrseal.key.pem",
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    _write_private(
        directory / "keys" / "log.key.pem",
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    return pki


def _pkcs12(pki: DevPki, role: str, key: rsa.RSAPrivateKey) -> bytes:
    """The signer's key, certificate and chain as an unencrypted PKCS#12 file (what certomancer's package_pkcs12
    builds, from the key object just generated instead of parsing the key file again)."""
    spec = pki.arch.get_cert_spec(role)  # type: ignore[arg-type]
    if str(spec.subject_key) != role:
        raise ValueError(f"the dev PKI's {role} certificate is not for the {role} key")
    cert = cx509.load_der_x509_certificate(pki.cert(role).dump())
    chain = [cx509.load_der_x509_certificate(pki.cert(label).dump()) for label in pki.arch.get_chain(role)]  # type: ignore[arg-type]
    return pkcs12.serialize_key_and_certificates(None, key, cert, chain, serialization.NoEncryption())


class _DevPkiCrypto(crypto_utils.PycaCryptographyBackend):
    """certomancer's pyca/cryptography backend: a signing key is parsed once per process, not per signature.

    Stock certomancer parses the private key again for every certificate, OCSP response, CRL and timestamp it
    signs, and parses every key twice when it loads a PKI. cryptography checks an RSA key's consistency on every
    parse (~40 ms for RSA-2048 here), which made key parsing a quarter of the CPU of a test module issuing
    documents against the dev PKI (docs/performance.md). The keys are the ones :func:`create_dev_pki` generated
    itself, so that check is skipped when they are loaded, and the keys parsed for signing are kept by their DER.
    """

    def load_private_key(
        self, key_bytes: bytes, password: bytes | None
    ) -> tuple[keys.PrivateKeyInfo, keys.PublicKeyInfo]:
        if password is None and key_bytes.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(key_bytes, None, unsafe_skip_rsa_key_validation=True)
        elif password is None:
            key = serialization.load_der_private_key(key_bytes, None, unsafe_skip_rsa_key_validation=True)
        else:
            return super().load_private_key(key_bytes, password)
        der = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return keys.PrivateKeyInfo.load(der), keys.PublicKeyInfo.load(public)

    def generic_sign(
        self, private_key: keys.PrivateKeyInfo, tbs_bytes: bytes, sd_algo: algos.SignedDigestAlgorithm
    ) -> bytes:
        if sd_algo.signature_algo != "rsassa_pkcs1v15":
            return super().generic_sign(private_key, tbs_bytes, sd_algo)
        key = _parsed_key(private_key.dump())
        assert isinstance(key, rsa.RSAPrivateKey)
        return key.sign(tbs_bytes, padding.PKCS1v15(), getattr(hashes, sd_algo.hash_algo.upper())())


@lru_cache(maxsize=256)
def _parsed_key(der: bytes) -> PrivateKeyTypes:
    return serialization.load_der_private_key(der, None, unsafe_skip_rsa_key_validation=True)


crypto_utils.CRYPTO_BACKEND = _DevPkiCrypto()


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: object, **kwargs: object) -> None:
        """Requests are routine; errors still reach the log."""


class PkiServices:
    """The dev PKI's OCSP responder, CRLs and timestamp authority, served over HTTP on loopback in a thread."""

    def __init__(self, pki: DevPki, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server: BaseWSGIServer = make_server(
            host, port, pki.animator(), threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="dev-pki", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def start(self) -> PkiServices:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> PkiServices:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def port_is_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def dev_revocation(pki: DevPki, at: datetime | None = None) -> tuple[list[Any], list[Any]]:
    """What the dev PKI says about its certificates right now, made locally (nothing served or fetched): the
    root's and issuing CA's CRLs, and an OCSP answer for every signer certificate (a CRL lists a revocation
    only from its next period, so the revoked test signer shows in the OCSP answer)."""
    from asn1crypto import ocsp as aocsp
    from cryptography.x509 import ocsp as cocsp

    now = (at or datetime.now(UTC)).replace(microsecond=0)
    registry = pki.arch.service_registry
    crls = [registry.get_crl(label, at_time=now) for label in ("issuing", "root")]  # type: ignore[arg-type]
    responder = registry.summon_responder("issuing", at_time=now)  # type: ignore[arg-type]
    issuer = cx509.load_der_x509_certificate(pki.issuing_ca.dump())
    answers = []
    for label in (*SIGNER_ROLES, *TEST_SIGNERS):
        cert = cx509.load_der_x509_certificate(pki.cert(label).dump())
        request = cocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
        der = request.public_bytes(serialization.Encoding.DER)
        answers.append(responder.build_ocsp_response(aocsp.OCSPRequest.load(der)))
    return crls, answers
