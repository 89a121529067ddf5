"""The PKCS#11 key backend against a real SoftHSM2 token: signing, sessions under threads, errors, key generation."""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pkcs11
import pytest
from asn1crypto import pem, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pkcs11 import Attribute, ObjectClass

from hsm_adapters.base import KeyBackend, KeyBackendError, SignatureMechanism
from hsm_adapters.pkcs11 import (
    MODULE_LOCK,
    Pkcs11Config,
    Pkcs11KeyBackend,
    generate_key,
    import_certificates,
    load_library,
    make_csr,
    open_session,
)
from sealtrail.devpki import SIGNER_ROLES, DevPki
from signer.pdf import PadesSigner, SignatureRequest
from tests.conftest import SOFTHSM_MODULE, SoftHsm
from tests.signing.test_pades import _pdf, _pdfsig
from verifier.pdf import PdfVerifier


def _verify(backend: KeyBackend, message: bytes, signature: bytes) -> None:
    public = cx509.load_der_x509_certificate(backend.certificate.dump()).public_key()
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature, message, ec.ECDSA(hashes.SHA256()))


@pytest.fixture(scope="module")
def school_keys(softhsm: SoftHsm) -> dict[str, Pkcs11KeyBackend]:
    return {role: Pkcs11KeyBackend(softhsm.config("sealtrail-school", role, pool_size=3)) for role in SIGNER_ROLES}


def test_three_signers_from_the_hsm_at_b_lt(
    school_keys: dict[str, Pkcs11KeyBackend], dev_pki: DevPki, tmp_path: Path
) -> None:
    signer = PadesSigner(trust_roots=[dev_pki.root], other_certs=[dev_pki.issuing_ca], timestamp_urls=[dev_pki.tsa_url])
    pdf = _pdf()
    for i, role in enumerate(SIGNER_ROLES):
        request = SignatureRequest(
            field_name=f"sig_{role}", signer_name=role, reason="HSM test", lock_document=i == len(SIGNER_ROLES) - 1
        )
        pdf = signer.sign(pdf, school_keys[role], request)
    path = tmp_path / "hsm-signed.pdf"
    path.write_bytes(pdf)
    text = _pdfsig(path)
    assert text.count("Signature Validation: Signature is Valid.") == 3, text
    report = PdfVerifier(trust_roots=[dev_pki.root]).verify(pdf)
    assert report.verdict == "valid", report
    assert [s.signer for s in report.signatures] == [
        dev_pki.cert(role).subject.native["common_name"] for role in SIGNER_ROLES
    ]


def test_backend_reads_certificate_and_chain_from_the_token(
    school_keys: dict[str, Pkcs11KeyBackend], dev_pki: DevPki
) -> None:
    backend = school_keys["principal"]
    assert isinstance(backend, KeyBackend)
    assert backend.certificate.dump() == dev_pki.cert("principal").dump()
    assert [c.dump() for c in backend.chain] == [dev_pki.issuing_ca.dump()]
    assert backend.mechanism is SignatureMechanism.RSA_PKCS1V15


def test_private_keys_on_the_token_cannot_be_read_out(softhsm: SoftHsm) -> None:
    config = softhsm.config("sealtrail-school", "seal")
    token = load_library(SOFTHSM_MODULE).get_token(token_label="sealtrail-school")
    with open_session(token, config) as session:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="seal")
        assert key[Attribute.SENSITIVE] is True and key[Attribute.EXTRACTABLE] is False
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            key[Attribute.PRIVATE_EXPONENT]


