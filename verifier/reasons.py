"""A verdict and the findings behind it, as every check reports them (``verifier.pdf``, ``verifier.xml``,
``verifier.policy``, the register and log checks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["valid", "invalid", "indeterminate"]


@dataclass(frozen=True)
class Reason:
    """One finding, in Vietnamese first and English second. ``code`` follows ETSI TS 119 102-1 sub-indications."""

    code: str
    vi: str
    en: str
