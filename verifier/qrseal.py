"""The QR code's offline seal: a COSE_Sign1 (RFC 9052) over a small CBOR map, zlib-compressed and base45-encoded
(RFC 9285) with the prefix ``ST1:``, the way the EU Digital COVID Certificate packs its proof into a QR code.

The QR carries ``https://<verify-host>/v/<token>#ST1:<base45>``. The token (≥128 random bits) lets the issuer's
site show status online; the fragment never reaches a server and lets anyone check the document's key facts
offline against the issuer's published key. Base45's alphabet has a space and '%', which a URL fragment must
not carry raw, so those two are percent-encoded (``%20``, ``%25``) and decoded again before verification.
"""

from __future__ import annotations

import hashlib
import secrets
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import unquote, urlsplit

import base45
import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from errors import PermanentError
from hsm_adapters.base import KeyBackend, SignatureMechanism

PREFIX = "ST1:"
ALG_ES256 = -7
ALG_EDDSA = -8
MAX_SEAL_CHARS = 2048
MAX_INFLATED = 4096
KINDS = ("transcript", "diploma", "copy", "translation")  # the code is the index: only append
_EPOCH = date(1970, 1, 1).toordinal()

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


class SealError(PermanentError, ValueError):
    """The seal is not genuine or not readable. The message is Vietnamese, then English."""


@dataclass(frozen=True)
class SealClaims:
    """What the seal vouches for. ``issuer`` is the school's code (its name comes with the published keys)."""

    doc_id: str
    kind: str
    holder_name: str
    birth_date: date
    issue_date: date
    issuer: str
    xml_sha256: bytes


def new_token() -> str:
    """A 128-bit random token, base32 without padding (26 characters, QR alphanumeric-friendly in upper case)."""
    return base64_32(secrets.token_bytes(16))


def base64_32(data: bytes) -> str:
    import base64

    return base64.b32encode(data).decode().rstrip("=")


def key_id(public_key: PublicKey) -> bytes:
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()[:8]


def _payload(claims: SealClaims) -> bytes:
    return cbor2.dumps(
        {
            1: claims.doc_id,
            2: KINDS.index(claims.kind),
            3: claims.holder_name,
            4: claims.birth_date.toordinal() - _EPOCH,
            5: claims.issue_date.toordinal() - _EPOCH,
            6: claims.issuer,
            7: claims.xml_sha256,
        }
    )


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])


def make_seal(claims: SealClaims, key: PrivateKey | KeyBackend) -> str:
    """Sign the claims and pack them as ``ST1:<base45(zlib(COSE_Sign1))>``."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        alg, kid = ALG_EDDSA, key_id(key.public_key())
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        alg, kid = ALG_ES256, key_id(key.public_key())
    else:
        if key.mechanism is not SignatureMechanism.ECDSA:
            raise ValueError("a QR seal key must be ECDSA P-256 or Ed25519")
        alg = ALG_ES256
        kid = hashlib.sha256(key.certificate.public_key.dump()).digest()[:8]
    protected = cbor2.dumps({1: alg, 4: kid})
    payload = _payload(claims)
    to_sign = _sig_structure(protected, payload)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        signature = key.sign(to_sign)
    else:
        if isinstance(key, ec.EllipticCurvePrivateKey):
            der = key.sign(to_sign, ec.ECDSA(hashes.SHA256()))
        else:
            der = key.sign_digest(hashlib.sha256(to_sign).digest(), "sha256")
        r, s = decode_dss_signature(der)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    cose = cbor2.dumps(cbor2.CBORTag(18, [protected, {}, payload, signature]))
    return PREFIX + base45.b45encode(zlib.compress(cose, 9)).decode("ascii")


def qr_payload(verify_base_url: str, token: str, seal: str) -> str:
    """The text the QR code carries."""
    fragment = seal.replace("%", "%25").replace(" ", "%20")
    return f"{verify_base_url.rstrip('/')}/v/{token}#{fragment}"


@dataclass(frozen=True)
class ParsedQr:
    url: str
    host: str
    token: str | None
    seal: str | None


def parse_qr_payload(text: str) -> ParsedQr:
    text = text.strip()
    if text.startswith(PREFIX):
        return ParsedQr("", "", None, text)
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SealError("Mã QR không phải là liên kết xác thực / the QR code is not a verification link")
    segments = parts.path.rstrip("/").split("/")
    token = segments[-1] if len(segments) >= 2 and segments[-2] == "v" else None
    seal = unquote(parts.fragment) if parts.fragment else None
    url = text.split("#", 1)[0]
    return ParsedQr(url, parts.hostname.lower(), token, seal)


def _fail(vi: str, en: str) -> SealError:
    return SealError(f"{vi} / {en}")


def _inflate(data: bytes) -> bytes:
    decompressor = zlib.decompressobj()
    try:
        out = decompressor.decompress(data, MAX_INFLATED + 1)
    except zlib.error as exc:
        raise _fail("Dấu niêm phong bị hỏng", "the seal is damaged") from exc
    if len(out) > MAX_INFLATED or decompressor.unconsumed_tail:
        raise _fail("Dấu niêm phong quá lớn", "the seal is too large")
    return out


def verify_seal(seal: str, trusted_keys: Mapping[bytes, PublicKey]) -> SealClaims:
    """Check a seal against the issuers' published keys (by key id) and return what it vouches for."""
    if not seal.startswith(PREFIX):
        raise _fail("Không phải dấu niêm phong SealTrail", "not a SealTrail seal")
    if len(seal) > MAX_SEAL_CHARS:
        raise _fail("Dấu niêm phong quá lớn", "the seal is too large")
    try:
        packed = base45.b45decode(seal[len(PREFIX) :])
    except (ValueError, KeyError) as exc:
        raise _fail("Dấu niêm phong bị hỏng", "the seal is damaged") from exc
    inflated = _inflate(packed)
    try:
        obj: Any = cbor2.loads(inflated)
        if not isinstance(obj, cbor2.CBORTag) or obj.tag != 18 or len(obj.value) != 4:
            raise ValueError("not a COSE_Sign1")
        protected, _unprotected, payload, signature = obj.value
        header = cbor2.loads(protected)
        alg, kid = header[1], header[4]
        claims_map = cbor2.loads(payload)
    except (ValueError, KeyError, TypeError, IndexError, cbor2.CBORDecodeError) as exc:
        raise _fail("Dấu niêm phong bị hỏng", "the seal is damaged") from exc
    key = trusted_keys.get(bytes(kid))
    if key is None:
        raise _fail("Dấu niêm phong do một khóa không được công bố ký", "the seal was made with an unknown key")
    to_sign = _sig_structure(protected, payload)
    try:
        if alg == ALG_EDDSA and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, to_sign)
        elif alg == ALG_ES256 and isinstance(key, ec.EllipticCurvePublicKey) and len(signature) == 64:
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            key.verify(der, to_sign, ec.ECDSA(hashes.SHA256()))
        else:
            raise InvalidSignature
    except InvalidSignature as exc:
        raise _fail("Chữ ký của dấu niêm phong không hợp lệ", "the seal's signature is not valid") from exc
    try:
        return SealClaims(
            doc_id=str(claims_map[1]),
            kind=KINDS[int(claims_map[2])],
            holder_name=str(claims_map[3]),
            birth_date=date.fromordinal(int(claims_map[4]) + _EPOCH),
            issue_date=date.fromordinal(int(claims_map[5]) + _EPOCH),
            issuer=str(claims_map[6]),
            xml_sha256=bytes(claims_map[7]),
        )
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise _fail("Nội dung dấu niêm phong không đúng định dạng", "the seal's content is malformed") from exc


