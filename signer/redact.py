"""What must never reach a log: personal data of the document in hand, registered secrets, ID-like numbers.

``redact`` is applied to every log record by the logging filter (``sealtrail.logs``). Three layers:
- the holder's values while a document is being issued (``personal_data``, a context variable, so each thread or
  task sees only its own document's values), in the forms they may be written (NFC, NFD, upper case);
- secrets registered at start-up (the PKCS#11 PIN, the bucket's secret key, the database password);
- patterns: 9-, 10- and 12-digit numbers standing alone (CMND, phone numbers, CCCD / personal ID numbers),
  ``pin=…``/``password=…``-style pairs, bearer tokens and passwords inside URLs.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

MASK = "[redacted]"
_MIN_LEN = 3

_current: ContextVar[tuple[str, ...]] = ContextVar("sealtrail_personal_values", default=())
_secrets: set[str] = set()
_secrets_lock = threading.Lock()

_PATTERNS = [
    (re.compile(r"(?<![0-9A-Za-z])(?:\d{12}|\d{10}|\d{9})(?![0-9A-Za-z])"), MASK),
    (re.compile(r"(?i)\b(pin|password|passwd|passphrase|secret|api[_-]?key|token)(\s*[=:]\s*)\S+"), r"\1\2" + MASK),
    (re.compile(r"(?i)\bbearer\s+\S+"), "Bearer " + MASK),
    (re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), r"\1" + MASK + "@"),
]


def _forms(value: str) -> set[str]:
    value = value.strip()
    if len(value) < _MIN_LEN:
        return set()
    forms = {value, unicodedata.normalize("NFC", value), unicodedata.normalize("NFD", value)}
    return forms | {f.upper() for f in forms} | {f.lower() for f in forms}


def personal_values(person: Any) -> list[str]:
    """The values of a ``schemas.Person`` that identify someone (names, birth data, ID numbers)."""
    out = [
        getattr(person, "full_name", ""),
        getattr(person, "family_name", "") + " " + getattr(person, "middle_name", ""),
        getattr(person, "birth_place", ""),
        getattr(person, "personal_id", None) or "",
        getattr(person, "learner_code", None) or "",
    ]
    birth = getattr(person, "birth_date", None)
    if birth is not None:
        out += [birth.isoformat(), birth.strftime("%d/%m/%Y"), birth.strftime("%d-%m-%Y")]
    return [v for v in out if v and v.strip()]


@contextmanager
def personal_data(values: Iterable[str]) -> Iterator[None]:
    """While inside, these values are masked in every log record emitted by this thread or task."""
    forms: set[str] = set()
    for value in values:
        forms |= _forms(value)
    token = _current.set(tuple(sorted(forms | set(_current.get()), key=len, reverse=True)))
    try:
        yield
    finally:
        _current.reset(token)


def register_secret(value: str | None) -> None:
    """A secret (PIN, key, password) that must never be logged, for the life of the process."""
    if value and len(value.strip()) >= _MIN_LEN:
        with _secrets_lock:
            _secrets.add(value.strip())


def redact(text: str) -> str:
    if not text:
        return text
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for value in (*secrets, *_current.get()):
        if value in text:
            text = text.replace(value, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
