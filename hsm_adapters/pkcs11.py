"""Keys in a hardware security module or token, through any PKCS#11 module (SoftHSM2 in tests).

The key is found by token label or serial and by key label or id; the PIN is read from a file (a secret mount,
a systemd credential), never taken from the command line and never logged. Signing goes through a small pool of
logged-in sessions: a PKCS#11 session runs one operation at a time (a second ``C_SignInit`` on a busy session is
``CKR_OPERATION_ACTIVE``), so each thread borrows a session for the length of one signature. The token is logged
in once per process (login state is shared by all sessions of an application; a second ``C_Login`` is
``CKR_USER_ALREADY_LOGGED_IN``). When the token goes away (unplugged, HSM restarted) the pool is dropped and the
next signature reconnects. A wrong PIN is never retried: every retry would count against the token's PIN counter.

Errors are :class:`KeyBackendError`: permanent for a wrong, locked or expired PIN, a missing key or certificate and
a configuration mistake; transient (``transient=True``) when the token is not present or stops answering. A PIN the
token refused is remembered (as a keyed hash, for this process only) and not offered again: until the PIN file
changes, every later login fails at once with the same message instead of counting another wrong attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import queue
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pkcs11
from asn1crypto import algos, core, csr, keys, pem, x509
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass, Session, Token
from pkcs11 import exceptions as p11
from pkcs11.util.ec import encode_ec_public_key, encode_ecdsa_signature, encode_named_curve_parameters
from pkcs11.util.rsa import encode_rsa_public_key

from hsm_adapters.base import DIGEST_SIZES, KeyBackendError, SignatureMechanism, check_digest

# Errors after which the session (or the whole token connection) is gone and a fresh one may succeed.
_GONE = (
    p11.DeviceRemoved,
    p11.TokenNotPresent,
    p11.SessionHandleInvalid,
    p11.SessionClosed,
    p11.DeviceError,
    p11.UserNotLoggedIn,
    p11.OperationActive,
    # A key object looked up earlier in this session (see _SessionPool.key) is gone: replaced or deleted on the
    # token. Fresh sessions look it up again.
    p11.KeyHandleInvalid,
    p11.ObjectHandleInvalid,
)
# python-pkcs11 starts every module with C_Initialize(NULL), which tells the module (PKCS#11 v2.40 §5.4) that the
# application will never call it from two threads at once. SoftHSM2 takes that at its word and fails with
# CKR_GENERAL_ERROR under concurrent calls, so every call into a module is made under this lock.
MODULE_LOCK = threading.RLock()


def read_pin(path: Path) -> str:
    """The PIN from a file holding only the PIN (a trailing newline is ignored). The PIN itself is never echoed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeyBackendError(f"Cannot read the PIN file {path}: {exc.strerror}") from exc
    pin = text.rstrip("\r\n")
    if not pin:
        raise KeyBackendError(f"The PIN file {path} is empty")
    return pin


@dataclass(frozen=True)
class Pkcs11Config:
    """Where a key lives. ``repr`` never shows the PIN: only the PIN file's path is kept."""

    module: Path
    pin_file: Path
    token_label: str | None = None
    token_serial: str | None = None
    key_label: str | None = None
    key_id: bytes | None = None
    pool_size: int = 4
    cert_file: Path | None = field(default=None, metadata={"doc": "certificate chain PEM if not on the token"})

    def describe(self) -> str:
        token = f"token '{self.token_label}'" if self.token_label else f"token with serial {self.token_serial}"
        key = f"key '{self.key_label}'" if self.key_label else f"key id {self.key_id.hex() if self.key_id else '?'}"
        return f"{key} on {token}"


def load_library(module: Path) -> Any:
    """Load (once per process) the vendor's PKCS#11 module."""
    if not module.is_file():
        raise KeyBackendError(
            f"The PKCS#11 module {module} does not exist. Install the HSM vendor's client library "
            "(for SoftHSM2: the softhsm2 package, /usr/lib/softhsm/libsofthsm2.so) and set its path."
        )
    try:
        with MODULE_LOCK:
            return pkcs11.lib(str(module))
    except (RuntimeError, OSError) as exc:
        raise KeyBackendError(f"The PKCS#11 module {module} could not be loaded: {exc}") from exc


