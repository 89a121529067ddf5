"""The host SealTrail reads in a QR's link is the host a real browser opens: several hundred tricky links, each
read by schemas.qrlink (ada-url) and by headless Chromium's own URL parser (an independent implementation)."""

from __future__ import annotations

import itertools

from schemas.qrlink import LinkError, parse_link
from tests.browser import chromium

TOKEN = "E5QJWWZT3ID7WP36MIPZGBCBOY"
SCHEMES = ["https://", "http://", "HTTPS://", "https:/", "https:\\\\", "https:"]
FIRST = [
    "evil.example",
    "xacthuc.truong.edu.vn",
    "XacThuc.Truong.EDU.vn.",
    "xácthực.trường.vn",
    "ｅｖｉｌ.example",
    "xacthuc.truong.edu.vn%2eevil.example",
    "user:pw",
    "",
]
JOINS = ["", "\\", "@", "\\@", "%40", "/", "\t", ":8443@", "\\\\@", ":@"]
SECOND = ["xacthuc.truong.edu.vn", "evil.example", "127.0.0.1:8000", "0x7f.1", "[::1]"]
TAILS = [f"/v/{TOKEN}", f":8443/v/{TOKEN}", f"/x/../v/{TOKEN}", f"/v/{TOKEN}?x=1", f"/v/{TOKEN}#ST1:AB%20C"]


def _links() -> list[str]:
    links = {f"{s}{a}{j}{b}{t}" for s, a, j, b, t in itertools.product(SCHEMES, FIRST, JOINS, SECOND, TAILS[:1])}
    links |= {f"https://{a}{t}" for a, t in itertools.product(FIRST, TAILS)}
    return sorted(links)


def _ours(text: str) -> str | None:
    try:
        return parse_link(text).host
    except LinkError as refused:
        return refused.browser_host


def test_our_host_is_chromiums_host() -> None:
    links = _links()
    assert len(links) > 300
    with chromium() as browser:
        page = browser.new_page()
        theirs = page.evaluate(
            """links => links.map(text => {
                try {
                    const url = new URL(text);
                    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname
                        ? url.hostname.replace(/\\.$/, "") : null;
                } catch (e) { return null; }
            })""",
            links,
        )
    ours = [_ours(text) for text in links]
    differ = [(t, o, c) for t, o, c in zip(links, ours, theirs, strict=True) if o != c]
    assert differ == [], differ[:10]
    accepted = [text for text in links if _accepted(text)]
    assert accepted and all("@" not in t.split("#")[0] and "\\" not in t for t in accepted)


def _accepted(text: str) -> bool:
    try:
        parse_link(text)
    except LinkError:
        return False
    return True
