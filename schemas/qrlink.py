"""The QR code's link, read the way a browser reads it (the WHATWG URL Standard, through ada-url, the parser
Node.js uses), so that the host we check is the host a phone would open.

A Python ``urlsplit`` and a browser disagree on links such as ``http://evil.example\\@xacthuc.truong.edu.vn/v/…``:
``urlsplit`` sees the host ``xacthuc.truong.edu.vn`` after a user name, a browser turns the backslash into ``/``
and goes to ``evil.example``. SealTrail never prints such links, so everything outside the plain form
``http(s)://host[:port][/prefix]/v/<token>[#ST1:<seal>]`` is refused, with the host a browser would open named in
the reason: user names (``@``), backslashes, percent-encoded or control characters before the fragment, queries,
and paths that do not end in ``/v/<token>``. Hosts are compared in the form a browser uses: lower case, IDNA
(Unicode names as ``xn--`` punycode), full-width characters folded, a trailing dot dropped (it names the same
DNS host).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import unquote

from ada_url import URL, idna_to_unicode

from errors import PermanentError

TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""The tokens SealTrail issues (26 characters of base32) and anything of that alphabet up to the QR page's limit."""
DIGEST_BYTES = 8
"""How much of SHA-256(token) a seal carries to bind itself to its link (see :func:`token_digest`)."""
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


class LinkError(PermanentError, ValueError):
    """The QR's text is not a SealTrail verification link. The message is Vietnamese, then English.

    ``browser_host`` is the host a browser would open for this text (None when it would open none)."""

    def __init__(self, message: str, browser_host: str | None = None) -> None:
        super().__init__(message)
        self.browser_host = browser_host


@dataclass(frozen=True)
class QrLink:
    url: str
    """The link as a browser would request it (canonical WHATWG serialisation, without the fragment)."""
    host: str
    """The host in ASCII (punycode) form, lower case, without a trailing dot."""
    port: int | None
    """The port when the link names one other than the scheme's default."""
    token: str
    seal: str | None
    """The fragment, percent-decoded (an ``ST1:`` seal), or None when the link has none."""

    @property
    def display_host(self) -> str:
        """The host as a person reads it: Unicode for IDNA names, with its port when it has one."""
        return display_host(self.host, self.port)


def display_host(host: str, port: int | None = None) -> str:
    try:
        shown = idna_to_unicode(host)
    except (ValueError, UnicodeError):
        shown = host
    if shown != host:
        shown = f"{shown} ({host})"
    return f"{shown}:{port}" if port is not None else shown


def _browser_url(text: str) -> URL | None:
    try:
        return URL(text)
    except ValueError:
        return None


def _fail(vi: str, en: str, browser: URL | None) -> LinkError:
    host = browser.hostname.rstrip(".") if browser is not None and browser.hostname else None
    if host:
        vi += f" (trình duyệt sẽ mở '{display_host(host)}')"
        en += f" (a browser would open '{display_host(host)}')"
    return LinkError(f"{vi} / {en}", host)


def parse_link(text: str) -> QrLink:
    """Read a QR's link as a browser does and refuse anything SealTrail does not print (see the module docstring).

    Raises :class:`LinkError` with a bilingual reason."""
    text = text.strip()
    browser = _browser_url(text)
    address = text.split("#", 1)[0]
    if "\\" in text:
        raise _fail("Liên kết chứa dấu gạch chéo ngược '\\'", "the link contains a backslash '\\'", browser)
    if _CONTROL.search(text):
        raise _fail(
            "Liên kết chứa khoảng trắng hoặc ký tự điều khiển",
            "the link contains spaces or control characters",
            browser,
        )
    if browser is None or browser.protocol not in ("http:", "https:") or not browser.hostname:
        raise LinkError("Mã QR không phải là liên kết xác thực / the QR code is not a verification link")
    if "@" in address:
        raise _fail(
            "Liên kết chứa tên người dùng hoặc ký tự '@' trước tên miền",
            "the link carries a user name or an '@' before the host",
            browser,
        )
    if "%" in address:
        raise _fail(
            "Liên kết chứa ký tự mã hóa phần trăm (%) ngoài phần dấu niêm phong",
            "the link has percent-encoded characters outside the seal",
            browser,
        )
    if "?" in address:
        raise _fail("Liên kết có phần truy vấn '?'", "the link has a query part '?'", browser)
    segments = browser.pathname.split("/")
    if len(segments) < 3 or segments[-2] != "v" or not TOKEN.fullmatch(segments[-1]):
        raise _fail("Liên kết không có dạng /v/<mã tra cứu>", "the link's path is not of the form /v/<token>", browser)
    fragment = browser.hash[1:]
    return QrLink(
        url=browser.href.split("#", 1)[0],
        host=browser.hostname.rstrip("."),
        port=int(browser.port) if browser.port else None,
        token=segments[-1],
        seal=unquote(fragment) if fragment else None,
    )


def registered_host(entry: str) -> tuple[str, int | None]:
    """A registered verification host (``host`` or ``host:port``, as in settings) in the form links are compared in.

    Raises ValueError when the entry is not a host name."""
    entry = entry.strip()
    parsed = _browser_url(f"https://{entry}/") if entry and not re.search(r"[\\/@?#%\s]", entry) else None
    if parsed is None or not parsed.hostname:
        raise ValueError(f"not a host name: {entry!r}")
    port = parsed.port or ("443" if entry.endswith(":443") else "")  # the parser drops https's default port
    return parsed.hostname.rstrip("."), int(port) if port else None


def host_is_registered(link: QrLink, registered: list[tuple[str, int | None]]) -> bool:
    """The link's host is one of the registered hosts: the same name, and the same port when the entry names one
    (an entry without a port is that host on any port: the port does not change who runs the host)."""
    for host, port in registered:
        if link.host != host:
            continue
        if port is None or port == (link.port or (443 if link.url.startswith("https:") else 80)):
            return True
    return False


def token_digest(token: str) -> bytes:
    """What a seal carries to bind itself to its link: the first DIGEST_BYTES bytes of SHA-256 of the token.

    Tokens are 128 random bits chosen by the issuer, so a genuine seal of one document paired with another
    document's link is caught unless the two tokens' digests agree on 64 bits (≈ 2^-64 per pair)."""
    return hashlib.sha256(token.encode("ascii")).digest()[:DIGEST_BYTES]
