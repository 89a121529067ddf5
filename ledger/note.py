"""C2SP signed notes (Ed25519), verifier keys, and tlog checkpoints.

A note is text ending in a newline, a blank line, then signature lines ``— <name> <base64(keyid || sig)>``.
Parsing is strict; signatures from unknown keys are ignored; a known key whose signature fails rejects the
note; a note with no verified signature from a key we were asked to trust is rejected. The log's own signature
is found by name and key ID, never assumed to be the first line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from errors import PermanentError

ALG_ED25519 = 0x01
MAX_SIGNATURES = 32
MAX_NOTE_BYTES = 64 * 1024
_NAME = re.compile(r"^[^\s+]+$")
_SIG_LINE = re.compile(r"^\u2014 (\S+) ([A-Za-z0-9+/=]+)$")


class NoteError(PermanentError, ValueError):
    """A note, key or checkpoint is malformed or its signatures do not verify."""


def key_id(name: str, alg: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4]


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise NoteError(f"key name {name!r} is empty or has spaces or '+'")


@dataclass(frozen=True)
class NoteVerifier:
    """An Ed25519 verifier key, as published in the vkey format."""

    name: str
    key_hash: bytes
    public_key: bytes

    @classmethod
    def from_vkey(cls, vkey: str) -> Self:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("a verifier key has the form name+keyid+base64key")
        name, hex_id, b64 = parts
        _check_name(name)
        try:
            raw = base64.b64decode(b64, validate=True)
            kid = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError) as exc:
            raise NoteError("the verifier key is not valid hex/base64") from exc
        if len(kid) != 4 or len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("only Ed25519 verifier keys are supported")
        if key_id(name, ALG_ED25519, raw[1:]) != kid:
            raise NoteError("the verifier key's ID does not match its name and key")
        return cls(name, kid, raw[1:])

    @property
    def vkey(self) -> str:
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_hash.hex()}+{encoded}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            ed25519.Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, text)
        except InvalidSignature:
            return False
        return True


class NoteSigner:
    """Signs notes with an Ed25519 key under a key name (for a log: its origin)."""

    def __init__(self, name: str, private_key: ed25519.Ed25519PrivateKey) -> None:
        _check_name(name)
        self.name = name
        self._key = private_key
        raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.verifier = NoteVerifier(name, key_id(name, ALG_ED25519, raw), raw)

    def signature_line(self, text: bytes) -> str:
        sig = self._key.sign(text)
        return f"\u2014 {self.name} {base64.b64encode(self.verifier.key_hash + sig).decode()}\n"


@dataclass(frozen=True)
class Signature:
    name: str
    key_hash: bytes
    signature: bytes


@dataclass(frozen=True)
class Note:
    text: bytes
    signatures: tuple[Signature, ...]


def sign_note(text: str, *signers: NoteSigner) -> bytes:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    raw = text.encode()
    return raw + b"\n" + "".join(s.signature_line(raw) for s in signers).encode()


def parse_note(data: bytes) -> Note:
    if len(data) > MAX_NOTE_BYTES:
        raise NoteError("the note is too large")
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteError("the note is not UTF-8") from exc
    if any(ord(c) < 0x20 and c != "\n" for c in decoded):
        raise NoteError("the note contains control characters")
    split = data.rfind(b"\n\n")
    if split < 0 or not data.endswith(b"\n"):
        raise NoteError("the note has no signature block")
    text, block = data[: split + 1], data[split + 2 :]
    sigs = []
    for line in block.decode().split("\n")[:-1]:
        m = _SIG_LINE.match(line)
        if not m:
            raise NoteError(f"malformed signature line {line[:60]!r}")
        try:
            raw = base64.b64decode(m.group(2), validate=True)
        except binascii.Error as exc:
            raise NoteError("a signature is not valid base64") from exc
        if len(raw) < 5:
            raise NoteError("a signature is too short")
        sigs.append(Signature(m.group(1), raw[:4], raw[4:]))
    if not sigs or len(sigs) > MAX_SIGNATURES:
        raise NoteError("the note has no signatures, or too many")
    return Note(text, tuple(sigs))


def open_note(data: bytes, verifiers: list[NoteVerifier]) -> tuple[Note, list[NoteVerifier]]:
    """Parse and verify; return the note and the known keys whose signatures verified (at least one)."""
    note = parse_note(data)
    verified = []
    for sig in note.signatures:
        for v in verifiers:
            if v.name == sig.name and v.key_hash == sig.key_hash:
                if not v.verify(note.text, sig.signature):
                    raise NoteError(f"the signature by {v.name} does not verify")
                verified.append(v)
    if not verified:
        raise NoteError("no signature on the note is from a trusted key")
    return note, verified


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: bytes) -> Self:
        lines = text.decode().split("\n")
        if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
            raise NoteError("a checkpoint has an origin, a size and a root hash, one per line")
        origin, size_s, root_s, *ext = lines[:-1]
        if not re.fullmatch(r"0|[1-9][0-9]*", size_s):
            raise NoteError("the checkpoint size is not a decimal number")
        try:
            root = base64.b64decode(root_s, validate=True)
        except binascii.Error as exc:
            raise NoteError("the checkpoint root is not base64") from exc
        if len(root) != 32:
            raise NoteError("the checkpoint root is not 32 bytes")
        return cls(origin, int(size_s), root, tuple(ext))


def open_checkpoint(data: bytes, log_key: NoteVerifier, origin: str) -> Checkpoint:
    """Verify a checkpoint note against the log's key and expected origin."""
    note, _ = open_note(data, [log_key])
    checkpoint = Checkpoint.parse(note.text)
    if checkpoint.origin != origin:
        raise NoteError(f"the checkpoint is for log {checkpoint.origin!r}, not {origin!r}")
    return checkpoint
