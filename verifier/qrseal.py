"""Checking the QR code's offline seal against the issuers' published keys, and the QR's link against the
issuer's registered hosts (read as a browser reads it, ``schemas.qrlink``), and that the seal is the link's own
(claim 8). The seal's format is ``schemas.qrseal``; seals are made by ``signer.qrseal``."""

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

from schemas.qrlink import display_host, host_is_registered, registered_host, token_digest
from schemas.qrseal import (
    ALG_EDDSA,
    ALG_ES256,
    EPOCH_ORDINAL,
    KINDS,
    MAX_SEAL_CHARS,
    PREFIX,
    ParsedQr,
    PublicKey,
    RefusedLink,
    SealClaims,
    SealError,
    inflate,
    key_id,
    parse_qr_payload,
    seal_error,
    sig_structure,
)

__all__ = [
    "OLDER_KIND",
    "OTHER_DOCUMENT",
    "OTHER_LINK",
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
            link_digest=_digest(claims_map[8]) if 8 in claims_map else None,
        )
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise seal_error("Nội dung dấu niêm phong không đúng định dạng", "the seal's content is malformed") from exc


def _digest(value: object) -> bytes:
    if not isinstance(value, bytes) or len(value) < 8:
        raise ValueError("claim 8 is not a token digest")
    return value


@dataclass(frozen=True)
class QrCheck:
    parsed: ParsedQr
    claims: SealClaims | None
    warnings: tuple[str, ...]
    notes: tuple[str, ...] = ()
    """Facts worth telling that do not make the QR suspect (a seal of the older kind, not bound to its link)."""


OLDER_KIND = (
    "Ghi chú: dấu niêm phong thuộc loại cũ (cấp trước khi dấu được gắn với liên kết), nên không xác nhận được "
    "liên kết này thuộc đúng văn bản; hãy mở liên kết để xem văn bản trên trang của đơn vị cấp. / Note: the seal "
    "is of the older kind (issued before seals were bound to their link), so it cannot confirm that this link "
    "belongs to this document; open the link to see the document on the issuer's site."
)
OTHER_LINK = (
    "Dấu niêm phong là thật nhưng liên kết trong mã QR thuộc một văn bản khác (mã QR đã bị ghép) / the seal is "
    "genuine but the QR's link belongs to another document (the QR code was put together from two)"
)


def _look_alike(host: str, hosts: Collection[str]) -> str:
    return (
        f"CẢNH BÁO: liên kết trỏ tới '{host}', không phải trang xác thực đã đăng ký của đơn vị cấp "
        f"({', '.join(sorted(hosts))}). Đây có thể là trang giả mạo. / WARNING: the link points to "
        f"'{host}', not the issuer's registered verification site; it may be a look-alike."
    )


def check_qr(text: str, trusted_keys: Mapping[bytes, PublicKey], registered_hosts: Collection[str]) -> QrCheck:
    """Parse a QR's text as a browser would, verify its seal and that the seal is this link's, and warn when the
    link's host is not the issuer's own. Raises :class:`SealError` for a refused link or a seal that fails."""
    hosts: list[tuple[str, int | None]] = []
    for entry in registered_hosts:
        try:
            hosts.append(registered_host(entry))
        except ValueError:
            continue  # not a host name (a damaged list): it can match no link, and the warning names those that do
    shown = sorted(display_host(h, p) for h, p in hosts)
    try:
        parsed = parse_qr_payload(text)
    except RefusedLink as exc:
        if exc.browser_host and exc.browser_host not in {h for h, _ in hosts}:
            raise SealError(f"{exc}\n{_look_alike(display_host(exc.browser_host), shown)}") from None
        raise
    warnings: list[str] = []
    notes: list[str] = []
    link = parsed.link
    if link is not None and not host_is_registered(link, hosts):
        warnings.append(_look_alike(link.display_host, shown))
    if parsed.url.startswith("http://") and parsed.host not in ("127.0.0.1", "localhost"):
        warnings.append("CẢNH BÁO: liên kết không dùng HTTPS / WARNING: the link does not use HTTPS")
    claims = verify_seal(parsed.seal, trusted_keys) if parsed.seal else None
    if claims is None:
        warnings.append("Mã QR không có dấu niêm phong ngoại tuyến / the QR code carries no offline seal")
    elif claims.link_digest is None:
        notes.append(OLDER_KIND)
    elif parsed.token is None:
        warnings.append(
            "Dấu niêm phong không kèm liên kết nên không đối chiếu được / the seal comes without its link, so it "
            "cannot be matched to one"
        )
    elif token_digest(parsed.token) != claims.link_digest:
        raise SealError(OTHER_LINK)
    return QrCheck(parsed, claims, tuple(warnings), tuple(notes))


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
