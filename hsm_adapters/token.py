"""A signer's own USB token (PKCS#11), used on the signer's PC by ``sealtrail agent``.

Unlike the server's HSM backend (``hsm_adapters.pkcs11``: PIN from a file, a pool of sessions shared by threads),
a USB token belongs to one person who types the PIN once per batch: the token is opened with that PIN, one
logged-in session signs every digest of the batch, and the session is closed. The PIN is only held for the
``C_Login`` call; it is never logged, stored or shown. Certificates are public objects and are listed without a PIN.

A token pulled out mid-batch makes the next signature fail with :class:`TokenGoneError`; the caller keeps what
was already signed and can start again later.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asn1crypto import x509
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass, Session
from pkcs11 import exceptions as p11
from pkcs11.util.ec import encode_ecdsa_signature

from hsm_adapters.base import KeyBackendError, SignatureMechanism, check_digest
from hsm_adapters.pkcs11 import _PIN_ERRORS, MODULE_LOCK, Pkcs11Config, _digest_info, _find_token, load_library


class TokenGoneError(KeyBackendError):
    """The token stopped answering (unplugged) in the middle of a batch: transient, plugging it back in helps."""

    transient = True


@dataclass(frozen=True)
class TokenCertificate:
    """A certificate found on the token, with the id/label that ties it to its private key."""

    label: str
    key_id: bytes
    certificate: x509.Certificate

    @property
    def sha256(self) -> str:
        import hashlib

        return hashlib.sha256(self.certificate.dump()).hexdigest()

    @property
    def subject(self) -> str:
        return str(self.certificate.subject.human_friendly)


def _pin_error(exc: Exception, where: str) -> KeyBackendError:
    if isinstance(exc, p11.PinIncorrect):
        return KeyBackendError(
            f"Mã PIN của {where} không đúng. / The PIN for {where} is wrong. "
            "Không thử lại tự động: mỗi lần sai đều bị đếm để khoá token. / Not retried: every wrong PIN counts "
            "towards locking the token."
        )
    if isinstance(exc, p11.PinLocked):
        return KeyBackendError(
            f"Mã PIN của {where} đã bị khoá do nhập sai nhiều lần; liên hệ nơi cấp token để mở khoá. / The PIN of "
            f"{where} is locked after too many wrong attempts; ask the token's issuer to unlock it."
        )
    return KeyBackendError(f"Không đăng nhập được vào {where} / could not log in to {where}: {exc.__class__.__name__}")


class UsbToken:
    """One PKCS#11 token, found by label or serial through the vendor's module."""

    def __init__(self, module: Path, *, token_label: str | None = None, token_serial: str | None = None) -> None:
        self.config = Pkcs11Config(
            module=module, pin_file=Path("/dev/null"), token_label=token_label, token_serial=token_serial
        )
        self.where = f"token '{token_label}'" if token_label else f"token {token_serial}"
        self.lib = load_library(module)
        self.token = _find_token(self.lib, self.config)

    def certificates(self) -> list[TokenCertificate]:
        """Every certificate whose private key is on the token (the signer's own certificates)."""
        with MODULE_LOCK:
            try:
                with self.token.open() as session:
                    certs = [
                        (
                            str(o[Attribute.LABEL]),
                            bytes(o[Attribute.ID]),
                            x509.Certificate.load(bytes(o[Attribute.VALUE])),
                        )
                        for o in session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE})
                    ]
                    key_ids = {
                        bytes(k[Attribute.ID]) for k in session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY})
                    }
            except (p11.TokenNotPresent, p11.DeviceRemoved, p11.DeviceError) as exc:
                raise TokenGoneError(f"Không đọc được {self.where} / cannot read {self.where}: {exc}") from None
        with_keys = [TokenCertificate(label, kid, cert) for label, kid, cert in certs if kid in key_ids]
        return with_keys or [TokenCertificate(label, kid, cert) for label, kid, cert in certs if not cert.ca]

    @contextmanager
    def session(self, pin: str, certificate: TokenCertificate) -> Iterator[TokenSigner]:
        """One logged-in session for a whole batch, signing with the key that belongs to ``certificate``."""
        with MODULE_LOCK:
            try:
                session = self.token.open(user_pin=pin, rw=False)
            except p11.UserAlreadyLoggedIn:
                session = self.token.open(rw=False)
            except _PIN_ERRORS as exc:
                raise _pin_error(exc, self.where) from None
            except (p11.TokenNotPresent, p11.DeviceRemoved) as exc:
                raise TokenGoneError(f"{self.where} đã bị rút ra / was removed ({exc.__class__.__name__})") from None
        try:
            with MODULE_LOCK:
                try:
                    key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=certificate.key_id)
                except p11.NoSuchKey:
                    raise KeyBackendError(
                        f"Không có khoá bí mật cho chứng thư '{certificate.label}' trên {self.where} / no private key "
                        f"for the certificate '{certificate.label}' on {self.where}"
                    ) from None
            yield TokenSigner(session, key, self.where)
        finally:
            with MODULE_LOCK, suppress(p11.PKCS11Error):
                session.close()


class TokenSigner:
    """Signs precomputed digests inside one open, logged-in session."""

    def __init__(self, session: Session, key: Any, where: str) -> None:
        self._session = session
        self._key = key
        self.where = where
        self.mechanism = SignatureMechanism.RSA_PKCS1V15 if key.key_type == KeyType.RSA else SignatureMechanism.ECDSA

    def sign_digest(self, digest: bytes, digest_algorithm: str = "sha256") -> bytes:
        check_digest(digest, digest_algorithm)
        try:
            with MODULE_LOCK:
                if self.mechanism is SignatureMechanism.RSA_PKCS1V15:
                    return bytes(self._key.sign(_digest_info(digest, digest_algorithm), mechanism=Mechanism.RSA_PKCS))
                return encode_ecdsa_signature(self._key.sign(digest, mechanism=Mechanism.ECDSA))
        except p11.PKCS11Error as exc:
            raise TokenGoneError(
                f"{self.where} ngừng trả lời (đã rút ra?) / stopped answering (unplugged?): {exc.__class__.__name__}"
            ) from None
