"""C2SP tlog-proof: a self-contained, offline-verifiable proof that an entry is in the log."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ledger import tlog
from ledger.note import Checkpoint, NoteError, NoteVerifier, open_checkpoint

HEADER = "c2sp.org/tlog-proof@v1"


@dataclass(frozen=True)
class TlogProof:
    index: int
    proof: tuple[bytes, ...]
    checkpoint_note: bytes
    extra: bytes | None = None

    def encode(self) -> bytes:
        lines = [HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode())
        lines.append(f"index {self.index}")
        lines.extend(base64.b64encode(h).decode() for h in self.proof)
        return ("\n".join(lines) + "\n\n").encode() + self.checkpoint_note

    @classmethod
    def parse(cls, data: bytes) -> TlogProof:
        head, sep, note = data.partition(b"\n\n")
        if not sep:
            raise NoteError("a tlog proof needs an empty line before its checkpoint")
        lines = head.decode().split("\n")
        if lines[0] != HEADER:
            raise NoteError("not a c2sp.org/tlog-proof@v1 file")
        rest = lines[1:]
        extra = None
        try:
            if rest and rest[0].startswith("extra "):
                extra = base64.b64decode(rest[0][6:], validate=True)
                rest = rest[1:]
            m = re.fullmatch(r"index (0|[1-9]\d*)", rest[0]) if rest else None
            if not m:
                raise NoteError("the proof's index line is missing or malformed")
            hashes = tuple(base64.b64decode(h, validate=True) for h in rest[1:])
        except binascii.Error as exc:
            raise NoteError("the proof contains invalid base64") from exc
        return cls(int(m.group(1)), hashes, note, extra)

    def verify(self, leaf_data: bytes, log_key: NoteVerifier, origin: str) -> Checkpoint:
        """Check the checkpoint's signature and that ``leaf_data`` is entry ``index`` under it."""
        checkpoint = open_checkpoint(self.checkpoint_note, log_key, origin)
        try:
            tlog.verify_inclusion(self.index, checkpoint.size, tlog.leaf_hash(leaf_data), self.proof, checkpoint.root)
        except tlog.ProofError as exc:
            raise NoteError(f"the entry is not proven to be in the log: {exc}") from exc
        return checkpoint


def build(index: int, proof: Sequence[bytes], checkpoint_note: bytes, extra: bytes | None = None) -> bytes:
    return TlogProof(index, tuple(proof), checkpoint_note, extra).encode()
