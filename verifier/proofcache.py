"""Log proofs for the public QR page, cached per signed checkpoint (the page's hot path; docs/performance.md).

`prove_record` (below) does, on every request: read the latest checkpoint and verify its
signature, count the checkpoints of that size, read every tree node of the inclusion path one SELECT at a time,
read the entry, and re-check it all. For a given signed checkpoint the answer never changes (the log is append
only), so this keeps:

- the verified checkpoint, keyed by the exact note bytes (a new or cosigned note is verified again);
- per (leaf index, tree size), the entry bytes once their inclusion proof has verified against that signed root.

Each request still reads the latest checkpoint note (one small SELECT), so a new checkpoint is picked up at
once, and still compares the record's document id and hashes with the proven entry, so it stays fail-closed:
anything not proven gives False, exactly as `prove_record` does.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from sqlalchemy import Engine

from ledger import tlog
from ledger.entry import Entry
from ledger.note import Checkpoint, open_checkpoint
from ledger.store import Ledger
from registry.records import DocumentRecord
from verifier.host import Installation


class CachedProver:
    """`prove_record` with the verified checkpoint and proven entries cached; thread-safe."""

    def __init__(self, dep: Installation, max_entries: int = 100_000) -> None:
        self.dep = dep
        self.ledger = dep.ledger
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._checkpoint: tuple[bytes, Checkpoint] | None = None
        self._proven: OrderedDict[tuple[int, int], Entry] = OrderedDict()

    def _verified(self, note: bytes) -> Checkpoint:
        cached = self._checkpoint
        if cached is not None and cached[0] == note:
            return cached[1]
        checkpoint = open_checkpoint(note, self.ledger.verifier, self.ledger.origin)
        self._checkpoint = (note, checkpoint)
        return checkpoint

    def __call__(self, record: DocumentRecord) -> bool:
        index = record.leaf_index
        if index is None:
            return False
        with self.dep.engine.connect() as conn:
            note = self.ledger.latest_checkpoint(conn)
            if note is None:
                return False
            with self._lock:
                checkpoint = self._verified(note)
                entry = self._proven.get((index, checkpoint.size))
            if index >= checkpoint.size:
                return False
            if entry is None:
                proof = self.ledger.prove_inclusion(conn, index, checkpoint.size)
                data = self.ledger.entry(conn, index)
                tlog.verify_inclusion(index, checkpoint.size, tlog.leaf_hash(data), proof, checkpoint.root)
                entry = Entry.parse(data)
                with self._lock:
                    self._proven[(index, checkpoint.size)] = entry
                    while len(self._proven) > self.max_entries:
                        self._proven.popitem(last=False)
        return (
            entry.doc_id == record.id
            and entry.pdf_sha256 == record.sha256_pdf
            and (entry.xml_sha256 == record.sha256_xml)
        )


def prove_record(engine: Engine, ledger: Ledger, record: DocumentRecord) -> bool:
    """Prove the record's issue entry against the latest signed checkpoint; False when it cannot be proven."""
    if record.leaf_index is None:
        return False
    with engine.connect() as conn:
        note = ledger.latest_checkpoint(conn)
        if note is None:
            return False
        checkpoint = open_checkpoint(note, ledger.verifier, ledger.origin)
        if record.leaf_index >= checkpoint.size:
            return False
        proof = ledger.prove_inclusion(conn, record.leaf_index, checkpoint.size)
        data = ledger.entry(conn, record.leaf_index)
    entry = Entry.parse(data)
    if entry.doc_id != record.id or entry.pdf_sha256 != record.sha256_pdf or entry.xml_sha256 != record.sha256_xml:
        return False
    tlog.verify_inclusion(record.leaf_index, checkpoint.size, tlog.leaf_hash(data), proof, checkpoint.root)
    return True
