"""The KeyBackend protocol shared by every key adapter, and the errors they raise."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol, runtime_checkable

from asn1crypto import x509

from errors import SealTrailError


class SignatureMechanism(StrEnum):
    """How a backend turns a digest into a signature."""

    RSA_PKCS1V15 = "rsassa_pkcs1v15"
    ECDSA = "ecdsa"
    ED25519 = "ed25519"


class KeyBackendError(SealTrailError):
    """A key backend failed; the message is meant for the school's IT staff.

    Permanent unless raised with ``transient=True``: a wrong or locked PIN, a missing key or a certificate that
    does not match stay until a person acts (and retrying a PIN counts towards locking the token); a lost
    session or a token or service that does not answer may pass by itself.
    """


DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}


def check_digest(digest: bytes, digest_algorithm: str) -> None:
    """Refuse an unknown algorithm or a digest of the wrong length before anything reaches a key."""
    size = DIGEST_SIZES.get(digest_algorithm)
    if size is None:
        raise KeyBackendError(f"Unsupported digest algorithm {digest_algorithm!r}")
    if len(digest) != size:
        raise KeyBackendError(f"A {digest_algorithm} digest is {size} bytes, got {len(digest)}")


@runtime_checkable
class KeyBackend(Protocol):
    """A signing key held somewhere (file, HSM, token, remote service) with its certificate chain.

    ``sign_digest`` receives the already computed message digest (e.g. 32 bytes of SHA-256) and returns the
    raw signature: PKCS#1 v1.5 over DigestInfo for RSA, DER-encoded ECDSA-Sig-Value for ECDSA (what CMS and
    XML-DSig after conversion expect). The private key never leaves the backend.
    """

    @property
    def label(self) -> str:
        """A human name for the key (used in logs and errors; never a secret)."""
        ...

    @property
    def certificate(self) -> x509.Certificate:
        """The signer's own certificate."""
        ...

    @property
    def chain(self) -> list[x509.Certificate]:
        """Intermediate CA certificates (without the signer's own and usually without the root)."""
        ...

    @property
    def mechanism(self) -> SignatureMechanism:
        """The signature mechanism the key supports."""
        ...

    def sign_digest(self, digest: bytes, digest_algorithm: str) -> bytes:
        """Sign a precomputed digest (``digest_algorithm`` is 'sha256', 'sha384' or 'sha512')."""
        ...
