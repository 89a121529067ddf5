"""The log in the database: one sequencer, stored tree nodes, signed checkpoints, proofs, audits.

Appends run inside the caller's transaction, so a document row and its entry commit or vanish together. The
sequencer's lock is the single ``ledger_state`` row: locked with ``SELECT … FOR UPDATE`` on PostgreSQL, and
on SQLite taken by writing that row first (which acquires SQLite's one write lock before anything is read).
Every complete subtree's hash is stored at (level, index), so tiles and proofs are reads, never rehashes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from errors import PermanentError
from ledger import tlog
from ledger.entry import Entry, EntryError
from ledger.models import checkpoints, entries, nodes, state
from ledger.note import Checkpoint, NoteError, NoteSigner, NoteVerifier, open_checkpoint, sign_note
from ledger.proof import build as build_tlog_proof
from ledger.tile import TILE_HEIGHT, TILE_WIDTH, entry_bundle


class LedgerError(PermanentError):
    """The log cannot do what was asked; the message says why."""


class LedgerForkError(LedgerError):
    """The database's log contradicts a checkpoint this log already published."""


@dataclass
class AuditReport:
    size: int
    checkpoints_checked: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class Ledger:
    """A log with one origin and one signing key, over tables in any SQLAlchemy database."""

    def __init__(self, origin: str, signer: NoteSigner) -> None:
        self.origin = origin
        self.signer = signer
        self.nodes_read = 0  # stored tree hashes read by proofs so far (the benchmark shows it grows with log n)

    @property
    def verifier(self) -> NoteVerifier:
        return self.signer.verifier

    def _lock_size(self, conn: Connection) -> int:
        if conn.dialect.name == "postgresql":
            size = conn.execute(select(state.c.size).where(state.c.id == 1).with_for_update()).scalar_one()
        else:
            conn.execute(update(state).where(state.c.id == 1).values(size=state.c.size))
            size = conn.execute(select(state.c.size).where(state.c.id == 1)).scalar_one()
        return int(size)

    def size(self, conn: Connection) -> int:
        return int(conn.execute(select(state.c.size).where(state.c.id == 1)).scalar_one())

    def append(self, conn: Connection, new_entries: Sequence[Entry]) -> list[int]:
        """Number and integrate entries in the caller's transaction; returns their indexes."""
        size = self._lock_size(conn)
        entry_rows, node_rows = [], []
        pending: dict[tuple[int, int], bytes] = {}
        for offset, entry in enumerate(new_entries):
            idx = size + offset
            data = entry.canonical()
            h = tlog.leaf_hash(data)
            entry_rows.append({"idx": idx, "data": data, "leaf_hash": h})
            level, i = 0, idx
            pending[(0, idx)] = h
            node_rows.append({"level": 0, "idx": idx, "hash": h})
            while i & 1:
                left = pending.get((level, i - 1)) or self._node(conn, level, i - 1)
                h = tlog.node_hash(left, h)
                level, i = level + 1, i >> 1
                pending[(level, i)] = h
                node_rows.append({"level": level, "idx": i, "hash": h})
        if entry_rows:
            conn.execute(insert(entries), entry_rows)
            conn.execute(insert(nodes), node_rows)
            conn.execute(update(state).where(state.c.id == 1).values(size=size + len(entry_rows)))
        return [size + i for i in range(len(entry_rows))]

    def _node(self, conn: Connection, level: int, idx: int) -> bytes:
        h = conn.execute(select(nodes.c.hash).where(and_(nodes.c.level == level, nodes.c.idx == idx))).scalar()
        if h is None:
            raise LedgerError(f"the stored tree is missing node {level}/{idx}")
        return bytes(h)

    def range_hash(self, conn: Connection) -> tlog.RangeHash:
        cache: dict[tuple[int, int], bytes] = {}

        def rh(lo: int, hi: int) -> bytes:
            if (lo, hi) in cache:
                return cache[(lo, hi)]
            n = hi - lo
            if n & (n - 1) == 0 and lo % n == 0:
                level = n.bit_length() - 1
                value = self._node(conn, level, lo >> level)
            else:
                k = tlog.split_point(n)
                value = tlog.node_hash(rh(lo, lo + k), rh(lo + k, hi))
            cache[(lo, hi)] = value
            return value

        return rh

    def _prefetched(self, conn: Connection, proof: Callable[[tlog.RangeHash], list[bytes]]) -> list[bytes]:
        """Run ``proof`` with every stored node it needs read in one query instead of one SELECT per node.

        A first pass with placeholder hashes records which perfect subtrees the proof reads (the same recursion
        as `range_hash`); the second pass computes the proof from those nodes.
        """
        wanted: set[tuple[int, int]] = set()

        def probe(lo: int, hi: int) -> bytes:
            n = hi - lo
            if n & (n - 1) == 0 and lo % n == 0:
                level = n.bit_length() - 1
                wanted.add((level, lo >> level))
                return bytes(32)
            k = tlog.split_point(n)
            probe(lo, lo + k)
            probe(lo + k, hi)
            return bytes(32)

        proof(probe)
        found: dict[tuple[int, int], bytes] = {}
        self.nodes_read += len(wanted)
        if wanted:
            # One "level = ? AND idx IN (...)" per level, OR-ed: both SQLite and PostgreSQL answer each branch
            # from the primary key. (A row-value IN on (level, idx) made SQLite scan the whole table.)
            by_level: dict[int, list[int]] = {}
            for level, idx in wanted:
                by_level.setdefault(level, []).append(idx)
            where = or_(*(and_(nodes.c.level == lvl, nodes.c.idx.in_(idxs)) for lvl, idxs in by_level.items()))
            rows = conn.execute(select(nodes.c.level, nodes.c.idx, nodes.c.hash).where(where))
            found = {(int(level), int(idx)): bytes(h) for level, idx, h in rows}
        cache: dict[tuple[int, int], bytes] = {}

        def rh(lo: int, hi: int) -> bytes:
            if (lo, hi) in cache:
                return cache[(lo, hi)]
            n = hi - lo
            if n & (n - 1) == 0 and lo % n == 0:
                level = n.bit_length() - 1
                value = found.get((level, lo >> level))
                if value is None:
                    raise LedgerError(f"the stored tree is missing node {level}/{lo >> level}")
            else:
                k = tlog.split_point(n)
                value = tlog.node_hash(rh(lo, lo + k), rh(lo + k, hi))
            cache[(lo, hi)] = value
            return value

        return proof(rh)

    def root(self, conn: Connection, size: int) -> bytes:
        return tlog.EMPTY_ROOT if size == 0 else self.range_hash(conn)(0, size)

    def checkpoint(self, conn: Connection) -> bytes:
        """Sign a checkpoint of the whole log as it stands, from one consistent snapshot, and store it."""
        size = self._lock_size(conn)
        root = self.root(conn, size)
        note = sign_note(Checkpoint(self.origin, size, root).text(), self.signer)
        conn.execute(insert(checkpoints).values(size=size, root=root, note=note.decode(), created_at=datetime.now(UTC)))
        return note

    def add_cosignatures(self, conn: Connection, note: bytes, signature_lines: Sequence[str]) -> bytes:
        """Store the checkpoint again with witnesses' cosignature lines appended (a new, later row)."""
        checkpoint = open_checkpoint(note, self.verifier, self.origin)
        lines = "".join(line if line.endswith("\n") else line + "\n" for line in signature_lines)
        if not all(line.startswith("\u2014 ") for line in lines.splitlines()):
            raise LedgerError("a witness answered with something other than signature lines")
        cosigned = note + lines.encode()
        open_checkpoint(cosigned, self.verifier, self.origin)
        conn.execute(
            insert(checkpoints).values(
                size=checkpoint.size, root=checkpoint.root, note=cosigned.decode(), created_at=datetime.now(UTC)
            )
        )
        return cosigned

    def latest_checkpoint(self, conn: Connection) -> bytes | None:
        row = conn.execute(select(checkpoints.c.note).order_by(checkpoints.c.id.desc()).limit(1)).scalar()
        return row.encode() if row is not None else None

    def _require_checkpoint(self, conn: Connection, size: int) -> None:
        found = conn.execute(select(func.count()).select_from(checkpoints).where(checkpoints.c.size == size)).scalar()
        if not found:
            raise LedgerError(f"no signed checkpoint has size {size}; proofs are only built for signed sizes")

    def prove_inclusion(self, conn: Connection, index: int, size: int) -> list[bytes]:
        self._require_checkpoint(conn, size)
        if not 0 <= index < size:
            raise LedgerError(f"entry {index} is not in the tree of size {size}")
        return self._prefetched(conn, lambda rh: tlog.inclusion_proof(index, size, rh))

    def prove_consistency(self, conn: Connection, old: int, new: int) -> list[bytes]:
        self._require_checkpoint(conn, new)
        if not 0 < old <= new:
            raise LedgerError(f"no consistency proof from size {old} to size {new}")
        return self._prefetched(conn, lambda rh: tlog.consistency_proof(old, new, rh))

    def tlog_proof(self, conn: Connection, index: int) -> bytes:
        """A .tlog-proof for entry ``index`` against the latest signed checkpoint that contains it."""
        note = self.latest_checkpoint(conn)
        if note is None:
            raise LedgerError("the log has no signed checkpoint yet")
        checkpoint = open_checkpoint(note, self.verifier, self.origin)
        if index >= checkpoint.size:
            raise LedgerError(f"entry {index} is newer than the latest checkpoint ({checkpoint.size} entries)")
        proof = self._prefetched(conn, lambda rh: tlog.inclusion_proof(index, checkpoint.size, rh))
        return build_tlog_proof(index, proof, note)

    def entry(self, conn: Connection, index: int) -> bytes:
        data = conn.execute(select(entries.c.data).where(entries.c.idx == index)).scalar()
        if data is None:
            raise LedgerError(f"no entry {index}")
        return bytes(data)

    def read_tile(self, conn: Connection, level: int, n: int, width: int) -> bytes:
        """Tile ``n`` at tile level ``level`` with ``width`` hashes (C2SP tlog-tiles)."""
        tree_level = level * TILE_HEIGHT
        lo = n * TILE_WIDTH
        rows = conn.execute(
            select(nodes.c.hash)
            .where(and_(nodes.c.level == tree_level, nodes.c.idx >= lo, nodes.c.idx < lo + width))
            .order_by(nodes.c.idx)
        ).all()
        if len(rows) != width:
            raise LedgerError("no such tile")
        return b"".join(bytes(r[0]) for r in rows)

    def read_entry_bundle(self, conn: Connection, n: int, width: int) -> bytes:
        lo = n * TILE_WIDTH
        rows = conn.execute(
            select(entries.c.data).where(and_(entries.c.idx >= lo, entries.c.idx < lo + width)).order_by(entries.c.idx)
        ).all()
        if len(rows) != width:
            raise LedgerError("no such entry bundle")
        return entry_bundle([bytes(r[0]) for r in rows])

    def audit(self, conn: Connection) -> AuditReport:
        """Rebuild the tree from the entries and compare it with the stored nodes and every stored checkpoint."""
        size = self.size(conn)
        report = AuditReport(size=size, checkpoints_checked=0)
        leaf_hashes: list[bytes] = []
        for idx, data, stored in conn.execute(
            select(entries.c.idx, entries.c.data, entries.c.leaf_hash).order_by(entries.c.idx)
        ):
            if idx != len(leaf_hashes):
                report.problems.append(f"entry numbering has a gap before {idx}")
                break
            try:
                Entry.parse(bytes(data))
            except EntryError as exc:
                report.problems.append(f"entry {idx} is not canonical: {exc}")
            h = tlog.leaf_hash(bytes(data))
            if h != bytes(stored):
                report.problems.append(f"entry {idx}'s stored leaf hash does not match its bytes")
            leaf_hashes.append(h)
        if len(leaf_hashes) != size:
            report.problems.append(f"the log says it has {size} entries but {len(leaf_hashes)} are stored")
        rebuilt = tlog.list_range_hash(leaf_hashes)
        for level, idx, h in conn.execute(select(nodes.c.level, nodes.c.idx, nodes.c.hash)):
            lo, hi = idx << level, (idx + 1) << level
            if hi > len(leaf_hashes) or rebuilt(lo, hi) != bytes(h):
                report.problems.append(f"stored node {level}/{idx} does not match the entries")
        for size_c, root, note in conn.execute(select(checkpoints.c.size, checkpoints.c.root, checkpoints.c.note)):
            report.checkpoints_checked += 1
            try:
                checkpoint = open_checkpoint(note.encode(), self.verifier, self.origin)
            except NoteError as exc:
                report.problems.append(f"checkpoint of size {size_c} does not verify: {exc}")
                continue
            expected = tlog.tree_hash(leaf_hashes[:size_c]) if size_c <= len(leaf_hashes) else None
            if checkpoint.size != size_c or bytes(root) != checkpoint.root or expected != checkpoint.root:
                report.problems.append(f"checkpoint of size {size_c} does not match the entries")
        return report

    def check_consistent_with(self, conn: Connection, published_note: bytes) -> None:
        """Refuse to run on a database whose log is not an extension of a checkpoint this log published."""
        published = open_checkpoint(published_note, self.verifier, self.origin)
        size = self.size(conn)
        if size < published.size:
            raise LedgerForkError(
                f"The database's log has {size} entries, but this log already published a checkpoint with "
                f"{published.size}. The database looks restored from an older backup: appending now would fork the "
                "public log. Restore the newest backup (or the missing entries) before starting SealTrail."
            )
        if published.size and self.root(conn, published.size) != published.root:
            raise LedgerForkError(
                f"The database's first {published.size} log entries differ from the checkpoint this log published. "
                "The log history was rewritten or replaced; SealTrail will not start on it. Restore the right database."
            )