def _find_token(lib: Any, config: Pkcs11Config) -> Token:
    kwargs: dict[str, Any] = {}
    if config.token_label:
        kwargs["token_label"] = config.token_label
    if config.token_serial:
        kwargs["token_serial"] = config.token_serial.encode()
    if not kwargs:
        raise KeyBackendError("Configure the token by its label or its serial number")
    for attempt in (1, 2):
        try:
            with MODULE_LOCK:
                token: Token = lib.get_token(**kwargs)
                return token
        except p11.NoSuchToken:
            if attempt == 1:
                # Tokens plugged in (or HSMs restarted) since the module started only show after a re-initialise.
                with MODULE_LOCK, suppress(p11.PKCS11Error):
                    lib.reinitialize()
                continue
        except p11.MultipleTokensReturned:
            raise KeyBackendError("Several tokens match; configure the token by its serial number") from None
    with MODULE_LOCK:
        present = ", ".join(f"'{t.label}'" for t in lib.get_tokens() if t.label) or "none"
    where = config.describe().split(" on ", 1)[1]
    raise KeyBackendError(
        f"Không thấy {where} (đang có: {present}). Token đã cắm vào và HSM có kết nối chưa?",
        f"No {where} is present (tokens present: {present}). Is the token plugged in and the HSM reachable?",
        transient=True,
    )


def _login_error(exc: Exception, config: Pkcs11Config) -> KeyBackendError:
    where = config.describe().split(" on ", 1)[1]
    if isinstance(exc, p11.PinIncorrect):
        return KeyBackendError(
            f"Mã PIN của {where} không đúng. Sửa tệp PIN {config.pin_file}; SealTrail không thử lại, vì mỗi lần sai "
            "đều bị đếm để khoá token.",
            f"The PIN for {where} is wrong. Correct the PIN file {config.pin_file}; SealTrail will not retry, "
            "because every wrong attempt counts towards locking the token.",
        )
    if isinstance(exc, p11.PinLocked):
        return KeyBackendError(
            f"Mã PIN của {where} đã bị khoá do nhập sai nhiều lần; người quản trị token (SO) phải mở khoá trước khi "
            "ký được.",
            f"The PIN of {where} is locked after too many wrong attempts. The token's security officer must "
            "unlock it (e.g. pkcs11-tool --init-pin with the SO PIN) before anything can be signed.",
        )
    if isinstance(exc, p11.PinExpired):
        return KeyBackendError(
            f"Mã PIN của {where} đã hết hạn; đặt mã PIN mới trên token trước.",
            f"The PIN of {where} has expired; set a new PIN on the token first.",
        )
    if isinstance(exc, p11.PinLenRange | p11.PinInvalid):
        return KeyBackendError(
            f"Mã PIN trong {config.pin_file} có dạng mà {where} không nhận.",
            f"The PIN in {config.pin_file} has a form {where} does not accept.",
        )
    return KeyBackendError(
        f"Không đăng nhập được vào {where}", f"Could not log in to {where}: {exc.__class__.__name__}"
    )


_PIN_ERRORS = (p11.PinIncorrect, p11.PinLocked, p11.PinExpired, p11.PinLenRange, p11.PinInvalid)

# PINs a token refused, per (module, token serial): a keyed hash of the PIN (the key lives only in this process)
# and the error to raise again instead of another C_Login. Guarded by MODULE_LOCK.
_PIN_TAG_KEY = secrets.token_bytes(32)
_REFUSED: dict[tuple[str, str], tuple[bytes, KeyBackendError]] = {}


def _pin_tag(pin: str) -> bytes:
    return hmac.new(_PIN_TAG_KEY, pin.encode(), hashlib.sha256).digest()


