"""The register's look-up keys: two keyed hashes per document (HMAC-SHA256 with the installation's secret), one
of the normalised document number (indexed, to find the row) and one of the normalised (name, date of birth), to
compare. No personal data in clear; the bulk look-ups that use them are ``verifier.lookup``."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from datetime import date
from typing import Any


def normalise_name(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def normalise_number(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def number_hash(key: bytes, number: str) -> str:
    return hmac.new(key, b"number\0" + normalise_number(number).encode(), hashlib.sha256).hexdigest()


def holder_hash(key: bytes, name: str, birth_date: date) -> str:
    data = b"holder\0" + normalise_name(name).encode() + b"\0" + birth_date.isoformat().encode()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def document_number(doc: Any) -> str | None:
    """The number a person would type for this document: a diploma's số hiệu, a transcript's record id."""
    kind = getattr(doc, "kind", None)
    if kind == "diploma":
        return str(doc.diploma_number)
    if kind == "transcript":
        return str(doc.record_id)
    return None


def lookup_columns(key: bytes, doc: Any) -> dict[str, str | None]:
    """The register's two lookup columns for a document (None for kinds without a number)."""
    number = document_number(doc)
    if number is None:
        return {"lookup_number": None, "lookup_holder": None}
    holder = doc.holder
    return {
        "lookup_number": number_hash(key, number),
        "lookup_holder": holder_hash(key, holder.full_name, holder.birth_date),
    }