@dataclass(frozen=True)
class QrCheck:
    parsed: ParsedQr
    claims: SealClaims | None
    warnings: tuple[str, ...]


def check_qr(text: str, trusted_keys: Mapping[bytes, PublicKey], registered_hosts: Collection[str]) -> QrCheck:
    """Parse a QR's text, verify its seal, and warn when the link's host is not the issuer's own."""
    parsed = parse_qr_payload(text)
    warnings: list[str] = []
    hosts = {h.lower().split(":")[0] for h in registered_hosts}
    if parsed.host and parsed.host not in hosts:
        warnings.append(
            f"CẢNH BÁO: liên kết trỏ tới '{parsed.host}', không phải trang xác thực đã đăng ký của đơn vị cấp "
            f"({', '.join(sorted(hosts))}). Đây có thể là trang giả mạo. / WARNING: the link points to "
            f"'{parsed.host}', not the issuer's registered verification site; it may be a look-alike."
        )
    if parsed.url.startswith("http://") and parsed.host not in ("127.0.0.1", "localhost"):
        warnings.append("CẢNH BÁO: liên kết không dùng HTTPS / WARNING: the link does not use HTTPS")
    claims = verify_seal(parsed.seal, trusted_keys) if parsed.seal else None
    if claims is None:
        warnings.append("Mã QR không có dấu niêm phong ngoại tuyến / the QR code carries no offline seal")
    return QrCheck(parsed, claims, tuple(warnings))


def seal_matches_document(claims: SealClaims, attached_xml_sha256: Collection[str]) -> bool:
    """True when the seal vouches for this document: its XML hash is the hash of the XML attached to the file.

    A genuine QR copied from another document passes the seal check on its own; this is what catches it."""
    return claims.xml_sha256.hex() in {h.lower() for h in attached_xml_sha256}


OTHER_DOCUMENT = (
    "QR_OTHER_DOCUMENT",
    "Mã QR là thật nhưng thuộc về một văn bản khác, không phải tệp này",
    "The QR code is genuine but belongs to another document, not this file",
)


def load_public_keys(pem_data: bytes) -> dict[bytes, PublicKey]:
    """Issuer keys from concatenated PEM public keys (as `sealtrail demo --out` writes them)."""
    keys: dict[bytes, PublicKey] = {}
    for block in pem_data.split(b"-----END PUBLIC KEY-----"):
        if b"-----BEGIN PUBLIC KEY-----" not in block:
            continue
        key = serialization.load_pem_public_key(block + b"-----END PUBLIC KEY-----\n")
        if isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
            keys[key_id(key)] = key
    return keys