def _token_key(token: Token, config: Pkcs11Config) -> tuple[str, str]:
    serial = getattr(token, "serial", None)
    ident = serial.decode(errors="replace") if isinstance(serial, bytes) else str(serial or config.token_label)
    return str(config.module), ident


def open_session(token: Token, config: Pkcs11Config) -> Session:
    """A read-write session, logged in as the user. Login is per application, so "already logged in" is fine.

    A PIN the token refused before is not offered again (see the module's docstring)."""
    pin = read_pin(config.pin_file)
    where = _token_key(token, config)
    tag = _pin_tag(pin)
    try:
        refused = _REFUSED.get(where)
        if refused is not None and hmac.compare_digest(refused[0], tag):
            error = refused[1]
            raise KeyBackendError(error.message_vi, error.message_en) from None
        session = token.open(user_pin=pin, rw=True)
        _REFUSED.pop(where, None)
        return session
    except p11.UserAlreadyLoggedIn:
        return token.open(rw=True)
    except _PIN_ERRORS as exc:
        error = _login_error(exc, config)
        _REFUSED[where] = (tag, error)
        raise error from None
    except (p11.TokenNotPresent, p11.DeviceRemoved) as exc:
        raise KeyBackendError(
            f"Token chứa {config.describe()} đã bị rút ra hoặc ngừng trả lời",
            f"The token holding {config.describe()} went away ({exc.__class__.__name__})",
            transient=True,
        ) from None
    finally:
        del pin


class _SessionPool:
    """Logged-in sessions on one token, each used by one thread at a time."""

    def __init__(self, lib: Any, config: Pkcs11Config) -> None:
        self.lib = lib
        self.config = config
        self.size = max(1, config.pool_size)
        self._idle: queue.LifoQueue[Session] = queue.LifoQueue()
        self._opened = 0
        self._lock = threading.Lock()
        self._keys: dict[int, Any] = {}  # id(session) -> the private key object found in it (handles are per session)
        self.token = _find_token(lib, config)
        self._open(login=True)  # log in now so a wrong PIN is reported at start-up, not at the first document

    def _open(self, *, login: bool) -> None:
        with MODULE_LOCK:
            session = open_session(self.token, self.config) if login else self.token.open(rw=True)
        self._opened += 1
        self._idle.put(session)

    @contextmanager
    def session(self) -> Iterator[Session]:
        try:
            session = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                grow = self._opened < self.size
                if grow:
                    self._open(login=False)
            session = self._idle.get(timeout=60)
        broken = False
        try:
            yield session
        except _GONE:
            broken = True
            raise
        finally:
            if broken:
                with self._lock:
                    self._opened -= 1
                    self._keys.pop(id(session), None)
                with MODULE_LOCK, suppress(p11.PKCS11Error):
                    session.close()
            else:
                self._idle.put(session)

    def key(self, session: Session, find: Callable[[Session], Any]) -> Any:
        """The private key in ``session``, looked up once per session: C_FindObjects on every signature cost
        about as much as the rest of the adapter (docs/performance.md)."""
        key = self._keys.get(id(session))
        if key is None:
            key = self._keys[id(session)] = find(session)
        return key

    def close(self) -> None:
        self._keys.clear()
        while True:
            try:
                session = self._idle.get_nowait()
            except queue.Empty:
                return
            with MODULE_LOCK, suppress(p11.PKCS11Error):
                session.close()


def _digest_info(digest: bytes, digest_algorithm: str) -> bytes:
    info = algos.DigestInfo(
        {"digest_algorithm": {"algorithm": digest_algorithm, "parameters": core.Null()}, "digest": digest}
    )
    return bytes(info.dump())


# DER DigestInfo is a fixed prefix per algorithm followed by the digest; built once instead of per signature.
_DIGEST_INFO_PREFIX = {name: _digest_info(bytes(size), name)[:-size] for name, size in DIGEST_SIZES.items()}


