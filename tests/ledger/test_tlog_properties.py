"""Random trees: every proof we generate verifies, and every tampered proof fails."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import tlog


@st.composite
def trees(draw: st.DrawFn) -> list[bytes]:
    n = draw(st.integers(min_value=1, max_value=70))
    return [tlog.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@settings(max_examples=150, deadline=None)
@given(hashes=trees(), data=st.data())
def test_inclusion_proofs_verify_and_tampering_fails(hashes: list[bytes], data: st.DataObject) -> None:
    size = data.draw(st.integers(min_value=1, max_value=len(hashes)))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    rh = tlog.list_range_hash(hashes)
    root = tlog.tree_hash(hashes[:size])
    proof = tlog.inclusion_proof(index, size, rh)
    tlog.verify_inclusion(index, size, hashes[index], proof, root)
    if proof:
        i = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        bad = [*proof]
        bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
        with pytest.raises(tlog.ProofError):
            tlog.verify_inclusion(index, size, hashes[index], bad, root)
    if size > 1:
        with pytest.raises(tlog.ProofError):
            tlog.verify_inclusion((index + 1) % size, size, hashes[index], proof, root)


@settings(max_examples=150, deadline=None)
@given(hashes=trees(), data=st.data())
def test_consistency_proofs_verify_and_tampering_fails(hashes: list[bytes], data: st.DataObject) -> None:
    new = data.draw(st.integers(min_value=1, max_value=len(hashes)))
    old = data.draw(st.integers(min_value=1, max_value=new))
    rh = tlog.list_range_hash(hashes)
    root_old, root_new = tlog.tree_hash(hashes[:old]), tlog.tree_hash(hashes[:new])
    proof = tlog.consistency_proof(old, new, rh)
    tlog.verify_consistency(old, new, proof, root_old, root_new)
    if proof:
        bad = [*proof]
        bad[-1] = bytes(32)
        with pytest.raises(tlog.ProofError):
            tlog.verify_consistency(old, new, bad, root_old, root_new)
    if old < new:
        with pytest.raises(tlog.ProofError):
            tlog.verify_consistency(old, new, proof, root_new, root_new)
