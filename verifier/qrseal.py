"""The QR code's offline seal: a COSE_Sign1 (RFC 9052) over a small CBOR map, zlib-compressed and base45-encoded
(RFC 9285) with the prefix ``ST1:``, the way the EU Digital COVID Certificate packs its proof into a QR code.

The QR carries ``https://<verify-host>/v/<token>#ST1:<base45>``. The token (≥128 random bits) lets the issuer's
site show status online; the fragment never reaches a server and lets anyone check the document's key facts
offline against the issuer's published key. Base45's alphabet has a space and '%', which a URL fragment must
not carry raw, so those two are percent-encoded (``%20``, ``%25``) and decoded again before verification.

Seals bind themselves to their link: claim 8 is the first 8 bytes of SHA-256 of the link's token
(:func:`schemas.qrlink.token_digest`), so a genuine seal of one document under another document's link fails.
Seals issued before that carry no claim 8; they still verify, with a note that they are of the older kind.
The link itself is read as a browser reads it (:mod:`schemas.qrlink`).
"""

from __future__ import annotations

import hashlib
import secrets
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import base45
import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from hsm_adapters.base import KeyBackend, SignatureMechanism
from schemas.qrlink import (
    LinkError,
    QrLink,
    display_host,
    host_is_registered,
    parse_link,
    registered_host,
    token_digest,
)

PREFIX = "ST1:"
ALG_ES256 = -7
ALG_EDDSA = -8
MAX_SEAL_CHARS = 2048
MAX_INFLATED = 4096
KINDS = ("transcript", "diploma", "copy", "translation")  # the code is the index: only append
_EPOCH = date(1970, 1, 1).toordinal()

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


class SealError(ValueError):
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
    link_digest: bytes | None = None
    """SHA-256 of the link's token, cut to 8 bytes (claim 8); None in seals of the older kind, not bound to a link."""


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
    fields: dict[int, object] = {
        1: claims.doc_id,
        2: KINDS.index(claims.kind),
        3: claims.holder_name,
        4: claims.birth_date.toordinal() - _EPOCH,
        5: claims.issue_date.toordinal() - _EPOCH,
        6: claims.issuer,
        7: claims.xml_sha256,
    }
    if claims.link_digest is not None:
        fields[8] = claims.link_digest
    return cbor2.dumps(fields)


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
    link: QrLink | None = None


def parse_qr_payload(text: str) -> ParsedQr:
    """A QR's text: a bare ``ST1:`` seal, or a link read as a browser reads it (refused unless plain; see
    :mod:`schemas.qrlink`). Raises :class:`SealError`; for a refused link, :class:`RefusedLink`."""
    text = text.strip()
    if text.startswith(PREFIX):
        return ParsedQr("", "", None, text)
    try:
        link = parse_link(text)
    except LinkError as exc:
        raise RefusedLink(str(exc), exc.browser_host) from None
    return ParsedQr(link.url, link.host, link.token, link.seal, link)


class RefusedLink(SealError):
    """The QR's link is not of the plain form SealTrail prints; ``browser_host`` is where a browser would go."""

    def __init__(self, message: str, browser_host: str | None) -> None:
        super().__init__(message)
        self.browser_host = browser_host


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
            link_digest=_digest(claims_map[8]) if 8 in claims_map else None,
        )
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise _fail("Nội dung dấu niêm phong không đúng định dạng", "the seal's content is malformed") from exc


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