class Pkcs11KeyBackend:
    """A KeyBackend whose private key never leaves the PKCS#11 token."""

    def __init__(self, config: Pkcs11Config) -> None:
        self.config = config
        self.lib = load_library(config.module)
        self._pool_lock = threading.Lock()
        self._pool: _SessionPool | None = _SessionPool(self.lib, config)
        self._key_type = self._with_session(self._read_key_type)
        self._certificate, self._chain = self._load_certificates()

    # -- KeyBackend -------------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        return self.config.describe()

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    @property
    def chain(self) -> list[x509.Certificate]:
        return list(self._chain)

    @property
    def mechanism(self) -> SignatureMechanism:
        return SignatureMechanism.RSA_PKCS1V15 if self._key_type == KeyType.RSA else SignatureMechanism.ECDSA

    def sign_digest(self, digest: bytes, digest_algorithm: str) -> bytes:
        check_digest(digest, digest_algorithm)

        def sign(key: Any) -> bytes:
            if self._key_type == KeyType.RSA:
                return bytes(key.sign(_DIGEST_INFO_PREFIX[digest_algorithm] + digest, mechanism=Mechanism.RSA_PKCS))
            return encode_ecdsa_signature(key.sign(digest, mechanism=Mechanism.ECDSA))

        return bytes(self._with_session(sign, with_key=True))

    def check_ready(self) -> None:
        """Raise KeyBackendError unless the token answers in a logged-in session and the private key is there."""
        self._with_session(self._private_key)

    # -- plumbing ---------------------------------------------------------------------------------------
    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def _current_pool(self) -> _SessionPool:
        with self._pool_lock:
            if self._pool is None:
                self._pool = _SessionPool(self.lib, self.config)
            return self._pool

    def _drop_pool(self, pool: _SessionPool) -> None:
        with self._pool_lock:
            if self._pool is pool:
                pool.close()
                self._pool = None

    def _with_session(self, action: Any, *, with_key: bool = False) -> Any:
        """``action(session)`` in a pooled session (``action(private key)`` with ``with_key``), reconnecting once."""
        for attempt in (1, 2):
            pool = self._current_pool()
            try:
                with pool.session() as session, MODULE_LOCK:
                    return action(pool.key(session, self._private_key) if with_key else session)
            except _GONE as exc:
                self._drop_pool(pool)
                if attempt == 2:
                    raise KeyBackendError(
                        f"Token chứa {self.label} ngừng trả lời. Kiểm tra token đã cắm và HSM có kết nối, rồi thử "
                        "lại; chưa ký gì.",
                        f"The token holding {self.label} stopped answering ({exc.__class__.__name__}). "
                        "Check that it is plugged in and the HSM is reachable, then try again; nothing was signed.",
                        transient=True,
                    ) from None
            except p11.NoSuchKey:
                raise KeyBackendError(
                    f"Không có khoá bí mật {self.label}.",
                    f"There is no private {self.label}. List the token's keys with pkcs11-tool --list-objects.",
                ) from None
            except p11.MultipleObjectsReturned:
                raise KeyBackendError(f"Several keys match {self.label}; configure the key by its id") from None
            except p11.PKCS11Error as exc:
                raise KeyBackendError(
                    f"The token refused to sign with {self.label}: {exc.__class__.__name__}"
                ) from None
        raise AssertionError("unreachable")

    def _key_attrs(self) -> dict[Attribute, Any]:
        attrs: dict[Attribute, Any] = {}
        if self.config.key_label:
            attrs[Attribute.LABEL] = self.config.key_label
        if self.config.key_id:
            attrs[Attribute.ID] = self.config.key_id
        if not attrs:
            raise KeyBackendError("Configure the key by its label or its id")
        return attrs

    def _private_key(self, session: Session) -> Any:
        attrs = self._key_attrs()
        return session.get_key(
            object_class=ObjectClass.PRIVATE_KEY, label=attrs.get(Attribute.LABEL), id=attrs.get(Attribute.ID)
        )

    def _read_key_type(self, session: Session) -> KeyType:
        key_type: KeyType = self._private_key(session).key_type
        if key_type not in (KeyType.RSA, KeyType.EC):
            raise KeyBackendError(f"The {self.label} is of a type SealTrail cannot sign with ({key_type})")
        return key_type

    def _load_certificates(self) -> tuple[x509.Certificate, list[x509.Certificate]]:
        if self.config.cert_file is not None:
            data = self.config.cert_file.read_bytes()
            certs = [x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True)]
            if not certs:
                raise KeyBackendError(f"No certificate in {self.config.cert_file}")
            return certs[0], certs[1:]

        def read(session: Session) -> list[bytes]:
            attrs = {Attribute.CLASS: ObjectClass.CERTIFICATE, **self._key_attrs()}
            return [bytes(obj[Attribute.VALUE]) for obj in session.get_objects(attrs)]

        ders = self._with_session(read)
        if not ders:
            raise KeyBackendError(
                f"The token has no certificate for {self.label}. Import the certificate the CA issued "
                "(sealtrail hsm import-cert) or configure a certificate file."
            )
        own = x509.Certificate.load(ders[0])

        def chain(session: Session) -> list[x509.Certificate]:
            found = session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE})
            return [x509.Certificate.load(bytes(o[Attribute.VALUE])) for o in found]

        others = [c for c in self._with_session(chain) if c.sha256 != own.sha256]
        return own, _chain_for(own, others)


