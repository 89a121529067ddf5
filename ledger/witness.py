"""Witnessing (C2SP tlog-witness, tlog-cosignature): a witness checks that each new checkpoint is consistent
with the last one it cosigned and adds an Ed25519 ``cosignature/v1``; clients can require k of n cosignatures.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from ledger import tlog
from ledger.note import Checkpoint, NoteError, NoteVerifier, key_id, open_note, parse_note

ALG_COSIGNATURE = 0x04
MAX_PROOF_LINES = 63


def _cosigned_message(note_text: bytes, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + note_text


@dataclass(frozen=True)
class CosignatureVerifier:
    name: str
    key_hash: bytes
    public_key: bytes

    @classmethod
    def from_vkey(cls, vkey: str) -> Self:
        try:
            name, hex_id, b64 = vkey.strip().split("+", 2)
            raw = base64.b64decode(b64, validate=True)
            kid = bytes.fromhex(hex_id)
        except (ValueError, binascii.Error) as exc:
            raise NoteError("a witness key has the form name+keyid+base64key") from exc
        if len(raw) != 33 or raw[0] != ALG_COSIGNATURE or key_id(name, ALG_COSIGNATURE, raw[1:]) != kid:
            raise NoteError("not an Ed25519 cosignature/v1 verifier key")
        return cls(name, kid, raw[1:])

    @property
    def vkey(self) -> str:
        encoded = base64.b64encode(bytes([ALG_COSIGNATURE]) + self.public_key).decode()
        return f"{self.name}+{self.key_hash.hex()}+{encoded}"

    def verify(self, note_text: bytes, signature: bytes) -> int | None:
        """The cosignature's timestamp when it verifies, else None."""
        if len(signature) != 8 + 64:
            return None
        timestamp = int.from_bytes(signature[:8], "big")
        try:
            ed25519.Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                signature[8:], _cosigned_message(note_text, timestamp)
            )
        except InvalidSignature:
            return None
        return timestamp


class Cosigner:
    def __init__(self, name: str, private_key: ed25519.Ed25519PrivateKey) -> None:
        self._key = private_key
        raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.verifier = CosignatureVerifier(name, key_id(name, ALG_COSIGNATURE, raw), raw)

    def cosign(self, note_text: bytes, timestamp: int | None = None) -> str:
        ts = int(time.time()) if timestamp is None else timestamp
        sig = self._key.sign(_cosigned_message(note_text, ts))
        payload = self.verifier.key_hash + ts.to_bytes(8, "big") + sig
        return f"\u2014 {self.verifier.name} {base64.b64encode(payload).decode()}\n"


@dataclass(frozen=True)
class WitnessResponse:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


class Witness:
    """A witness for a set of logs, keeping the latest cosigned checkpoint per origin in a JSON file."""

    def __init__(self, cosigner: Cosigner, logs: dict[str, NoteVerifier], state_file: Path) -> None:
        self.cosigner = cosigner
        self.logs = logs
        self.state_file = state_file
        self._lock = threading.Lock()

    def _state(self) -> dict[str, dict[str, object]]:
        if not self.state_file.exists():
            return {}
        return dict(json.loads(self.state_file.read_text()))

    def _save(self, state: dict[str, dict[str, object]]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.state_file)

    def add_checkpoint(self, body: bytes) -> WitnessResponse:
        head, sep, note_bytes = body.partition(b"\n\n")
        lines = head.decode(errors="replace").split("\n")
        if not sep or not lines[0].startswith("old ") or len(lines) - 1 > MAX_PROOF_LINES:
            return WitnessResponse(400, "malformed request\n")
        try:
            old = int(lines[0][4:])
            proof = [base64.b64decode(line, validate=True) for line in lines[1:]]
            checkpoint = Checkpoint.parse(parse_note(note_bytes).text)
        except (ValueError, binascii.Error, NoteError):
            return WitnessResponse(400, "malformed request\n")
        log_key = self.logs.get(checkpoint.origin)
        if log_key is None:
            return WitnessResponse(404, "unknown log\n")
        try:
            open_note(note_bytes, [log_key])
        except NoteError:
            return WitnessResponse(403, "the checkpoint is not signed by the log's key\n")
        if old > checkpoint.size:
            return WitnessResponse(400, "old size is larger than the checkpoint\n")
        with self._lock:
            state = self._state()
            latest = state.get(checkpoint.origin, {"size": 0, "root": ""})
            latest_size = int(str(latest["size"]))
            if old != latest_size:
                return WitnessResponse(409, f"{latest_size}\n", "text/x.tlog.size")
            try:
                if old == 0:
                    if proof:
                        raise tlog.ProofError("no proof is needed from the empty tree")
                    if checkpoint.size == 0 and checkpoint.root != tlog.EMPTY_ROOT:
                        raise tlog.ProofError("an empty tree has the empty root")
                else:
                    old_root = base64.b64decode(str(latest["root"]))
                    tlog.verify_consistency(old, checkpoint.size, proof, old_root, checkpoint.root)
            except tlog.ProofError as exc:
                return WitnessResponse(422, f"inconsistent: {exc}\n")
            state[checkpoint.origin] = {"size": checkpoint.size, "root": base64.b64encode(checkpoint.root).decode()}
            self._save(state)
        return WitnessResponse(200, self.cosigner.cosign(parse_note(note_bytes).text))


def add_checkpoint_body(old_size: int, proof: Sequence[bytes], note: bytes) -> bytes:
    lines = [f"old {old_size}", *(base64.b64encode(h).decode() for h in proof)]
    return ("\n".join(lines) + "\n\n").encode() + note


def verify_cosigned(
    note: bytes, log_key: NoteVerifier, origin: str, witnesses: Sequence[CosignatureVerifier], quorum: int
) -> Checkpoint:
    """Accept a checkpoint signed by the log and cosigned by at least ``quorum`` of the given witnesses."""
    parsed, _ = open_note(note, [log_key])
    checkpoint = Checkpoint.parse(parsed.text)
    if checkpoint.origin != origin:
        raise NoteError(f"the checkpoint is for {checkpoint.origin!r}, not {origin!r}")
    seen: set[str] = set()
    for sig in parsed.signatures:
        for w in witnesses:
            if w.name == sig.name and w.key_hash == sig.key_hash:
                if w.verify(parsed.text, sig.signature) is None:
                    raise NoteError(f"the cosignature by {w.name} does not verify")
                seen.add(w.vkey)
    if len(seen) < quorum:
        raise NoteError(f"only {len(seen)} of the required {quorum} witness cosignatures are present")
    return checkpoint
