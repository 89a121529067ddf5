"""CSV cells that a spreadsheet will not run: any text starting with =, +, -, @, a tab or a carriage return is
prefixed with an apostrophe (OWASP's advice against CSV/formula injection). Every CSV SealTrail writes goes through
``safe_writer`` so text written by someone else (a file name, an audit target, another school's user name) never
becomes a formula in the reader's Excel or LibreOffice."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: Any) -> Any:
    """``value`` with a leading apostrophe when it is text a spreadsheet would read as a formula; other values as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeWriter:
    """``csv.writer`` whose every text cell goes through ``safe_text``."""

    def __init__(self, out: Any, **kwargs: Any) -> None:
        self._writer = csv.writer(out, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_text(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def safe_writer(out: Any, **kwargs: Any) -> SafeWriter:
    return SafeWriter(out, **kwargs)
