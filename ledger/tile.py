"""C2SP tlog-tiles: tile paths, and tiles and entry bundles built from stored hashes and entries."""

from __future__ import annotations

import re
from collections.abc import Sequence

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
_N_PATH = re.compile(r"^(?:x\d{3}/)*\d{3}$")


def encode_index(n: int) -> str:
    """1234067 → 'x001/x234/067'."""
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


def decode_index(path: str) -> int:
    if not _N_PATH.match(path):
        raise ValueError(f"{path!r} is not a tile index path")
    return int("".join(p.lstrip("x") for p in path.split("/")))


def tile_path(level: int, n: int, width: int = TILE_WIDTH) -> str:
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{encode_index(n)}{suffix}"


def parse_tile_path(path: str) -> tuple[str, int, int]:
    """'tile/0/x001/234.p/7' → ('0', 1234, 7); the level is 'entries' for entry bundles."""
    m = re.fullmatch(r"tile/(entries|0|[1-9]\d?)/((?:x\d{3}/)*\d{3})(?:\.p/([1-9]\d{0,2}))?", path)
    if not m:
        raise ValueError(f"{path!r} is not a tile path")
    width = int(m.group(3)) if m.group(3) else TILE_WIDTH
    if (m.group(3) and width >= TILE_WIDTH) or (m.group(1) != "entries" and int(m.group(1)) > 63):
        raise ValueError(f"{path!r} is not a tile path")
    return m.group(1), decode_index(m.group(2)), width


def entry_bundle(entries: Sequence[bytes]) -> bytes:
    """Entries as big-endian uint16 length-prefixed records."""
    out = bytearray()
    for e in entries:
        if len(e) > 0xFFFF:
            raise ValueError("an entry is longer than 65535 bytes")
        out += len(e).to_bytes(2, "big") + e
    return bytes(out)
