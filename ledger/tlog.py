"""Merkle tree hashing and proofs per RFC 9162 (RFC 6962 hashing), plus the subtree inclusion and consistency
proofs of draft-ietf-plants-merkle-tree-certs. Pure functions over bytes; storage lives elsewhere.

Proof generation reads node hashes through ``range_hash(lo, hi)``, the Merkle Tree Hash of leaves [lo, hi);
verification needs nothing but the proof. Verifiers are strict: every hash must be 32 bytes, proofs must have
exactly the expected length, and a failure raises ProofError.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from errors import PermanentError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
RangeHash = Callable[[int, int], bytes]


class ProofError(PermanentError, ValueError):
    """A proof does not prove what it claims."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than n (n ≥ 2): where RFC 6962 splits a tree of n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


def bit_ceil(n: int) -> int:
    return 1 << (n - 1).bit_length() if n > 1 else 1


def valid_subtree(start: int, end: int) -> bool:
    """[start, end) is a subtree when it is non-empty and start is a multiple of bit_ceil(end - start)."""
    return 0 <= start < end and start % bit_ceil(end - start) == 0


def tree_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already hashed leaves (small trees, tests and audits)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    return _mth(level, 0, len(level))


def _mth(hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    if hi - lo == 1:
        return hashes[lo]
    k = split_point(hi - lo)
    return node_hash(_mth(hashes, lo, lo + k), _mth(hashes, lo + k, hi))


def list_range_hash(leaf_hashes: Sequence[bytes]) -> RangeHash:
    return lambda lo, hi: _mth(leaf_hashes, lo, hi)


def inclusion_proof(index: int, size: int, range_hash: RangeHash) -> list[bytes]:
    """PATH(index, D[0:size]) from RFC 6962 §2.1.1, leaf sibling first."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not in a tree of size {size}")
    return _path(index, 0, size, range_hash)


def _path(m: int, lo: int, hi: int, rh: RangeHash) -> list[bytes]:
    n = hi - lo
    if n == 1:
        return []
    k = split_point(n)
    if m < k:
        return [*_path(m, lo, lo + k, rh), rh(lo + k, hi)]
    return [*_path(m - k, lo + k, hi, rh), rh(lo, lo + k)]


def consistency_proof(old: int, new: int, range_hash: RangeHash) -> list[bytes]:
    """PROOF(old, D[0:new]) from RFC 6962 §2.1.2."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from size {old} to size {new}")
    return _subproof(old, 0, new, True, range_hash)


def _subproof(m: int, lo: int, hi: int, whole: bool, rh: RangeHash) -> list[bytes]:
    n = hi - lo
    if m == n:
        return [] if whole else [rh(lo, hi)]
    k = split_point(n)
    if m <= k:
        return [*_subproof(m, lo, lo + k, whole, rh), rh(lo + k, hi)]
    return [*_subproof(m - k, lo + k, hi, False, rh), rh(lo, lo + k)]


def _check_hashes(*hashes: bytes) -> None:
    for h in hashes:
        if len(h) != HASH_SIZE:
            raise ProofError(f"a hash must be {HASH_SIZE} bytes, got {len(h)}")


def root_from_subtree_inclusion(index: int, start: int, end: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The subtree hash implied by an inclusion proof of leaf ``index`` in subtree [start, end) (MTC §4.3.2)."""
    if not valid_subtree(start, end):
        raise ProofError(f"[{start}, {end}) is not a valid subtree")
    if not start <= index < end:
        raise ProofError(f"index {index} is not in [{start}, {end})")
    _check_hashes(leaf, *proof)
    fn, sn, r = index - start, end - start - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the proof has too many hashes")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof has too few hashes")
    return r


def verify_subtree_inclusion(
    index: int, start: int, end: int, leaf: bytes, proof: Sequence[bytes], subtree_root: bytes
) -> None:
    if root_from_subtree_inclusion(index, start, end, leaf, proof) != subtree_root:
        raise ProofError("the inclusion proof does not lead to the expected root")


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf`` (a leaf hash) is entry ``index`` of the tree of ``size`` leaves with ``root``."""
    if size <= 0:
        raise ProofError("an empty tree includes nothing")
    verify_subtree_inclusion(index, 0, size, leaf, proof, root)


def verify_subtree_consistency(
    start: int, end: int, size: int, proof: Sequence[bytes], subtree_root: bytes, root: bytes
) -> None:
    """Check that subtree [start, end) with ``subtree_root`` sits in the tree of ``size`` with ``root`` (MTC §4.4.3).

    An empty subtree (start == end) is trivially consistent, but only with an empty proof and the empty root.
    """
    if start == end and 0 <= start <= size:
        if proof:
            raise ProofError("an empty subtree needs an empty proof")
        if subtree_root != EMPTY_ROOT:
            raise ProofError("an empty subtree's root must be the hash of nothing")
        return
    if not valid_subtree(start, end) or end > size:
        raise ProofError(f"[{start}, {end}) is not a valid subtree of a tree of size {size}")
    _check_hashes(*proof)
    fn, sn, tn = start, end - 1, size - 1
    if sn == tn:
        while fn != sn:
            fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
    else:
        while fn != sn and sn & 1:
            fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
    rest: Sequence[bytes]
    if fn == sn:
        fr = sr = subtree_root
        rest = proof
    else:
        if not proof:
            raise ProofError("the proof is empty")
        fr = sr = proof[0]
        rest = proof[1:]
    for c in rest:
        if tn == 0:
            raise ProofError("the proof has too many hashes")
        if sn & 1 or sn == tn:
            if fn < sn:
                fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while sn & 1 == 0 and sn != 0:
                fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
    if tn != 0:
        raise ProofError("the proof has too few hashes")
    if fr != subtree_root:
        raise ProofError("the proof does not lead to the older root")
    if sr != root:
        raise ProofError("the proof does not lead to the newer root")


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that the tree of ``size1`` with ``root1`` is a prefix of the tree of ``size2`` with ``root2``."""
    if size2 < size1:
        raise ProofError(f"size {size2} is smaller than size {size1}")
    if size1 <= 0:
        raise ProofError("a consistency proof from an empty tree proves nothing")
    if size1 == size2:
        if proof:
            raise ProofError("equal sizes need an empty proof")
        if root1 != root2:
            raise ProofError("equal sizes but different roots")
        return
    verify_subtree_consistency(0, size1, size2, proof, root1, root2)
