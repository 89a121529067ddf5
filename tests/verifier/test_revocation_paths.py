"""Revocation on every path (issue #20): XAdES without revocation proof is at best indeterminate; a certificate
revoked before signing is invalid; ``sealtrail verify`` on an installation consults the register; a trust bundle
carries a signed "status as of" time that the CLI prints (and warns about when old); ``verify-qr`` applies the
status. Every attack file is made from freshly issued documents or freshly signed XML."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import cms, tsp
from lxml import etree
from typer.testing import CliRunner

import schemas
from hsm_adapters.soft import SoftKeyBackend
from registry.records import DocumentStatus
from schemas.envelope import XADES_NS
from schemas.xml import to_xml
from sealtrail.cli import app
from sealtrail.deployment import Deployment
from signer.issue import IssuedDocument
from signer.statusmanifest import write_status_manifest
from signer.xades import XadesSigner, XmlSignatureRequest, envelope
from tests.verifier.conftest import installation, set_status
from verifier.revocation import CRL_DIR, LocalRevocation, read_crls, read_ocsps
from verifier.xml import XmlVerifier

Installed = tuple[Deployment, list[IssuedDocument]]  # diploma_thpt, diploma_bachelor, transcript_thcs


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    with installation(tmp_path_factory.mktemp("revocation")) as installed:
        yield installed


def _env(dep: Deployment) -> dict[str, str]:
    return {"SEALTRAIL_DATA_DIR": str(dep.settings.data_dir), "SEALTRAIL_DEV_PKI_URL": dep.settings.dev_pki_url}


def _cli(dep: Deployment, *args: str) -> object:
    return CliRunner().invoke(app, list(args), env=_env(dep))


def _b_t_transcript(dep: Deployment, seal_key: str) -> bytes:
    """A transcript XML signed B-T (timestamped, no embedded certificate status) by the dev PKI's teacher and
    principal, and in the seal's slot by ``seal_key``."""
    signer = XadesSigner(timestamp_urls=[dep.dev_pki.tsa_url])  # no trust roots: no RevocationValues
    xml = envelope(to_xml(schemas.parse_document(schemas.load_sample("transcript_thcs"))))
    for role, key in (("homeroom_teacher", "homeroom_teacher"), ("principal", "principal"), ("seal", seal_key)):
        backend = SoftKeyBackend.from_pkcs12(dep.dev_pki.p12_path(key))
        xml = signer.sign(xml, backend, XmlSignatureRequest(role, role))
    assert b"RevocationValues" not in xml and b"EncapsulatedTimeStamp" in xml
    return xml


def _codes(report: object) -> set[str]:
    return {r.code for r in report.reasons}  # type: ignore[attr-defined]


def test_xades_without_revocation_proof_is_at_best_indeterminate(setup: Installed) -> None:
    dep, _docs = setup
    xml = _b_t_transcript(dep, "seal")
    report = XmlVerifier(dep.trust_roots, dep.intermediates).verify(xml)  # nothing but the document's own data
    assert report.verdict == "indeterminate", report.reasons
    assert [s.indication for s in report.signatures] == ["indeterminate"] * 3
    assert "TRY_LATER" in _codes(report)
    # the same file, with the CRLs an installation holds: the status is proven, the document is valid
    assert dep.xml_verifier.verify(xml).verdict == "valid"


