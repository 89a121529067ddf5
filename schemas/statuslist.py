"""W3C Bitstring Status List v1.0: the bitstring codec, the list's URL and name, and reading one entry's status.

A list covers one school and one school year (Vietnamese school years start in September). Each document holds
a random, unique index in its list, so fetching the whole list (at least 131,072 entries, 16 KB before
compression) tells nobody which document is being checked. Bit order follows the spec: index 0 is the most
significant bit of the first byte. ``encodedList`` is the GZIP-compressed bitstring, base64url without padding,
with the multibase prefix ``u``.
"""

from __future__ import annotations

import base64
import gzip
import io
import re
from datetime import date
from urllib.parse import quote, unquote, urlparse

from errors import PermanentError

LIST_SIZE = 131_072  # entries: the spec's minimum for herd privacy (16 KB uncompressed)
MAX_COMPRESSED = 2 * 1024 * 1024  # a list larger than this when compressed is refused before decompressing
PURPOSE = "revocation"
# Where a trust bundle keeps the signed lists, and its index of issued files' SHA-256 → list position.
STATUS_DIR = "status"
STATUS_INDEX = "index.json"
_YEAR = re.compile(r"^\d{4}-\d{4}$")


class StatusListError(PermanentError, ValueError):
    """A status list or status entry is malformed; the message says what is wrong."""


def school_year(day: date) -> str:
    """The school year a date falls in: '2025-2026' for any day from September 2025 to August 2026."""
    return f"{day.year}-{day.year + 1}" if day.month >= 9 else f"{day.year - 1}-{day.year}"


def list_name(school_code: str, year: str) -> str:
    """The stored name of a list: '<school code>/<school year>'."""
    return f"{school_code}/{year}"


def list_url(base_url: str, name: str, purpose: str = PURPOSE) -> str:
    """The public URL of a list: ``{base}/status/{school}/{year}/{purpose}``."""
    school, year = split_name(name)
    return f"{base_url.rstrip('/')}/status/{quote(school, safe='')}/{year}/{purpose}"


def split_name(name: str) -> tuple[str, str]:
    school, _, year = name.rpartition("/")
    if not school or not _YEAR.match(year):
        raise StatusListError(f"not a status list name: {name!r}")
    return school, year


def name_from_url(url: str) -> tuple[str, str]:
    """(list name, purpose) from a list URL made by :func:`list_url`, whatever its host."""
    parts = urlparse(url).path.rstrip("/").split("/")
    if len(parts) < 5 or parts[-4] != "status" or not _YEAR.match(parts[-2]):
        raise StatusListError(f"not a SealTrail status list URL: {url!r}")
    return list_name(unquote(parts[-3]), parts[-2]), parts[-1]


def encode(bits: bytes) -> str:
    if len(bits) * 8 < LIST_SIZE:
        raise StatusListError(f"a status list holds at least {LIST_SIZE} entries")
    return "u" + base64.urlsafe_b64encode(gzip.compress(bits, mtime=0)).decode().rstrip("=")


def decode(encoded: str) -> bytes:
    if not encoded.startswith("u"):
        raise StatusListError("encodedList must be multibase base64url (prefix 'u')")
    body = encoded[1:]
    if len(body) > MAX_COMPRESSED * 4 // 3 + 4 or not re.fullmatch(r"[A-Za-z0-9_-]*", body):
        raise StatusListError("encodedList is not base64url or is too large")
    try:
        packed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        with gzip.GzipFile(fileobj=io.BytesIO(packed)) as stream:
            bits = stream.read(LIST_SIZE * 64 // 8 + 1)  # never inflate a gzip bomb past 64 x the minimum
    except (ValueError, OSError, EOFError) as exc:
        raise StatusListError(f"encodedList is not a GZIP-compressed bitstring: {exc}") from exc
    if len(bits) * 8 < LIST_SIZE:
        raise StatusListError(f"the list holds fewer than {LIST_SIZE} entries (too small for herd privacy)")
    return bits


def bitstring(revoked: set[int] | list[int], size: int = LIST_SIZE) -> bytes:
    """A bitstring of ``size`` entries with the given indexes set."""
    out = bytearray(size // 8)
    for index in revoked:
        if not 0 <= index < size:
            raise StatusListError(f"status index {index} is outside the list")
        out[index // 8] |= 0x80 >> (index % 8)
    return bytes(out)


def bit(bits: bytes, index: int) -> bool:
    if not 0 <= index < len(bits) * 8:
        raise StatusListError(f"status index {index} is outside the list ({len(bits) * 8} entries)")
    return bool(bits[index // 8] & (0x80 >> (index % 8)))