def _chain_for(cert: x509.Certificate, pool: list[x509.Certificate]) -> list[x509.Certificate]:
    chain: list[x509.Certificate] = []
    current = cert
    while current.self_signed == "no":  # asn1crypto answers "no", "maybe" or "yes"
        issuer = next((c for c in pool if c.subject == current.issuer and c not in chain), None)
        if issuer is None or issuer.self_signed != "no":
            break
        chain.append(issuer)
        current = issuer
    return chain


# -- key management: keys made inside the token, CSRs for the CA, certificates back onto the token ----------
def generate_key(
    config: Pkcs11Config, *, key_type: str = "rsa", bits: int = 3072, curve: str = "secp256r1"
) -> keys.PublicKeyInfo:
    """Generate a non-extractable signing key pair on the token; returns the public key."""
    lib = load_library(config.module)
    token = _find_token(lib, config)
    label = config.key_label
    if not label:
        raise KeyBackendError("A new key needs a label")
    key_id = config.key_id or label.encode()
    private = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.SIGN: True, Attribute.TOKEN: True}
    public = {Attribute.VERIFY: True, Attribute.TOKEN: True}
    with MODULE_LOCK, open_session(token, config) as session:
        existing = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: label}))
        if existing:
            raise KeyBackendError(f"The token already holds a key labelled '{label}'; choose another label")
        if key_type == "rsa":
            pub, _ = session.generate_keypair(
                KeyType.RSA, bits, id=key_id, label=label, store=True,
                public_template=public, private_template=private,
            )  # fmt: skip
            der = encode_rsa_public_key(pub)
            return keys.PublicKeyInfo({"algorithm": {"algorithm": "rsa"}, "public_key": keys.RSAPublicKey.load(der)})
        if key_type == "ec":
            params = session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(curve)}, local=True
            )
            pub, _ = params.generate_keypair(
                id=key_id, label=label, store=True, public_template=public, private_template=private
            )
            return keys.PublicKeyInfo.load(encode_ec_public_key(pub))
        raise KeyBackendError(f"Unknown key type {key_type!r} (use rsa or ec)")


def make_csr(config: Pkcs11Config, public_key: keys.PublicKeyInfo, subject: dict[str, str]) -> bytes:
    """A PKCS#10 certificate request for the token's key, signed on the token. Returns PEM."""
    info = csr.CertificationRequestInfo(
        {
            "version": "v1",
            "subject": x509.Name.build(subject),
            "subject_pk_info": public_key,
            "attributes": [],
        }
    )
    backend = _UncertifiedKey(config)
    import hashlib

    signature = backend.sign(hashlib.sha256(info.dump()).digest())
    algo = "sha256_rsa" if public_key.algorithm == "rsa" else "sha256_ecdsa"
    request = csr.CertificationRequest(
        {"certification_request_info": info, "signature_algorithm": {"algorithm": algo}, "signature": signature}
    )
    return bytes(pem.armor("CERTIFICATE REQUEST", request.dump()))


