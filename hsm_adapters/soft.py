"""Software keys from a PKCS#12 file. For development and tests only: refuses to load in production mode."""

from __future__ import annotations

from pathlib import Path

from asn1crypto import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.serialization import pkcs12

from hsm_adapters.base import KeyBackendError, SignatureMechanism, check_digest

_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


def _to_asn1(cert: object) -> x509.Certificate:
    der = cert.public_bytes(serialization.Encoding.DER)  # type: ignore[attr-defined]
    return x509.Certificate.load(der)


class SoftKeyBackend:
    """A key and its chain held in memory, loaded from a PKCS#12 file."""

    def __init__(
        self,
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
        certificate: x509.Certificate,
        chain: list[x509.Certificate],
        label: str = "soft key",
    ) -> None:
        self._key = key
        self._certificate = certificate
        self._chain = chain
        self._label = label

    @classmethod
    def from_pkcs12(cls, path: Path, passphrase: bytes | None = None, *, mode: str = "development") -> SoftKeyBackend:
        if mode == "production":
            raise KeyBackendError(
                f"Refusing to use the software key file {path.name} in production mode: "
                "production signing keys must live in an HSM or on a token (configure the pkcs11 backend)."
            )
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise KeyBackendError(f"Cannot read the key file {path}: {exc.strerror}") from exc
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, passphrase)
        except ValueError as exc:
            raise KeyBackendError(f"The key file {path.name} could not be opened (wrong passphrase?)") from exc
        if key is None or cert is None:
            raise KeyBackendError(f"The key file {path.name} holds no private key with a certificate")
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
            raise KeyBackendError(f"The key in {path.name} is of an unsupported type")
        return cls(key, _to_asn1(cert), [_to_asn1(c) for c in extra], label=path.stem)

    @property
    def label(self) -> str:
        return self._label

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    @property
    def chain(self) -> list[x509.Certificate]:
        return list(self._chain)

    @property
    def mechanism(self) -> SignatureMechanism:
        if isinstance(self._key, rsa.RSAPrivateKey):
            return SignatureMechanism.RSA_PKCS1V15
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return SignatureMechanism.ECDSA
        return SignatureMechanism.ED25519

    def sign_digest(self, digest: bytes, digest_algorithm: str) -> bytes:
        check_digest(digest, digest_algorithm)
        algo = _HASHES[digest_algorithm]
        prehashed = utils.Prehashed(algo)
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(digest, padding.PKCS1v15(), prehashed)
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(digest, ec.ECDSA(prehashed))
        raise KeyBackendError("Ed25519 keys sign whole messages, not digests; use an RSA or ECDSA key here")