def test_xml_signed_by_a_certificate_revoked_before_signing_is_invalid(setup: Installed, tmp_path: Path) -> None:
    dep, _docs = setup
    xml = _b_t_transcript(dep, "revoked_signer")
    # the independent facts: the CA's OCSP answer (openssl reads it) says revoked, before the signature's timestamp
    answer = next(
        o
        for o in dep.local_revocation.get()[1]
        if o.basic_ocsp_response["tbs_response_data"]["responses"][0]["cert_id"]["serial_number"].native
        == dep.dev_pki.cert("revoked_signer").serial_number
    )
    (tmp_path / "answer.der").write_bytes(answer.dump())
    shown = subprocess.run(
        ["openssl", "ocsp", "-respin", str(tmp_path / "answer.der"), "-resp_text", "-noverify"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "Cert Status: revoked" in shown and "Revocation Reason: keyCompromise" in shown, shown
    revoked_at = (
        answer.basic_ocsp_response["tbs_response_data"]["responses"][0]["cert_status"].chosen["revocation_time"].native
    )
    token = etree.fromstring(xml).find(f".//{{{XADES_NS}}}EncapsulatedTimeStamp")
    assert token is not None and token.text
    signed = cms.ContentInfo.load(base64.b64decode(token.text))["content"]
    gen_time = tsp.TSTInfo.load(signed["encap_content_info"]["content"].parsed.dump())["gen_time"].native
    assert revoked_at < gen_time

    report = dep.xml_verifier.verify(xml)  # the installation's CRLs
    assert report.verdict == "invalid" and "REVOKED" in _codes(report), report.reasons
    assert [s.indication for s in report.signatures] == ["valid", "valid", "invalid"]
    path = tmp_path / "revoked-seal.xml"
    path.write_bytes(xml)
    result = _cli(dep, "verify", str(path))
    assert result.exit_code == 1 and "Chứng thư số đã bị thu hồi" in result.output, result.output  # type: ignore[attr-defined]
    # offline, with a trust bundle: its crls/ say the same
    bundle = tmp_path / "bundle"
    assert _cli(dep, "export-trust", str(bundle)).exit_code == 0  # type: ignore[attr-defined]
    assert read_crls(bundle / CRL_DIR) and read_ocsps(bundle / CRL_DIR)
    offline = CliRunner().invoke(app, ["verify", str(path), "--trust", str(bundle)])
    assert offline.exit_code == 1 and "has been revoked" in offline.output, offline.output
    # without any revocation data the same file is not valid either
    bare = XmlVerifier(dep.trust_roots, dep.intermediates)
    assert bare.verify(xml).verdict == "indeterminate"
    bare.local_revocation = LocalRevocation.from_directory(bundle / CRL_DIR)
    assert bare.verify(xml).verdict == "invalid"


def test_cli_on_an_installation_consults_the_register(setup: Installed, tmp_path: Path) -> None:
    dep, docs = setup
    for i, doc in enumerate(docs):
        (tmp_path / f"{i}.pdf").write_bytes(doc.pdf)
        (tmp_path / f"{i}.xml").write_bytes(doc.xml)
    assert _cli(dep, "verify", str(tmp_path / "1.pdf")).exit_code == 0  # type: ignore[attr-defined]
    set_status(dep, docs[1].doc_id, DocumentStatus.REVOKED, status_reason="Cấp sai thông tin")
    set_status(dep, docs[2].doc_id, DocumentStatus.SUPERSEDED, superseded_by=docs[0].doc_id)
    try:
        for name in ("1.pdf", "1.xml"):
            result = _cli(dep, "verify", str(tmp_path / name))
            assert result.exit_code == 1, result.output  # type: ignore[attr-defined]
            assert "Revoked on 02/03/2026. Cấp sai thông tin" in result.output  # type: ignore[attr-defined]
        result = _cli(dep, "verify", str(tmp_path / "2.xml"))
        assert result.exit_code == 1 and f"Superseded by document {docs[0].doc_id}" in result.output  # type: ignore[attr-defined]
        for name in ("0.pdf", "0.xml"):
            result = _cli(dep, "verify", str(tmp_path / name))
            assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
        # verify-qr on the installation: the register's status, whatever the seal says
        result = _cli(dep, "verify-qr", docs[1].qr_payload)
        assert result.exit_code == 1 and "Revoked on" in result.output, result.output  # type: ignore[attr-defined]
        assert "the seal is genuine" in result.output  # type: ignore[attr-defined]
        result = _cli(dep, "verify-qr", docs[0].qr_payload)
        assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    finally:
        set_status(dep, docs[1].doc_id, DocumentStatus.ISSUED, status_reason=None)
        set_status(dep, docs[2].doc_id, DocumentStatus.ISSUED, superseded_by=None)


def test_trust_bundle_carries_a_signed_status_time_and_verify_qr_applies_it(setup: Installed, tmp_path: Path) -> None:
    dep, docs = setup
    set_status(dep, docs[1].doc_id, DocumentStatus.REVOKED, status_reason="Cấp sai thông tin")
    try:
        bundle = tmp_path / "bundle"
        assert _cli(dep, "export-trust", str(bundle)).exit_code == 0  # type: ignore[attr-defined]
    finally:
        set_status(dep, docs[1].doc_id, DocumentStatus.ISSUED, status_reason=None)
    assert (bundle / "status-manifest.jwt").is_file()
    (tmp_path / "0.pdf").write_bytes(docs[0].pdf)
    (tmp_path / "1.pdf").write_bytes(docs[1].pdf)
    runner = CliRunner()  # no installation: the bundle alone
    good = runner.invoke(app, ["verify", str(tmp_path / "0.pdf"), "--trust", str(bundle)])
    assert good.exit_code == 0, good.output
    assert "status as of" in good.output and "WARNING" not in good.output, good.output
    revoked = runner.invoke(app, ["verify", str(tmp_path / "1.pdf"), "--trust", str(bundle)])
    assert revoked.exit_code == 1 and "revoked or superseded" in revoked.output, revoked.output

    qr_good = runner.invoke(app, ["verify-qr", docs[0].qr_payload, "--trust", str(bundle)])
    assert qr_good.exit_code == 0 and "not revoked" in qr_good.output and "status as of" in qr_good.output
    qr_revoked = runner.invoke(app, ["verify-qr", docs[1].qr_payload, "--trust", str(bundle)])
    assert qr_revoked.exit_code == 1 and "NOT VALID" in qr_revoked.output, qr_revoked.output

    # an old bundle: the CLI prints its time and warns past the configured age (default 7 days)
    write_status_manifest(dep, bundle, as_of=datetime.now(UTC) - timedelta(days=10))
    old = runner.invoke(app, ["verify", str(tmp_path / "0.pdf"), "--trust", str(bundle)])
    assert old.exit_code == 0 and "older than 7 days" in old.output, old.output
    lenient = runner.invoke(app, ["verify", str(tmp_path / "0.pdf"), "--trust", str(bundle), "--max-status-age", "30"])
    assert "WARNING" not in lenient.output, lenient.output
    via_env = runner.invoke(
        app, ["verify", str(tmp_path / "0.pdf"), "--trust", str(bundle)], env={"SEALTRAIL_STATUS_MAX_AGE_DAYS": "3"}
    )
    assert "older than 3 days" in via_env.output, via_env.output

    # the index is believed only as signed: pointing the revoked file at the good one's place is caught
    index_path = bundle / "status" / "index.json"
    index = json.loads(index_path.read_text())
    index[docs[1].record.sha256_pdf] = index[docs[0].record.sha256_pdf]
    index_path.write_text(json.dumps(index))
    forged = runner.invoke(app, ["verify", str(tmp_path / "1.pdf"), "--trust", str(bundle)])
    assert forged.exit_code == 1 and "differs from the signed status manifest" in forged.output, forged.output
    # and a bundle without a manifest gives no status at all: never valid
    (bundle / "status-manifest.jwt").unlink()
    unsigned = runner.invoke(app, ["verify", str(tmp_path / "0.pdf"), "--trust", str(bundle)])
    assert unsigned.exit_code == 1 and "no signed status time" in unsigned.output, unsigned.output
