"""One log entry: the canonical bytes of one event about a document. No personal data, ever.

Encoding: UTF-8 JSON, keys sorted, no whitespace, a fixed set of fields; ``refers`` (the leaf index an entry
revokes, supersedes or archives, or the original's issue entry a translation renders) only on those types. The
parser re-encodes and refuses anything not byte-identical, so every entry has exactly one encoding and its leaf
hash is unambiguous.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Self

from errors import PermanentError

EntryType = Literal["issue", "sign", "copy", "revoke", "supersede", "key", "archive", "translation"]
_TYPES = ("issue", "sign", "copy", "revoke", "supersede", "key", "archive", "translation")
# Entries about an earlier entry name its leaf index (a translation names its original's issue entry).
_REFERRING = ("revoke", "supersede", "archive", "translation")
_HEX = re.compile(r"^([0-9a-f]{64})?$")
VERSION = 1


class EntryError(PermanentError, ValueError):
    """The bytes are not a canonical SealTrail log entry."""


@dataclass(frozen=True)
class Entry:
    type: EntryType
    doc_id: str
    pdf_sha256: str
    xml_sha256: str
    signer_cert_sha256: str
    time: datetime
    refers: int | None = None

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise EntryError(f"unknown entry type {self.type!r}")
        for value in (self.pdf_sha256, self.xml_sha256, self.signer_cert_sha256):
            if not _HEX.match(value):
                raise EntryError("hashes are lowercase hex SHA-256 (or empty)")
        if (self.refers is not None) != (self.type in _REFERRING):
            raise EntryError("revoke, supersede, archive and translation entries (only) refer to an earlier entry")
        if self.time.tzinfo is None:
            raise EntryError("entry times must carry a time zone")

    def canonical(self) -> bytes:
        obj: dict[str, object] = {
            "v": VERSION,
            "type": self.type,
            "doc_id": self.doc_id,
            "pdf_sha256": self.pdf_sha256,
            "xml_sha256": self.xml_sha256,
            "signer_cert_sha256": self.signer_cert_sha256,
            "time": self.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if self.refers is not None:
            obj["refers"] = self.refers
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def parse(cls, data: bytes) -> Self:
        try:
            obj = json.loads(data)
            entry = cls(
                type=obj["type"],
                doc_id=obj["doc_id"],
                pdf_sha256=obj["pdf_sha256"],
                xml_sha256=obj["xml_sha256"],
                signer_cert_sha256=obj["signer_cert_sha256"],
                time=datetime.strptime(obj["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC),
                refers=obj.get("refers"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise EntryError(f"not a log entry: {exc}") from exc
        if obj.get("v") != VERSION or entry.canonical() != data:
            raise EntryError("the entry is not in canonical form")
        return entry
