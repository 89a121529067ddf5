"""The published transparency-dev Merkle proof vectors, and the RFC 6962 roots for sizes 0..8."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ledger import tlog

VECTORS = Path(__file__).resolve().parent / "vectors" / "merkle"  # vendored, see vectors/README.md


def _cases(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


def _b(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _proof(case: dict) -> list[bytes]:  # type: ignore[type-arg]
    return [_b(p) for p in case["proof"] or []]


def _accepts(fn, *args) -> bool:  # type: ignore[no-untyped-def]
    try:
        fn(*args)
    except (tlog.ProofError, ValueError):
        return False
    return True


def test_the_vector_suite_is_present() -> None:
    assert len(list(VECTORS.rglob("*.json"))) > 500, f"vectors not found under {VECTORS}"


@pytest.mark.parametrize("path", _cases("inclusion"), ids=lambda p: str(p.relative_to(VECTORS)))
def test_inclusion(path: Path) -> None:
    c = json.loads(path.read_text())
    ok = _accepts(tlog.verify_inclusion, c["leafIdx"], c["treeSize"], _b(c["leafHash"]), _proof(c), _b(c["root"]))
    assert ok == (not c["wantErr"]), c["desc"]


@pytest.mark.parametrize("path", _cases("consistency"), ids=lambda p: str(p.relative_to(VECTORS)))
def test_consistency(path: Path) -> None:
    c = json.loads(path.read_text())
    ok = _accepts(tlog.verify_consistency, c["size1"], c["size2"], _proof(c), _b(c["root1"]), _b(c["root2"]))
    assert ok == (not c["wantErr"]), c["desc"]


@pytest.mark.parametrize("path", _cases("subtreeinclusion"), ids=lambda p: str(p.relative_to(VECTORS)))
def test_subtree_inclusion(path: Path) -> None:
    c = json.loads(path.read_text())
    ok = _accepts(
        tlog.verify_subtree_inclusion,
        c["leafIdx"],
        c["start"],
        c["end"],
        _b(c["leafHash"]),
        _proof(c),
        _b(c["root"]),
    )
    assert ok == (not c["wantErr"]), c["desc"]


@pytest.mark.parametrize("path", _cases("subtreeconsistency"), ids=lambda p: str(p.relative_to(VECTORS)))
def test_subtree_consistency(path: Path) -> None:
    c = json.loads(path.read_text())
    ok = _accepts(
        tlog.verify_subtree_consistency,
        c["start"],
        c["end"],
        c["size"],
        _proof(c),
        _b(c["root1"]),
        _b(c["root2"]),
    )
    assert ok == (not c["wantErr"]), c["desc"]


RFC6962_LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
RFC6962_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


@pytest.mark.parametrize("size", range(9))
def test_rfc6962_roots(size: int) -> None:
    hashes = [tlog.leaf_hash(d) for d in RFC6962_LEAVES[:size]]
    assert tlog.tree_hash(hashes).hex() == RFC6962_ROOTS[size]
