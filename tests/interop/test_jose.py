"""The JWS securing every credential, signed through real PKCS#11 (SoftHSM2): RS256 with the school's seal key and
ES256 with an EC key made on the token, each checked by PyJWT (an independent JOSE implementation) and by our
verifier against the dev PKI's root."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest
from asn1crypto import x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization

from hsm_adapters.pkcs11 import Pkcs11KeyBackend, generate_key, import_certificates, make_csr
from signer.vc import sign_jwt
from verifier.vc import JwsError, VcVerifier, open_jws

PAYLOAD = {"@context": ["https://www.w3.org/ns/credentials/v2"], "type": ["VerifiableCredential"], "name": "Hằng"}


def _issue_with_key_usage(dev_pki, csr_pem: bytes) -> x509.Certificate:  # type: ignore[no-untyped-def]
    request = cx509.load_pem_x509_csr(csr_pem)
    ca_key = serialization.load_pem_private_key((dev_pki.directory / "keys" / "issuing.key.pem").read_bytes(), None)
    ca_cert = cx509.load_der_x509_certificate(dev_pki.issuing_ca.dump())
    now = datetime.now(UTC)
    usage = cx509.KeyUsage(True, True, False, False, False, False, False, False, False)
    cert = (
        cx509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(ca_cert.subject)
        .public_key(request.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(usage, critical=True)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _public_key(backend: Pkcs11KeyBackend):  # type: ignore[no-untyped-def]
    return cx509.load_der_x509_certificate(backend.certificate.dump()).public_key()


def _verifier(dev_pki) -> VcVerifier:  # type: ignore[no-untyped-def]
    return VcVerifier([dev_pki.root], [dev_pki.issuing_ca], lambda url: None, lambda link, entry: None)


def test_rs256_with_the_seal_key_on_the_token(softhsm, dev_pki) -> None:  # type: ignore[no-untyped-def]
    backend = Pkcs11KeyBackend(softhsm.config("sealtrail-school", "seal"))
    token = sign_jwt(PAYLOAD, backend, "https://school.example.vn/issuers/01#seal")
    assert pyjwt.get_unverified_header(token)["alg"] == "RS256"
    assert pyjwt.decode(token, key=_public_key(backend), algorithms=["RS256"]) == PAYLOAD
    opened = open_jws(token)
    assert opened.payload == PAYLOAD and opened.certificate.dump() == backend.certificate.dump()
    report = _verifier(dev_pki).verify(token)
    assert report.signature_valid and report.trusted  # (indeterminate: no status list or ledger here)
    assert report.verdict == "indeterminate"


def test_es256_with_an_ec_key_made_on_the_token(softhsm, dev_pki) -> None:  # type: ignore[no-untyped-def]
    config = softhsm.config("sealtrail-keygen", f"vc-ec-{secrets.token_hex(3)}")
    public = generate_key(config, key_type="ec", curve="secp256r1")
    csr = make_csr(config, public, {"common_name": "Trường THCS Nguyễn Du (seal, EC)", "country_name": "VN"})
    import_certificates(config, [_issue_with_key_usage(dev_pki, csr), dev_pki.issuing_ca])
    backend = Pkcs11KeyBackend(config)
    token = sign_jwt(PAYLOAD, backend, "kid")
    header = pyjwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    # PyJWT accepts only the raw 64-byte r||s form JOSE requires, so this also proves the DER → raw conversion.
    assert pyjwt.decode(token, key=_public_key(backend), algorithms=["ES256"]) == PAYLOAD
    assert _verifier(dev_pki).verify(token).trusted
    head, body, sig = token.split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    with pytest.raises(JwsError, match="does not verify"):
        open_jws(f"{head}.{body}.{flipped}")


def test_malformed_and_downgraded_tokens_are_refused(softhsm) -> None:  # type: ignore[no-untyped-def]
    backend = Pkcs11KeyBackend(softhsm.config("sealtrail-school", "seal"))
    token = sign_jwt(PAYLOAD, backend, "kid")
    _head, body, sig = token.split(".")
    none_alg = pyjwt.utils.base64url_encode(b'{"alg":"none","typ":"vc+jwt"}').decode()
    with pytest.raises(JwsError, match="unsupported JWS algorithm"):
        open_jws(f"{none_alg}.{body}.{sig}")
    hs256 = pyjwt.utils.base64url_encode(b'{"alg":"HS256","typ":"vc+jwt"}').decode()
    with pytest.raises(JwsError, match="unsupported JWS algorithm"):
        open_jws(f"{hs256}.{body}.{sig}")
    no_x5c = pyjwt.utils.base64url_encode(b'{"alg":"RS256","typ":"vc+jwt"}').decode()
    with pytest.raises(JwsError, match="x5c"):
        open_jws(f"{no_x5c}.{body}.{sig}")
    with pytest.raises(JwsError, match="three"):
        open_jws(token + ".x")


def test_status_is_unknown_not_valid_when_the_seal_key_is_unreachable(softhsm, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    from schemas.statuslist import list_url
    from sealtrail.deployment import Deployment
    from sealtrail.settings import Settings
    from verifier.credentials import online_status_source

    settings = Settings(
        data_dir=tmp_path,
        key_backend="pkcs11",
        pkcs11_pin_file=softhsm.pin_file,
        pkcs11_token_label="sealtrail-unplugged",  # no such token: the seal key cannot be reached
    )  # type: ignore[call-arg]
    dep = Deployment(settings)
    source = online_status_source(dep)
    assert source(list_url(settings.public_base_url, "01/2025-2026")) is None
    assert "could not be signed" in caplog.text and "sealtrail-unplugged" in caplog.text
    assert softhsm.pin not in caplog.text
