"""QR links read as a browser reads them (WHATWG URL Standard), and the seal's binding to its link, without an
installation: each case a real seal made with a fresh key."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest
import qrcode
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from schemas.qrlink import DIGEST_BYTES, LinkError, parse_link, registered_host, token_digest
from schemas.qrseal import SealClaims, SealError, key_id, parse_qr_payload, payload_bytes, qr_payload
from signer.qrseal import make_seal
from verifier.qrseal import OLDER_KIND, OTHER_LINK, check_qr, verify_seal

HOST = "xacthuc.truong.edu.vn"
# Fixed tokens of the issued shape (26 base32 characters): parametrised test ids must be the same in every
# pytest-xdist worker, so they cannot come from new_token() at import time.
TOKEN = "KXUIMRH6RN3C26PKU7TYHFRU4Q"
OTHER_TOKEN = "D3J5QWZL7T2MNB4XVC6YRH7PKA"
KEY = ec.generate_private_key(ec.SECP256R1())
KEYS = {key_id(KEY.public_key()): KEY.public_key()}
CLAIMS = SealClaims(
    doc_id="VB-2025-3F9A1C2B7D4E",
    kind="diploma",
    holder_name="Nguyễn Thị Thu Hằng",
    birth_date=date(2007, 3, 14),
    issue_date=date(2025, 9, 5),
    issuer="79000701",
    xml_sha256=hashlib.sha256(b"<vanbang/>").digest(),
    link_digest=token_digest(TOKEN),
)
SEAL = make_seal(CLAIMS, KEY)
FRAGMENT = qr_payload(f"https://{HOST}", TOKEN, SEAL).split("#", 1)[1]


def _link(address: str) -> str:
    return f"{address}#{FRAGMENT}"


def test_the_plain_link_verifies_and_is_bound() -> None:
    check = check_qr(_link(f"https://{HOST}/v/{TOKEN}"), KEYS, [HOST])
    assert check.claims == CLAIMS and check.warnings == () and check.notes == ()
    assert check.parsed.token == TOKEN and check.parsed.host == HOST


def test_a_backslash_link_is_refused_and_names_the_host_a_browser_opens() -> None:
    """urlsplit reads host xacthuc.truong.edu.vn here (after the user name 'evil.example\\'); a browser turns the
    backslash into '/' and opens evil.example."""
    text = _link(f"http://evil.example\\@{HOST}/v/{TOKEN}")
    with pytest.raises(LinkError) as refused:
        parse_link(text)
    assert refused.value.browser_host == "evil.example"
    with pytest.raises(SealError) as exc:
        check_qr(text, KEYS, [HOST])
    message = str(exc.value)
    assert "gạch chéo ngược" in message and "backslash" in message
    assert "'evil.example'" in message and "CẢNH BÁO" in message and "look-alike" in message


@pytest.mark.parametrize(
    "address",
    [
        f"https://user@{HOST}/v/{TOKEN}",
        f"https://user:pass@{HOST}/v/{TOKEN}",
        f"https://@{HOST}/v/{TOKEN}",  # an empty user name: browsers drop it, still refused
        f"https://{HOST}@evil.example/v/{TOKEN}",  # the classic: the registered name as a user name
    ],
)
def test_a_user_name_in_the_link_is_refused(address: str) -> None:
    with pytest.raises(SealError, match="user name") as exc:
        check_qr(_link(address), KEYS, [HOST])
    browser_host = "evil.example" if address.endswith(f"evil.example/v/{TOKEN}") else HOST
    assert f"a browser would open '{browser_host}'" in str(exc.value)
    assert ("look-alike" in str(exc.value)) == (browser_host != HOST)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        (f"https://{HOST}/v/%41{TOKEN[1:]}", "percent-encoded"),
        (f"https://{HOST}%2eevil.example/v/{TOKEN}", "percent-encoded"),
        (f"https://{HOST}/v/{TOKEN}?next=/x", "query"),
        (f"https://{HOST}/v/{TOKEN}/", "/v/<token>"),
        (f"https://{HOST}/{TOKEN}", "/v/<token>"),
        (f"https://{HOST}/v/{TOKEN}.pdf", "/v/<token>"),
        (f"https://{HOST}\t/v/{TOKEN}", "control characters"),
        (f"https://{HOST}/v/ {TOKEN}", "control characters"),
        (f"javascript://{HOST}/v/{TOKEN}", "not a verification link"),
        (f"ftp://{HOST}/v/{TOKEN}", "not a verification link"),
    ],
)
def test_links_outside_the_plain_form_are_refused(address: str, reason: str) -> None:
    with pytest.raises(SealError, match=reason.replace("?", r"\?")):
        check_qr(_link(address), KEYS, [HOST])


@pytest.mark.parametrize(
    "address",
    [
        f"HTTPS://XacThuc.Truong.EDU.VN/v/{TOKEN}",  # mixed case: browsers lower-case the host
        f"https://{HOST}./v/{TOKEN}",  # a trailing dot: the same DNS name
        f"https://{HOST}:443/v/{TOKEN}",  # the default port spelled out
        f"https://{HOST}:8443/v/{TOKEN}",  # the registered host on another port: the same owner
        f"https://ｘａｃｔｈｕｃ.truong.edu.vn/v/{TOKEN}",  # full-width letters: browsers fold them (IDNA mapping)
    ],
)
def test_spellings_of_the_registered_host_are_the_registered_host(address: str) -> None:
    check = check_qr(f"  {_link(address)}\n", KEYS, [HOST])  # surrounding white space is stripped, as browsers do
    assert check.claims == CLAIMS and check.warnings == (), check.warnings


def test_an_idn_look_alike_is_warned_about_in_both_forms() -> None:
    check = check_qr(_link(f"https://xácthuc.truong.edu.vn/v/{TOKEN}"), KEYS, [HOST])
    assert check.claims == CLAIMS
    (warning,) = check.warnings
    assert "xácthuc.truong.edu.vn" in warning and "xn--xcthuc-pta.truong.edu.vn" in warning and "look-alike" in warning


def test_a_registered_idn_host_matches_its_punycode() -> None:
    idn = "xácthực.trường.vn"
    check = check_qr(_link(f"https://{idn}/v/{TOKEN}"), KEYS, [registered_host(idn)[0]])
    assert check.warnings == ()
    assert check_qr(_link(f"https://{idn.upper()}/v/{TOKEN}"), KEYS, [idn]).warnings == ()


def test_a_registered_port_must_match() -> None:
    assert check_qr(_link(f"http://127.0.0.1:8000/v/{TOKEN}"), KEYS, ["127.0.0.1:8000"]).warnings == ()
    other = check_qr(_link(f"http://127.0.0.1:9000/v/{TOKEN}"), KEYS, ["127.0.0.1:8000"])
    assert any("127.0.0.1:9000" in w and "look-alike" in w for w in other.warnings)


def test_a_genuine_seal_under_another_documents_link_fails() -> None:
    swapped = _link(f"https://{HOST}/v/{OTHER_TOKEN}")
    assert verify_seal(parse_qr_payload(swapped).seal or "", KEYS) == CLAIMS  # the seal alone is genuine
    with pytest.raises(SealError) as exc:
        check_qr(swapped, KEYS, [HOST])
    assert str(exc.value) == OTHER_LINK


def test_a_seal_of_the_older_kind_still_verifies_with_a_note() -> None:
    older = make_seal(SealClaims(**{**CLAIMS.__dict__, "link_digest": None}), KEY)
    for token in (TOKEN, OTHER_TOKEN):  # an older seal cannot tell its own link from another
        check = check_qr(qr_payload(f"https://{HOST}", token, older), KEYS, [HOST])
        assert check.claims is not None and check.claims.link_digest is None
        assert check.warnings == () and check.notes == (OLDER_KIND,)


def test_the_binding_costs_a_few_characters() -> None:
    # Exact, on the signed payload: claim 8 is one CBOR key, a byte-string header and the 8-byte digest. (The printed
    # link's length also moves with the random signature bytes and the compression, so it is not compared here.)
    older = payload_bytes(SealClaims(**{**CLAIMS.__dict__, "link_digest": None}))
    assert len(payload_bytes(CLAIMS)) - len(older) == 1 + 1 + DIGEST_BYTES


def test_a_bare_seal_is_checked_but_not_matched_to_a_link() -> None:
    check = check_qr(SEAL, KEYS, [HOST])
    assert check.claims == CLAIMS and any("without its link" in w for w in check.warnings)


def _qr_image(path: Path, *texts: str) -> Path:
    """A PNG with one QR code per text, side by side."""
    images = []
    for text in texts:
        qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=4, border=4)
        qr.add_data(text)
        qr.make(fit=True)
        images.append(qr.make_image().get_image().convert("L"))
    sheet = Image.new("L", (sum(i.width for i in images), max(i.height for i in images)), 255)
    x = 0
    for image in images:
        sheet.paste(image, (x, 0))
        x += image.width
    sheet.save(path)
    return path


def test_an_image_is_read_whole_and_with_one_code_only(tmp_path: Path) -> None:
    from verifier.offline import read_qr

    genuine = qr_payload(f"https://{HOST}", TOKEN, SEAL)
    assert read_qr(str(_qr_image(tmp_path / "one.png", genuine))) == genuine
    # A code whose text goes on after a line break is read whole (then refused), never cut at the break.
    broken = f"{genuine}\nhttps://evil.example/"
    assert read_qr(str(_qr_image(tmp_path / "break.png", broken))) == broken
    with pytest.raises(SealError, match="control characters"):
        check_qr(broken, KEYS, [HOST])
    # Two different codes: which one was checked must not be a guess.
    other = qr_payload(f"https://{HOST}", OTHER_TOKEN, SEAL)
    with pytest.raises(SealError, match="2 different QR codes"):
        read_qr(str(_qr_image(tmp_path / "two.png", genuine, other)))


PIECES = ["https://", "http:", "\\", "/", "@", ":", "%", "%2e", "%40", "#", "?", ".", "v/", TOKEN, HOST, "xn--", "ｅ"]
PIECES += ["á", "\t", "\n", " ", "[::1]", ":8443", "\x00", "ST1:", FRAGMENT[:20], FRAGMENT]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=12).map("".join) | st.text(max_size=80))
def test_any_text_is_a_check_or_a_clear_refusal(text: str) -> None:
    """Whatever a QR holds, the answer is a QrCheck or a SealError with a bilingual reason, never another error;
    and what is accepted is the plain form, its host the one a browser opens."""
    try:
        check = check_qr(text, KEYS, [HOST])
    except SealError as refused:
        assert " / " in str(refused)
        return
    link = check.parsed.link
    if link is not None:
        assert "@" not in text.split("#")[0] and "\\" not in text
        assert link.url.endswith(f"/v/{link.token}")
