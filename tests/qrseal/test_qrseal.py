"""The QR's offline seal: round trips, forgeries, malformed input, and a real QR image read by zbarimg."""

from __future__ import annotations

import hashlib
import subprocess
import zlib
from datetime import date
from pathlib import Path

import base45
import pytest
import qrcode
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.qrseal import PREFIX, SealClaims, SealError, key_id, new_token, parse_qr_payload, qr_payload
from signer.qrseal import make_seal
from verifier.qrseal import check_qr, verify_seal

CLAIMS = SealClaims(
    doc_id="VB-2025-3F9A1C2B7D4E",
    kind="diploma",
    holder_name="Nguyễn Thị Thu Hằng",
    birth_date=date(2007, 3, 14),
    issue_date=date(2025, 9, 5),
    issuer="79000701",
    xml_sha256=hashlib.sha256(b"<vanbang/>").digest(),
)


@pytest.fixture(params=["p256", "ed25519"])
def key(request: pytest.FixtureRequest) -> ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey:
    if request.param == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def test_seal_round_trip(key) -> None:  # type: ignore[no-untyped-def]
    seal = make_seal(CLAIMS, key)
    assert seal.startswith(PREFIX)
    assert verify_seal(seal, {key_id(key.public_key()): key.public_key()}) == CLAIMS


def test_a_seal_from_another_key_is_refused(key) -> None:  # type: ignore[no-untyped-def]
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(SealError, match="unknown key"):
        verify_seal(make_seal(CLAIMS, key), {key_id(other.public_key()): other.public_key()})


def test_a_forged_claim_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    seal = make_seal(CLAIMS, key)
    cose = bytearray(zlib.decompress(base45.b45decode(seal[len(PREFIX) :])))
    at = cose.find("Hằng".encode())
    cose[at] ^= 0x01
    forged = PREFIX + base45.b45encode(zlib.compress(bytes(cose))).decode()
    with pytest.raises(SealError, match="not valid"):
        verify_seal(forged, {key_id(key.public_key()): key.public_key()})


@pytest.mark.parametrize("bad", ["ST1:", "ST1:%%%", "XX1:ABC", PREFIX + base45.b45encode(b"\x00\x01").decode()])
def test_malformed_seals_are_clear_errors(bad: str) -> None:
    with pytest.raises(SealError):
        verify_seal(bad, {})


def test_a_compression_bomb_is_refused() -> None:
    bomb = PREFIX + base45.b45encode(zlib.compress(b"\x00" * 1_000_000, 9)).decode()
    with pytest.raises(SealError, match="too large"):
        verify_seal(bomb, {})


def test_qr_image_decoded_by_zbarimg_verifies(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    text = qr_payload("https://xacthuc.truong.edu.vn", new_token(), make_seal(CLAIMS, key))
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=4, border=4)
    qr.add_data(text)
    qr.make(fit=True)
    qr.make_image().save(tmp_path / "qr.png")
    decoded = subprocess.run(["zbarimg", "--raw", "-q", str(tmp_path / "qr.png")], capture_output=True, text=True)
    assert decoded.stdout.strip() == text
    result = check_qr(decoded.stdout.strip(), {key_id(key.public_key()): key.public_key()}, ["xacthuc.truong.edu.vn"])
    assert result.claims == CLAIMS and result.warnings == ()
    assert qr.version <= 12, f"QR version {qr.version} is too dense for a 3 cm print"


def test_a_look_alike_host_is_warned_about() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    text = qr_payload("https://xacthuc.truong.edu.vn.evil.example", new_token(), make_seal(CLAIMS, key))
    result = check_qr(text, {key_id(key.public_key()): key.public_key()}, ["xacthuc.truong.edu.vn"])
    assert result.claims == CLAIMS
    assert any("CẢNH BÁO" in w for w in result.warnings)


def test_token_has_128_bits_and_is_in_the_link() -> None:
    token = new_token()
    assert len(token) == 26
    assert parse_qr_payload(f"https://h.vn/v/{token}#ST1:X").token == token


@settings(max_examples=40, deadline=None)
@given(
    name=st.text(
        alphabet="ĂăÂâĐđÊêÔôƠơƯưàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ abcxyz",
        min_size=1,
        max_size=40,
    )
)
def test_any_vietnamese_name_survives_the_round_trip(name: str) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    claims = SealClaims(**{**CLAIMS.__dict__, "holder_name": name})
    text = qr_payload("https://h.vn", new_token(), make_seal(claims, key))
    parsed = parse_qr_payload(text)
    assert parsed.seal is not None
    assert verify_seal(parsed.seal, {key_id(key.public_key()): key.public_key()}).holder_name == name