def test_many_threads_share_a_small_session_pool(school_keys: dict[str, Pkcs11KeyBackend]) -> None:
    """24 threads × 5 signatures over 3 sessions: no CKR_OPERATION_ACTIVE, no login race, every signature good."""
    backend = school_keys["seal"]
    results: list[tuple[bytes, bytes]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        try:
            for j in range(5):
                message = f"document {n}-{j}".encode()
                sig = backend.sign_digest(hashlib.sha256(message).digest(), "sha256")
                with lock:
                    results.append((message, sig))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(results) == 120
    for message, sig in results:
        _verify(backend, message, sig)
    pool = backend._pool
    assert pool is not None and pool._opened <= 3


# A restart invalidates handles that python-pkcs11 still finalises when its search iterators are collected; those
# late SessionHandleInvalid errors are printed by Cython's __del__ and are expected here.
_STALE_HANDLES = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@_STALE_HANDLES
def test_survives_a_module_restart(softhsm: SoftHsm) -> None:
    """Every session handle dies when the module restarts (as after an HSM reboot); the next signature reconnects."""
    backend = Pkcs11KeyBackend(softhsm.config("sealtrail-school", "principal"))
    digest = hashlib.sha256(b"before").digest()
    backend.sign_digest(digest, "sha256")
    backend.lib.reinitialize()
    sig = backend.sign_digest(hashlib.sha256(b"after").digest(), "sha256")
    _verify(backend, b"after", sig)


@_STALE_HANDLES
def test_unplugged_token_is_reported_and_plugging_it_back_works(softhsm: SoftHsm, tmp_path: Path) -> None:
    backend = Pkcs11KeyBackend(softhsm.config("sealtrail-usb", "homeroom_teacher"))
    backend.sign_digest(hashlib.sha256(b"x").digest(), "sha256")
    token_dir = softhsm.token_dir("sealtrail-usb")
    parked = tmp_path / "unplugged"
    shutil.move(token_dir, parked)
    try:
        backend.lib.reinitialize()  # the module notices the token is gone
        with pytest.raises(KeyBackendError, match="sealtrail-usb") as err:
            backend.sign_digest(hashlib.sha256(b"y").digest(), "sha256")
        assert "plugged in" in str(err.value)
    finally:
        shutil.move(parked, token_dir)
    sig = backend.sign_digest(hashlib.sha256(b"z").digest(), "sha256")
    _verify(backend, b"z", sig)


def test_wrong_pin_is_named_and_never_shown(softhsm: SoftHsm, caplog: pytest.LogCaptureFixture) -> None:
    # A fresh library state, so this login is a real C_Login and not "already logged in" from other tests.
    load_library(SOFTHSM_MODULE).reinitialize()
    caplog.set_level(logging.DEBUG)
    config = Pkcs11Config(
        module=SOFTHSM_MODULE, pin_file=softhsm.wrong_pin_file, token_label="sealtrail-keygen", key_label="any"
    )
    with pytest.raises(KeyBackendError, match=r"PIN .* is wrong") as err:
        Pkcs11KeyBackend(config)
    assert "will not retry" in str(err.value)
    assert "000000" not in str(err.value) and "000000" not in caplog.text
    assert softhsm.pin not in repr(config) and softhsm.pin not in caplog.text


def test_missing_module_key_and_token_get_plain_errors(softhsm: SoftHsm, tmp_path: Path) -> None:
    with pytest.raises(KeyBackendError, match=r"module .* does not exist"):
        Pkcs11KeyBackend(Pkcs11Config(module=tmp_path / "libvendor.so", pin_file=softhsm.pin_file, token_label="x"))
    with pytest.raises(KeyBackendError, match=r"No token 'nope' is present .*'sealtrail-school'"):
        Pkcs11KeyBackend(softhsm.config("nope", "seal"))
    with pytest.raises(KeyBackendError, match="no private key 'vice_principal'"):
        Pkcs11KeyBackend(softhsm.config("sealtrail-school", "vice_principal"))
    with pytest.raises(KeyBackendError, match=r"PIN file .* is empty"):
        empty = tmp_path / "empty.pin"
        empty.write_text("\n")
        Pkcs11KeyBackend(Pkcs11Config(module=SOFTHSM_MODULE, pin_file=empty, token_label="sealtrail-school"))


def _issue(dev_pki: DevPki, csr_pem: bytes) -> x509.Certificate:
    """The dev issuing CA signs a CSR (what the real CA does with the request the school sends)."""
    request = cx509.load_pem_x509_csr(csr_pem)
    assert request.is_signature_valid
    ca_key = serialization.load_pem_private_key((dev_pki.directory / "keys" / "issuing.key.pem").read_bytes(), None)
    ca_cert = cx509.load_der_x509_certificate(dev_pki.issuing_ca.dump())
    now = datetime.now(UTC)
    cert = (
        cx509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(ca_cert.subject)
        .public_key(request.public_key())
        .serial_number(cx509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


@pytest.mark.parametrize("key_type", ["ec", "rsa"])
def test_key_made_on_the_token_gets_a_csr_a_certificate_and_signs(
    softhsm: SoftHsm, dev_pki: DevPki, tmp_path: Path, key_type: str
) -> None:
    config = softhsm.config("sealtrail-keygen", f"school-seal-2026-{key_type}")
    public = generate_key(config, key_type=key_type, bits=2048)
    csr_pem = make_csr(config, public, {"common_name": "Trường THCS Nguyễn Du", "country_name": "VN"})
    (tmp_path / "req.pem").write_bytes(csr_pem)
    out = subprocess.run(
        ["openssl", "req", "-in", str(tmp_path / "req.pem"), "-verify", "-noout", "-subject", "-nameopt", "utf8"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0 and "verify OK" in out.stdout + out.stderr, out
    assert "Trường THCS Nguyễn Du" in out.stdout

    cert = _issue(dev_pki, csr_pem)
    import_certificates(config, [cert, dev_pki.issuing_ca])
    backend = Pkcs11KeyBackend(config)
    assert backend.certificate.dump() == cert.dump()
    assert backend.mechanism is (SignatureMechanism.ECDSA if key_type == "ec" else SignatureMechanism.RSA_PKCS1V15)
    sig = backend.sign_digest(hashlib.sha256(b"hello").digest(), "sha256")
    _verify(backend, b"hello", sig)
    with pytest.raises(KeyBackendError, match="already holds a key"):
        generate_key(config, key_type=key_type)


def test_the_cli_reads_the_pin_from_a_file_only(softhsm: SoftHsm, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sealtrail.cli import app

    env = {
        "SEALTRAIL_DATA_DIR": str(tmp_path / "var"),
        "SEALTRAIL_PKCS11_MODULE": str(SOFTHSM_MODULE),
        "SEALTRAIL_PKCS11_TOKEN_LABEL": "sealtrail-keygen",
        "SEALTRAIL_PKCS11_PIN_FILE": str(softhsm.pin_file),
    }
    csr = tmp_path / "cli.csr"
    result = CliRunner().invoke(
        app,
        ["hsm", "keygen", "--label", "cli-key", "--type", "ec", "--subject", "CN=Hiệu trưởng,C=VN", "--csr", str(csr)],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert pem.detect(csr.read_bytes())
    assert softhsm.pin not in result.output
    result = CliRunner().invoke(app, ["hsm", "keygen", "--pin", "1234"], env=env)
    assert result.exit_code != 0  # there is no way to pass a PIN on the command line
    bad = CliRunner().invoke(
        app, ["hsm", "import-cert", "--label", "nope", str(csr)], env={**env, "SEALTRAIL_PKCS11_TOKEN_LABEL": "gone"}
    )
    assert bad.exit_code == 1 and "No token 'gone' is present" in bad.output


def test_a_key_removed_from_the_token_is_looked_up_again_not_used_from_a_stale_handle(
    softhsm: SoftHsm, dev_pki: DevPki, tmp_path: Path
) -> None:
    cert_file = tmp_path / "cert.pem"
    cert_file.write_bytes(pem.armor("CERTIFICATE", dev_pki.cert("principal").dump()))
    config = softhsm.config("sealtrail-keygen", "short-lived", cert_file=cert_file)
    generate_key(config, key_type="ec")
    backend = Pkcs11KeyBackend(config)
    backend.sign_digest(hashlib.sha256(b"x").digest(), "sha256")  # the key is now found and kept for the session
    with MODULE_LOCK, backend._current_pool().token.open(rw=True) as session:
        session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="short-lived").destroy()
    with pytest.raises(KeyBackendError, match="There is no private key 'short-lived'"):
        backend.sign_digest(hashlib.sha256(b"y").digest(), "sha256")
    backend.close()
