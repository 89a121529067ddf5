"""QR links read as a browser reads them (WHATWG URL Standard), and the seal's binding to its link, without an
installation: each case a real seal made with a fresh key."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from schemas.qrlink import LinkError, parse_link, registered_host, token_digest
from schemas.qrseal import SealClaims, SealError, key_id, new_token, parse_qr_payload, qr_payload
from signer.qrseal import make_seal
from verifier.qrseal import OLDER_KIND, OTHER_LINK, check_qr, verify_seal

HOST = "xacthuc.truong.edu.vn"
TOKEN = new_token()
OTHER_TOKEN = new_token()
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
    older = qr_payload(f"https://{HOST}", TOKEN, make_seal(SealClaims(**{**CLAIMS.__dict__, "link_digest": None}), KEY))
    bound = qr_payload(f"https://{HOST}", TOKEN, SEAL)
    # 10 bytes of CBOR (claim 8) ≈ 15 base45 characters; random bytes and the %20/%25 escapes vary it a little
    assert 0 < len(bound) - len(older) <= 24, (len(older), len(bound))


def test_a_bare_seal_is_checked_but_not_matched_to_a_link() -> None:
    check = check_qr(SEAL, KEYS, [HOST])
    assert check.claims == CLAIMS and any("without its link" in w for w in check.warnings)
