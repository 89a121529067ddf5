"""Making the QR code's offline seal: sign the claims (COSE_Sign1, ES256 or EdDSA) with the school's QR key, a
software key in development or a key backend (HSM, token) in production. The codec is ``schemas.qrseal``."""

from __future__ import annotations

import hashlib
import zlib

import base45
import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from hsm_adapters.base import KeyBackend, SignatureMechanism
from schemas.qrseal import ALG_EDDSA, ALG_ES256, PREFIX, PrivateKey, SealClaims, key_id, payload_bytes, sig_structure


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
    payload = payload_bytes(claims)
    to_sign = sig_structure(protected, payload)
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
    encoded: bytes = base45.b45encode(zlib.compress(cose, 9))
    return PREFIX + encoded.decode("ascii")
