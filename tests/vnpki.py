"""A test PKI that is not the dev PKI, shaped like Vietnam's: a test national root → a "licensed CA" → seal
certificates for two schools and personal certificates for their principals and teachers, with the subject
attributes Vietnamese CAs put in (C, ST, L, O, OU, CN and UID ``MST:…`` / ``CCCD:…``), its own OCSP responder, CRLs
and timestamp authority, served over HTTP on loopback by certomancer's Animator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path

import yaml
from asn1crypto import x509
from certomancer.integrations.animator import Animator, AnimatorArchStore
from certomancer.registry import CertomancerConfig, PKIArchitecture
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ARCH = "vn-test"
FMT = "%Y-%m-%dT%H:%M:%S+0000"

SCHOOLS = {
    "A": {
        "code": "79000101",
        "name": "Trường THCS Lê Quý Đôn",
        "tax": "0301234567",
        "province": "Thành phố Hồ Chí Minh",
        "locality": "Quận 3",
        "principal": "Nguyễn Thị Hồng Nhung",
        "teacher": "Trần Minh Khoa",
    },
    "B": {
        "code": "79000202",
        "name": "Trường THCS Nguyễn Thị Minh Khai",
        "tax": "0307654321",
        "province": "Thành phố Hồ Chí Minh",
        "locality": "Quận 3",
        "principal": "Phạm Văn Đức",
        "teacher": "Lê Thị Thu Hà",
    },
}
SIGNERS = ("seal_a", "principal_a", "teacher_a", "seal_b", "principal_b", "teacher_b")
KEYS = ("root", "ca", "ocsp", "tsa", *SIGNERS)


def _entities() -> dict[str, dict[str, str]]:
    national = {"organization-name": "Test National Electronic Authentication Centre"}
    out: dict[str, dict[str, str]] = {
        "root": {**national, "common-name": "Test Vietnam National Root CA"},
        "ca": {"organization-name": "Test Licensed CA JSC", "common-name": "Test Licensed CA"},
        "ocsp": {"organization-name": "Test Licensed CA JSC", "common-name": "Test Licensed CA OCSP"},
        "tsa": {**national, "common-name": "Test National TSA"},
    }
    for letter, school in SCHOOLS.items():
        place = {"state-or-province-name": school["province"], "locality-name": school["locality"]}
        low = letter.lower()
        out[f"seal_{low}"] = {
            **place,
            "organization-name": school["name"],
            "organizational-unit-name": "Văn thư",
            "common-name": school["name"],
            "user-id": f"MST:{school['tax']}",
        }
        for role, cccd in (("principal", "079080001234"), ("teacher", "079090005678")):
            out[f"{role}_{low}"] = {
                **place,
                "organization-name": school["name"],
                "organizational-unit-name": "Ban Giám hiệu" if role == "principal" else "Tổ Toán",
                "common-name": school[role],
                "user-id": f"CCCD:{cccd[:-1]}{'1' if letter == 'A' else '2'}",
            }
    return out


def _config(base_url: str, start: datetime) -> dict[str, object]:
    def validity(days: int) -> dict[str, str]:
        return {"valid-from": start.strftime(FMT), "valid-to": (start + timedelta(days=days)).strftime(FMT)}

    def key_usage(*params: str) -> dict[str, object]:
        return {"id": "key_usage", "critical": True, "smart-value": {"schema": "key-usage", "params": list(params)}}

    def crl_of(repo: str) -> dict[str, object]:
        return {
            "id": "crl_distribution_points",
            "smart-value": {"schema": "crl-dist-url", "params": {"crl-repo-names": [repo]}},
        }

    crl, root_crl = crl_of("ca"), crl_of("root")
    aia = {
        "id": "authority_information_access",
        "smart-value": {"schema": "aia-urls", "params": {"ocsp-responder-names": ["ca"]}},
    }
    signer = {
        "issuer": "ca",
        "validity": validity(730),
        "extensions": [key_usage("digital_signature", "non_repudiation"), crl, aia],
    }
    certs: dict[str, object] = {
        "root": {
            "subject": "root",
            "issuer": "root",
            "validity": validity(7300),
            "extensions": [
                {"id": "basic_constraints", "critical": True, "value": {"ca": True}},
                key_usage("digital_signature", "key_cert_sign", "crl_sign"),
            ],
        },
        "ca": {
            "issuer": "root",
            "validity": validity(3650),
            "extensions": [
                {"id": "basic_constraints", "critical": True, "value": {"ca": True, "path-len-constraint": 0}},
                key_usage("digital_signature", "key_cert_sign", "crl_sign"),
                root_crl,
            ],
        },
        "ocsp": {
            "issuer": "ca",
            "validity": validity(730),
            "extensions": [
                key_usage("digital_signature"),
                {"id": "extended_key_usage", "critical": True, "value": ["ocsp_signing"]},
                {"id": "ocsp_no_check"},
            ],
        },
        "tsa": {
            "issuer": "root",
            "validity": validity(3650),
            "extensions": [
                key_usage("digital_signature"),
                {"id": "extended_key_usage", "critical": True, "value": ["time_stamping"]},
                root_crl,
            ],
        },
        **{name: dict(signer, subject=name) for name in SIGNERS},
    }
    return {
        "external-url-prefix": base_url.rstrip("/"),
        "keysets": {"vn": {"path-prefix": "keys", "keys": {name: {"path": f"{name}.key.pem"} for name in KEYS}}},
        "pki-architectures": {
            ARCH: {
                "keyset": "vn",
                "entity-defaults": {"country-name": "VN"},
                "entities": _entities(),
                "certs": certs,
                "services": {
                    "ocsp": {"ca": {"for-issuer": "ca", "responder-cert": "ocsp", "signing-key": "ocsp"}},
                    "crl-repo": {
                        "root": {"for-issuer": "root", "signing-key": "root", "simulated-update-schedule": "P90D"},
                        "ca": {"for-issuer": "ca", "signing-key": "ca", "simulated-update-schedule": "P7D"},
                    },
                    "time-stamping": {"tsa": {"signing-key": "tsa", "signing-cert": "tsa"}},
                },
            }
        },
    }


@dataclass
class TestPki:
    __test__ = False  # not a test class
    directory: Path
    base_url: str

    @cached_property
    def _config(self) -> CertomancerConfig:
        return CertomancerConfig.from_file(str(self.directory / "certomancer.yml"), key_search_dir=str(self.directory))

    @property
    def arch(self) -> PKIArchitecture:
        return self._config.pki_archs[ARCH]  # type: ignore[index]

    def cert(self, label: str) -> x509.Certificate:
        return self.arch.get_cert(label)  # type: ignore[arg-type]

    def key_der(self, label: str) -> bytes:
        """The private key (PKCS#8 DER), to put on a SoftHSM2 token."""
        key = serialization.load_pem_private_key((self.directory / "keys" / f"{label}.key.pem").read_bytes(), None)
        return key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def tsa_url(self) -> str:
        return f"{self.base_url}/{ARCH}/tsa/tsa"

    def animator(self) -> Animator:
        return Animator(AnimatorArchStore(self._config.pki_archs), with_web_ui=False, allow_time_override=False)

    def pem(self, *labels: str) -> bytes:
        return b"".join(
            cx509.load_der_x509_certificate(self.cert(label).dump()).public_bytes(serialization.Encoding.PEM)
            for label in labels
        )


def create_test_pki(directory: Path, base_url: str) -> TestPki:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    (directory / "keys").mkdir(parents=True)
    for name in KEYS:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (directory / "keys" / f"{name}.key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    (directory / "certomancer.yml").write_text(
        yaml.safe_dump(_config(base_url, start), allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return TestPki(directory, base_url)
