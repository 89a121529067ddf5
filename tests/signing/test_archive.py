"""PAdES B-LTA: document timestamps over fresh validation data, checked with pdfsig, pyHanko's AdES LTA
validation (offline, from the document's own DSS) and our validator."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from datetime import timedelta
from io import BytesIO
from pathlib import Path

import pytest
import weasyprint
from asn1crypto import x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESIndeterminate, AdESPassed, AdESSubIndic
from pyhanko.sign.validation import DocumentSecurityStore, validate_pdf_timestamp
from pyhanko.sign.validation.ades import ades_lta_validation
from pyhanko.sign.validation.policy_decl import (
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko.sign.validation.status import DocumentTimestampStatus
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy
from pyhanko_certvalidator.registry import SimpleTrustManager

from sealtrail.devpki import SIGNER_ROLES, DevPki
from signer.archive import extend_to_lta, needs_renewal
from signer.pdf import PadesSigner, SigningError
from tests.conftest import free_port
from tests.signing.test_pades import _pdf, _sign_all
from verifier.pdf import PdfVerifier

SIGNATURE_FIELDS = [f"sig_{role}" for role in SIGNER_ROLES]


def _b_lt(pki: DevPki) -> bytes:
    signer = PadesSigner(trust_roots=[pki.root], other_certs=[pki.issuing_ca], timestamp_urls=[pki.tsa_url])
    return _sign_all(pki, _pdf(), signer)


def _extend(pki: DevPki, pdf: bytes, urls: list[str] | None = None) -> bytes:
    return extend_to_lta(
        pdf, timestamp_urls=urls or [pki.tsa_url], trust_roots=[pki.root], other_certs=[pki.issuing_ca]
    )


def _reader(pdf: bytes) -> PdfFileReader:
    return PdfFileReader(BytesIO(pdf), strict=False)


def _pdfsig(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, timeout=60).stdout


def _lta_indications(pdf: bytes, root: x509.Certificate) -> dict[str, AdESSubIndic]:
    """PAdES LTA validation (ETSI EN 319 102-1 § 5.6.3) of every signature, offline: only the document's DSS."""
    spec = PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=CertValidationPolicySpec(
                trust_manager=SimpleTrustManager.build(trust_roots=[root]),
                revinfo_policy=CertRevTrustPolicy(RevocationCheckingPolicy.from_legacy("require")),
            ),
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY
            ),
        )
    )
    results: dict[str, AdESSubIndic] = {}
    for sig in _reader(pdf).embedded_regular_signatures:
        result = asyncio.run(ades_lta_validation(sig, spec))
        results[sig.field_name] = result.ades_subindic
    return results


def _document_timestamps(pdf: bytes, root: x509.Certificate) -> list[tuple[str, DocumentTimestampStatus]]:
    """Every document timestamp, validated offline against the document's own DSS."""
    reader = _reader(pdf)
    dss = DocumentSecurityStore.read_dss(reader)
    out = []
    for ts in reader.embedded_timestamp_signatures:
        context = dss.as_validation_context(
            {"trust_roots": [root], "allow_fetching": False, "revocation_mode": "hard-fail"}
        )
        out.append((ts.field_name, validate_pdf_timestamp(ts, context)))
    return out


def _assert_timestamp_ok(status: DocumentTimestampStatus) -> None:
    assert status.intact and status.valid and status.trusted, status.summary()


@pytest.fixture(scope="module")
def b_lt(dev_pki: DevPki) -> bytes:
    return _b_lt(dev_pki)


@pytest.fixture(scope="module")
def lta(dev_pki: DevPki, b_lt: bytes) -> bytes:
    return _extend(dev_pki, b_lt)


@pytest.fixture(scope="module")
def lta_twice(dev_pki: DevPki, lta: bytes) -> bytes:
    return _extend(dev_pki, lta)


def test_b_lt_alone_does_not_pass_lta_validation(b_lt: bytes, dev_pki: DevPki) -> None:
    """The control for the next test: without a document timestamp there is no proof of existence."""
    assert set(_lta_indications(b_lt, dev_pki.root).values()) == {AdESIndeterminate.NO_POE}
    assert _reader(b_lt).embedded_timestamp_signatures == []


