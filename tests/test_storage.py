"""Content-addressed storage: names are hashes, writes are atomic, damage is noticed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from signer.storage import BlobStore


def test_files_are_stored_under_their_hash_and_read_back(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    data = "Nguyễn Thị Thu Hằng".encode()
    digest = store.put(data, "xml")
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.put(data, "xml") == digest
    assert store.get(digest, "xml") == data
    assert not list(store.path(digest, "xml").parent.glob(".tmp-*"))


def test_a_damaged_file_is_reported(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = store.put(b"%PDF-1.7 original", "pdf")
    store.path(digest, "pdf").write_bytes(b"%PDF-1.7 altered")
    with pytest.raises(OSError, match="damaged"):
        store.get(digest, "pdf")


def test_path_traversal_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        BlobStore(tmp_path).path("../../etc/passwd", "pdf")
