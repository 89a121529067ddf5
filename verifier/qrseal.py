"""Checking the QR code's offline seal against the issuers' published keys, and the QR's link against the
issuer's registered hosts. The seal's format is ``schemas.qrseal``; seals are made by ``signer.qrseal``."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import base45
import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from schemas.qrseal import (
    ALG_EDDSA,
    ALG_ES256,
    EPOCH_ORDINAL,
    KINDS,
    MAX_SEAL_CHARS,
    PREFIX,
    ParsedQr,
    PublicKey,
    SealClaims,
    SealError,
    inflate,
    key_id,
    parse_qr_payload,
    seal_error,
    sig_structure,
)

__all__ = [
    "OTHER_DOCUMENT",
    "PublicKey",
    "QrCheck",
    "SealClaims",
    "SealError",
    "check_qr",
    "load_public_keys",
    "parse_qr_payload",
    "seal_matches_document",
    "verify_seal",
]


def verify_seal(seal: str, trusted_keys: Mapping[bytes, PublicKey]) -> SealClaims:
    """Check a seal against the issuers' published keys (by key id) and return what it vouches for."""
    if not seal.startswith(PREFIX):
        raise seal_error("Không phải dấu niêm phong SealTrail", "not a SealTrail seal")
    if len(seal) > MAX_SEAL_CHARS:
        raise seal_error("Dấu niêm phong quá lớn", "the seal is too large")
    try:
        packed = base45.b45decode(seal[len(PREFIX) :])
    except (ValueError, KeyError) as exc:
        raise seal_error("Dấu niêm phong bị hỏng", "the seal is damaged") from exc
    inflated = inflate(packed)
    try:
        obj: Any = cbor2.loads(inflated)
        if not isinstance(obj, cbor2.CBORTag) or obj.tag != 18 or len(obj.value) != 4:
            raise ValueError("not a COSE_Sign1")
        protected, _unprotected, payload, signature = obj.value
        header = cbor2.loads(protected)
        alg, kid = header[1], header[4]
        claims_map = cbor2.loads(payload)
    except (ValueError, KeyError, TypeError, IndexError, cbor2.CBORDecodeError) as exc:
        raise seal_error("Dấu niêm phong bị hỏng", "the seal is damaged") from exc
    key = trusted_keys.get(bytes(kid))
    if key is None:
        raise seal_error("Dấu niêm phong do một khóa không được công bố ký", "the seal was made with an unknown key")
    to_sign = sig_structure(protected, payload)
    try:
        if alg == ALG_EDDSA and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, to_sign)
        elif alg == ALG_ES256 and isinstance(key, ec.EllipticCurvePublicKey) and len(signature) == 64:
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            key.verify(der, to_sign, ec.ECDSA(hashes.SHA256()))
        else:
            raise InvalidSignature
    except InvalidSignature as exc:
        raise seal_error("Chữ ký của dấu niêm phong không hợp lệ", "the seal's signature is not valid") from exc
    try:
        return SealClaims(
            doc_id=str(claims_map[1]),
            kind=KINDS[int(claims_map[2])],
            holder_name=str(claims_map[3]),
            birth_date=date.fromordinal(int(claims_map[4]) + EPOCH_ORDINAL),
            issue_date=date.fromordinal(int(claims_map[5]) + EPOCH_ORDINAL),
            issuer=str(claims_map[6]),
            xml_sha256=bytes(claims_map[7]),
        )
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise seal_error("Nội dung dấu niêm phong không đúng định dạng", "the seal's content is malformed") from exc


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
