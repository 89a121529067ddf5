"""How a verdict is said: one primary reason first for people, ETSI-style indications for machines.

People read the first reason as *the* answer, so the reason that decides the verdict comes first (for an invalid
document, what makes it invalid, content problems before certificate problems before the register's standing).
Machines get the ETSI EN 319 102-1 vocabulary beside SealTrail's own codes: an indication (``TOTAL_PASSED``,
``TOTAL_FAILED``, ``INDETERMINATE``) and a sub-indication (``HASH_FAILURE``, ``REVOKED``, ``NO_POE``, ...).
SealTrail's codes that ETSI has no word for (a document revoked in the register, a file that is not the one
issued) are mapped to the closest sub-indication and keep their own code in ``reason_code``.
"""

from __future__ import annotations

from typing import Any

PASSED, FAILED, INDETERMINATE = "TOTAL_PASSED", "TOTAL_FAILED", "INDETERMINATE"
INDICATIONS = {"valid": PASSED, "invalid": FAILED, "indeterminate": INDETERMINATE}

# SealTrail reason code → (ETSI sub-indication, rank). A lower rank is the more fundamental reason: it goes first.
SUB_INDICATIONS: dict[str, tuple[str, int]] = {
    # the content is not what was signed or issued
    "NOT_AS_ISSUED": ("HASH_FAILURE", 0),
    "HASH_FAILURE": ("HASH_FAILURE", 1),
    "MODIFIED_AFTER_SIGNING": ("HASH_FAILURE", 2),
    "ATTACHMENT_MISMATCH": ("HASH_FAILURE", 3),
    "FORMAT_FAILURE": ("FORMAT_FAILURE", 4),
    "SIG_CRYPTO_FAILURE": ("SIG_CRYPTO_FAILURE", 5),
    "QR_OTHER_DOCUMENT": ("HASH_FAILURE", 6),
    "LEDGER_MISMATCH": ("HASH_FAILURE", 7),
    # who signed: the signer policy (roles, order, identities) for the document kind
    "SIGNER_POLICY_FAILURE": ("SIG_CONSTRAINTS_FAILURE", 8),
    # the signer's certificate
    "REVOKED": ("REVOKED", 10),
    "REVOKED_NO_POE": ("REVOKED_NO_POE", 11),
    "NO_CERTIFICATE_CHAIN_FOUND": ("NO_CERTIFICATE_CHAIN_FOUND", 12),
    "OUT_OF_BOUNDS_NO_POE": ("OUT_OF_BOUNDS_NO_POE", 13),
    "REVOCATION_OUT_OF_BOUNDS_NO_POE": ("REVOCATION_OUT_OF_BOUNDS_NO_POE", 14),
    "TIMESTAMP_NOT_TRUSTED": ("NO_POE", 15),
    "TRY_LATER": ("TRY_LATER", 16),
    # the register's standing
    "DOCUMENT_REVOKED": ("REVOKED", 20),
    "DOCUMENT_SUPERSEDED": ("REVOKED", 21),
    "ORIGINAL_REVOKED": ("REVOKED", 22),
    "ORIGINAL_SUPERSEDED": ("REVOKED", 23),
    "NOT_YET_ISSUED": ("TRY_LATER", 24),
    "LOG_UNAVAILABLE": ("TRY_LATER", 25),
    "STATUS_UNAVAILABLE": ("TRY_LATER", 25),
    "NOT_IN_REGISTER": ("NO_POE", 26),
    "ORIGINAL_UNKNOWN": ("NO_POE", 27),
    # the check itself
    "ATTACHMENT_NOT_VALID": ("FORMAT_FAILURE", 30),
    "PAGE_TEXT_UNAVAILABLE": ("GENERIC", 31),
    "TOO_COMPLEX": ("GENERIC", 32),
    "GENERIC": ("GENERIC", 33),
}
INFORMATIONAL = {"TRANSLATION_OF"}  # a line that describes, not a problem
# Codes whose presence makes a document invalid on its own (the verifiers' and the register's).
FAILING = {
    "NOT_AS_ISSUED", "HASH_FAILURE", "MODIFIED_AFTER_SIGNING", "ATTACHMENT_MISMATCH", "FORMAT_FAILURE",
    "SIG_CRYPTO_FAILURE", "REVOKED", "DOCUMENT_REVOKED", "DOCUMENT_SUPERSEDED", "ORIGINAL_REVOKED",
    "ORIGINAL_SUPERSEDED", "SIGNER_POLICY_FAILURE", "QR_OTHER_DOCUMENT", "LEDGER_MISMATCH",
}  # fmt: skip
_UNKNOWN_RANK = 9  # a code added elsewhere (e.g. a structure or policy finding) ranks with the content problems


def _rank(code: str, verdict: str) -> tuple[int, int]:
    if code in INFORMATIONAL:
        return (2, 0)
    known = SUB_INDICATIONS.get(code)
    rank = known[1] if known else _UNKNOWN_RANK
    # For an invalid document, a reason that fails it comes before any that only leaves it unconfirmed.
    decides = verdict != "invalid" or code in FAILING or known is None
    return (0 if decides else 1, rank)


def primary_first(reasons: list[Any], verdict: str) -> list[Any]:
    """The reasons, deduplicated, with the one that decides ``verdict`` first (stable otherwise)."""
    unique = list(dict.fromkeys(reasons))
    return sorted(unique, key=lambda r: _rank(r.code, verdict))


def finish(report: Any) -> Any:
    """Put the report's primary reason first (in place); returns the report."""
    report.reasons = primary_first(list(report.reasons), report.verdict)
    return report


def sub_indication(code: str, indication: str) -> str:
    known = SUB_INDICATIONS.get(code)
    if known is not None:
        return known[0]
    return "FORMAT_FAILURE" if indication == FAILED else "GENERIC"


def etsi(verdict: str, reasons: list[Any]) -> dict[str, Any]:
    """``indication``, ``sub_indication`` (None when passed) and ``reason_code`` (SealTrail's) for a verdict."""
    indication = INDICATIONS[verdict]
    problems = [r for r in primary_first(list(reasons), verdict) if r.code not in INFORMATIONAL]
    if indication == PASSED or not problems:
        return {"indication": indication, "sub_indication": None, "reason_code": None}
    code = problems[0].code
    return {"indication": indication, "sub_indication": sub_indication(code, indication), "reason_code": code}
