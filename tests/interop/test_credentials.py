"""Credentials built from every sample document conform to the shipped schemas (no signing, no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import schemas
from schemas.vcschema import credential_errors
from signer.vc import CredentialError, LedgerLink, document_credential

LINK = LedgerLink("X-1", "sealtrail.localhost/log", 3, "a" * 64, "b" * 64, b"{}", None)


@pytest.mark.parametrize(
    "sample", ["diploma_thpt", "diploma_bachelor", "transcript_thcs", "transcript_thpt", "transcript_primary"]
)
def test_every_sample_document_makes_a_conforming_credential(sample: str) -> None:
    doc = schemas.parse_document(schemas.load_sample(sample))
    credential = document_credential(doc, "https://verify.example.vn", datetime.now(UTC), ("01/2025-2026", 5), LINK)
    assert credential_errors(credential) == []
    assert credential["credentialStatus"]["statusListIndex"] == "5"
    if isinstance(doc, schemas.Transcript):
        years = credential["credentialSubject"].get("schoolYears") or credential["credentialSubject"]["primaryYears"]
        assert len(years) == len(doc.years or doc.primary_years)


def test_a_certified_copy_is_not_exported_as_a_credential() -> None:
    from schemas.copy import CertifiedCopy

    diploma = schemas.parse_document(schemas.load_sample("diploma_thpt"))
    assert isinstance(diploma, schemas.Diploma)
    copy = CertifiedCopy(
        original_doc_id="VB-1",
        original_kind="diploma",
        original_sha256_pdf="c" * 64,
        holder=diploma.holder,
        issuer=diploma.issuer,
        copy_number=1,
        issue_date=diploma.issue_date,
        issue_place="Hà Nội",
    )
    with pytest.raises(CredentialError, match="only diplomas and transcripts"):
        document_credential(copy, "https://verify.example.vn", datetime.now(UTC), ("01/2025-2026", 5), LINK)


def test_the_schema_registry_never_fetches_an_unknown_ref() -> None:
    from referencing.exceptions import Unresolvable

    from schemas.vcschema import _registry

    with pytest.raises(Unresolvable):
        _registry().resolver().lookup("https://schemas.example.org/elsewhere.json")