def test_extension_adds_one_document_timestamp_and_passes_lta_validation(
    b_lt: bytes, lta: bytes, dev_pki: DevPki, tmp_path: Path
) -> None:
    assert lta.startswith(b_lt), "the extension must be an incremental update of the signed bytes"

    text = _pdfsig(lta, tmp_path)
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if "Signature Field Name" in line]
    assert names == [*SIGNATURE_FIELDS, "archive_timestamp_1"]
    assert text.count("Signature Validation: Signature is Valid.") == 3
    assert text.count("Signature Type: ETSI.CAdES.detached") == 3

    timestamps = _document_timestamps(lta, dev_pki.root)
    assert [name for name, _ in timestamps] == ["archive_timestamp_1"]
    _assert_timestamp_ok(timestamps[0][1])

    assert _lta_indications(lta, dev_pki.root) == dict.fromkeys(SIGNATURE_FIELDS, AdESPassed.OK)

    report = PdfVerifier([dev_pki.root]).verify(lta)
    assert report.verdict == "valid", report.reasons
    assert [s.field_name for s in report.signatures] == SIGNATURE_FIELDS


def test_extension_refreshes_the_revocation_data(b_lt: bytes, lta: bytes) -> None:
    before = DocumentSecurityStore.read_dss(_reader(b_lt))
    after = DocumentSecurityStore.read_dss(_reader(lta))
    assert len(after.ocsps) > len(before.ocsps), "fresh OCSP responses for the three signers were expected"
    assert len(after.crls) >= 1, "the CRL covering the TSA certificate must be embedded"


def test_extending_twice_builds_an_archive_chain(lta: bytes, lta_twice: bytes, dev_pki: DevPki, tmp_path: Path) -> None:
    assert lta_twice.startswith(lta)
    timestamps = _document_timestamps(lta_twice, dev_pki.root)
    assert [name for name, _ in timestamps] == ["archive_timestamp_1", "archive_timestamp_2"]
    for _name, status in timestamps:
        _assert_timestamp_ok(status)
    assert timestamps[0][1].timestamp <= timestamps[1][1].timestamp

    assert _pdfsig(lta_twice, tmp_path).count("Signature Validation: Signature is Valid.") == 3
    assert _lta_indications(lta_twice, dev_pki.root) == dict.fromkeys(SIGNATURE_FIELDS, AdESPassed.OK)
    assert PdfVerifier([dev_pki.root]).verify(lta_twice).verdict == "valid"


def test_needs_renewal(b_lt: bytes, lta: bytes, dev_pki: DevPki) -> None:
    assert needs_renewal(b_lt) is True
    assert needs_renewal(lta) is False

    not_after = dev_pki.cert("tsa").not_valid_after
    days = 365
    boundary = not_after - timedelta(days=days)
    assert needs_renewal(lta, within_days=days, now=boundary - timedelta(minutes=1)) is False
    assert needs_renewal(lta, within_days=days, now=boundary + timedelta(minutes=1)) is True
    assert needs_renewal(lta, within_days=0, now=not_after + timedelta(days=1)) is True


def test_needs_renewal_looks_at_the_newest_timestamp(lta_twice: bytes) -> None:
    assert needs_renewal(lta_twice) is False


def test_dead_timestamp_authority_leaves_the_document_as_it_was(b_lt: bytes, lta: bytes, dev_pki: DevPki) -> None:
    dead = f"http://127.0.0.1:{free_port()}/tsa"
    for original in (b_lt, lta):
        digest = hashlib.sha256(original).hexdigest()
        timestamps = len(_reader(original).embedded_timestamp_signatures)
        with pytest.raises(SigningError, match="timestamp service could not be reached"):
            _extend(dev_pki, original, [dead])
        assert hashlib.sha256(original).hexdigest() == digest
        assert len(_reader(original).embedded_timestamp_signatures) == timestamps


def test_second_timestamp_authority_takes_over(b_lt: bytes, dev_pki: DevPki) -> None:
    dead = f"http://127.0.0.1:{free_port()}/tsa"
    pdf = _extend(dev_pki, b_lt, [dead, dev_pki.tsa_url])
    [(_name, status)] = _document_timestamps(pdf, dev_pki.root)
    _assert_timestamp_ok(status)


def test_unreadable_or_unsigned_input_is_refused(dev_pki: DevPki) -> None:
    with pytest.raises(SigningError, match="not a readable PDF"):
        _extend(dev_pki, b"this is not a PDF")
    with pytest.raises(SigningError, match="not a readable PDF"):
        needs_renewal(b"%PDF-1.7\n garbage")
    unsigned = weasyprint.HTML(string="<p>x</p>").write_pdf()
    with pytest.raises(SigningError, match="no signature"):
        _extend(dev_pki, unsigned)
