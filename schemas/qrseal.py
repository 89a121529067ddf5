"""The QR code's offline seal: a COSE_Sign1 (RFC 9052) over a small CBOR map, zlib-compressed and base45-encoded
(RFC 9285) with the prefix ``ST1:``, the way the EU Digital COVID Certificate packs its proof into a QR code.

The QR carries ``https://<verify-host>/v/<token>#ST1:<base45>``. The token (≥128 random bits) lets the issuer's
site show status online; the fragment never reaches a server and lets anyone check the document's key facts
offline against the issuer's published key. Base45's alphabet has a space and '%', which a URL fragment must
not carry raw, so those two are percent-encoded (``%20``, ``%25``) and decoded again before verification.

This module is the codec shared by the signer (which makes seals, ``signer.qrseal``) and the verifier (which
checks them, ``verifier.qrseal``): the claims, their CBOR form, the COSE structure to sign, the QR text.

Seals bind themselves to their link: claim 8 is the first 8 bytes of SHA-256 of the link's token
(:func:`schemas.qrlink.token_digest`), so a genuine seal of one document under another document's link fails.
Seals issued before that carry no claim 8; they still verify, with a note that they are of the older kind.
The link itself is read as a browser reads it (:mod:`schemas.qrlink`).
"""

from __future__ import annotations

import hashlib
import secrets
import zlib
from dataclasses import dataclass
from datetime import date

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from errors import PermanentError
from schemas.qrlink import LinkError, QrLink, parse_link

PREFIX = "ST1:"
ALG_ES256 = -7
ALG_EDDSA = -8
MAX_SEAL_CHARS = 2048
MAX_INFLATED = 4096
KINDS = ("transcript", "diploma", "copy", "translation")  # the code is the index: only append
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

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


def payload_bytes(claims: SealClaims) -> bytes:
    fields: dict[int, object] = {
        1: claims.doc_id,
        2: KINDS.index(claims.kind),
        3: claims.holder_name,
        4: claims.birth_date.toordinal() - EPOCH_ORDINAL,
        5: claims.issue_date.toordinal() - EPOCH_ORDINAL,
        6: claims.issuer,
        7: claims.xml_sha256,
    }
    if claims.link_digest is not None:
        fields[8] = claims.link_digest
    return cbor2.dumps(fields)


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])


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


class RefusedLink(SealError):
    """The QR's link is not of the plain form SealTrail prints; ``browser_host`` is where a browser would go."""

    def __init__(self, message: str, browser_host: str | None) -> None:
        super().__init__(message)
        self.browser_host = browser_host


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


def seal_error(vi: str, en: str) -> SealError:
    return SealError(f"{vi} / {en}")


def inflate(data: bytes) -> bytes:
    decompressor = zlib.decompressobj()
    try:
        out = decompressor.decompress(data, MAX_INFLATED + 1)
    except zlib.error as exc:
        raise seal_error("Dấu niêm phong bị hỏng", "the seal is damaged") from exc
    if len(out) > MAX_INFLATED or decompressor.unconsumed_tail:
        raise seal_error("Dấu niêm phong quá lớn", "the seal is too large")
    return out