def self_signed_certificate(
    config: Pkcs11Config, public_key: keys.PublicKeyInfo, subject: dict[str, str], *, days: int = 3650
) -> x509.Certificate:
    """A self-signed certificate for the token's key (for keys that are published by fingerprint, not certified by a
    CA: the QR-seal key), signed on the token."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC).replace(microsecond=0)
    algo = "sha256_rsa" if public_key.algorithm == "rsa" else "sha256_ecdsa"
    name = x509.Name.build(subject)
    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": int.from_bytes(secrets.token_bytes(16), "big") >> 1,
            "signature": {"algorithm": algo},
            "issuer": name,
            "validity": {
                "not_before": x509.Time({"utc_time": now - timedelta(minutes=5)}),
                "not_after": x509.Time({"general_time": now + timedelta(days=days)}),
            },
            "subject": name,
            "subject_public_key_info": public_key,
        }
    )
    signature = _UncertifiedKey(config).sign(hashlib.sha256(tbs.dump()).digest())
    return x509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": {"algorithm": algo}, "signature_value": signature}
    )


class _UncertifiedKey(Pkcs11KeyBackend):
    """The token's key before the CA has issued its certificate (only for signing the CSR)."""

    def __init__(self, config: Pkcs11Config) -> None:
        self.config = config
        self.lib = load_library(config.module)
        self._pool_lock = threading.Lock()
        self._pool = _SessionPool(self.lib, config)
        self._key_type = self._with_session(self._read_key_type)

    def sign(self, digest: bytes) -> bytes:
        try:
            return self.sign_digest(digest, "sha256")
        finally:
            self.close()


def import_certificates(config: Pkcs11Config, certs: list[x509.Certificate]) -> None:
    """Store the issued certificate (first) under the key's label and id, and its CA chain beside it."""
    lib = load_library(config.module)
    token = _find_token(lib, config)
    label = config.key_label or ""
    key_id = config.key_id or label.encode()
    with MODULE_LOCK, open_session(token, config) as session:
        for i, cert in enumerate(certs):
            own = i == 0
            session.create_object(
                {
                    Attribute.CLASS: ObjectClass.CERTIFICATE,
                    Attribute.CERTIFICATE_TYPE: pkcs11.CertificateType.X_509,
                    Attribute.TOKEN: True,
                    Attribute.LABEL: label if own else f"{label} CA {i}",
                    Attribute.ID: key_id if own else f"{label}-ca-{i}".encode(),
                    Attribute.SUBJECT: cert.subject.dump(),
                    Attribute.ISSUER: cert.issuer.dump(),
                    Attribute.SERIAL_NUMBER: cert["tbs_certificate"]["serial_number"].dump(),
                    Attribute.VALUE: cert.dump(),
                }
            )


def import_private_key(config: Pkcs11Config, pkcs8_der: bytes) -> None:
    """Development only: put an existing (dev PKI) RSA key onto a token, marked non-extractable from then on."""
    from pkcs11.util.rsa import decode_rsa_private_key

    info = keys.PrivateKeyInfo.load(pkcs8_der)
    if info.algorithm != "rsa":
        raise KeyBackendError("Only RSA development keys can be imported")
    attrs = decode_rsa_private_key(info["private_key"].parsed.dump())
    label = config.key_label or ""
    attrs.update(
        {
            Attribute.TOKEN: True,
            Attribute.LABEL: label,
            Attribute.ID: config.key_id or label.encode(),
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
        }
    )
    lib = load_library(config.module)
    token = _find_token(lib, config)
    with MODULE_LOCK, open_session(token, config) as session:
        session.create_object(attrs)
