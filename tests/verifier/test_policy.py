"""The signer policy (verifier/policy.py) on real documents: each attack file is made from a freshly issued one
(cut back to an earlier revision, a signature node removed, a label changed, or issued by an insider with one
key for every role) and checked through the API every public surface uses (``check_upload``), the verifiers and
the CLI. pdfsig and xmlsec1 show that the signatures themselves are still mathematically fine: only the policy
can call these documents what they are."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import pem
from lxml import etree
from pyhanko.pdf_utils.reader import PdfFileReader
from typer.testing import CliRunner

import schemas
from hsm_adapters.soft import SoftKeyBackend
from schemas.envelope import DS_NS, SIGNED_NS, XADES_NS
from sealtrail.cli import app
from sealtrail.deployment import Deployment
from signer.issue import IssuedDocument
from signer.pdf import ROLE_URI_PREFIX
from tests.verifier.conftest import installation
from verifier import policy
from verifier.checking import check_upload
from verifier.policy import SignedRole

Installed = tuple[Deployment, list[IssuedDocument]]  # diploma_thpt, diploma_bachelor, transcript_thcs


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    with installation(tmp_path_factory.mktemp("policy")) as installed:
        yield installed


@pytest.fixture(scope="module")
def one_key(setup: Installed) -> IssuedDocument:
    """An insider's transcript: the three fields (and the three XML slots) signed with the seal's key alone."""
    dep, _docs = setup
    seal = SoftKeyBackend.from_pkcs12(dep.dev_pki.p12_path("seal"))
    issuer = dataclasses.replace(dep.make_issuer(), keys={"homeroom_teacher": seal, "principal": seal, "seal": seal})
    doc = schemas.parse_document(schemas.load_sample("transcript_thcs"))
    return issuer.issue(doc, doc_id="HB-2025-0NE0KEY00000")  # a new id: not the journal's earlier document


def _codes(report: object) -> set[str]:
    return {r.code for r in report.reasons}  # type: ignore[attr-defined]


def _text(report: object) -> str:
    return " | ".join(f"{r.vi} / {r.en}" for r in report.reasons)  # type: ignore[attr-defined]


def _cut_before_signature(pdf: bytes, index: int) -> bytes:
    """The PDF as it stood before signature ``index`` was added: truncated after the last revision (its %%EOF)
    that ends before that signature's own revision (so the earlier signer's DSS revision stays)."""
    sig = PdfFileReader(BytesIO(pdf), strict=False).embedded_regular_signatures[index]
    contents_at = sig.byte_range[1]  # the /Contents hole lies inside the signature's own revision
    ends = [m.end() for m in re.finditer(rb"%%EOF\r?\n?", pdf) if m.end() <= contents_at]
    return pdf[: ends[-1]]


def _pdfsig(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "checked.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, timeout=60).stdout


def _cli_verify(dep: Deployment, path: Path) -> object:
    env = {"SEALTRAIL_DATA_DIR": str(dep.settings.data_dir), "SEALTRAIL_DEV_PKI_URL": dep.settings.dev_pki_url}
    return CliRunner().invoke(app, ["verify", str(path)], env=env)


def _xmlsec(xml: bytes, node_id: str, dep: Deployment, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path, root, ca = tmp_path / "doc.xml", tmp_path / "root.pem", tmp_path / "ca.pem"
    path.write_bytes(xml)
    root.write_bytes(pem.armor("CERTIFICATE", dep.trust_roots[0].dump()))
    ca.write_bytes(b"".join(pem.armor("CERTIFICATE", c.dump()) for c in dep.intermediates))
    args = ["xmlsec1", "--verify", "--node-id", node_id, "--trusted-pem", str(root), "--untrusted-pem", str(ca)]
    for attr in ("urn:sealtrail:signed:1:DuLieu", f"{XADES_NS}:SignedProperties", f"{DS_NS}:KeyInfo",
                 f"{DS_NS}:SignatureValue", f"{DS_NS}:Signature"):  # fmt: skip
        args += ["--id-attr:Id", attr]
    return subprocess.run([*args, str(path)], capture_output=True, text=True, timeout=60)


# --- documents the system issues stay valid, and say their role in signed properties ---------------------------


def test_issued_documents_meet_the_policy(setup: Installed) -> None:
    dep, docs = setup
    for doc in docs:
        for data in (doc.pdf, doc.xml):
            report = check_upload(dep, data).report
            assert report.verdict == "valid", (doc.doc_id, _text(report))


def test_pdf_signatures_claim_their_role_in_a_signed_cades_attribute(setup: Installed) -> None:
    _dep, docs = setup
    sigs = PdfFileReader(BytesIO(docs[2].pdf), strict=False).embedded_regular_signatures
    claimed = [policy.cades_claimed_roles(s.signer_info) for s in sigs]
    assert claimed == [[ROLE_URI_PREFIX + r] for r in ("homeroom_teacher", "principal", "seal")]


def test_xml_signatures_claim_their_role_inside_signed_properties(setup: Installed) -> None:
    _dep, docs = setup
    root = etree.fromstring(docs[2].xml)
    for slot in root.iter(f"{{{SIGNED_NS}}}ChuKy"):
        props = slot.find(f".//{{{XADES_NS}}}SignedProperties")
        assert props is not None
        roles = [e.text for e in props.iter(f"{{{XADES_NS}}}ClaimedRole")]
        assert roles[0] == slot.get("VaiTro"), roles


# --- PDF attacks ------------------------------------------------------------------------------------------------


def test_transcript_cut_back_to_the_teachers_signature_is_invalid(setup: Installed, tmp_path: Path) -> None:
    dep, docs = setup
    cut = _cut_before_signature(docs[2].pdf, 1)
    assert len(PdfFileReader(BytesIO(cut), strict=False).embedded_regular_signatures) == 1
    text = _pdfsig(cut, tmp_path)
    assert text.count("Signature Validation: Signature is Valid.") == 1, text  # the teacher's: sound alone
    assert text.count("The signature form field is not signed.") == 2, text
    report = check_upload(dep, cut).report
    assert report.verdict == "invalid" and "SIGNER_POLICY_FAILURE" in _codes(report), _text(report)
    assert "Thiếu chữ ký bắt buộc" in _text(report) and "principal" in _text(report) and "seal" in _text(report)
    assert report.signatures[0].indication == "valid"  # the teacher's signature itself is sound
    path = tmp_path / "teacher-only.pdf"
    path.write_bytes(cut)
    result = _cli_verify(dep, path)
    assert result.exit_code == 1 and "A required signature is missing" in result.output, result.output  # type: ignore[attr-defined]


def test_diploma_without_the_seal_is_invalid(setup: Installed, tmp_path: Path) -> None:
    dep, docs = setup
    cut = _cut_before_signature(docs[0].pdf, 1)  # diploma: principal, then seal
    report = dep.pdf_verifier.verify(cut)
    assert report.verdict == "invalid" and "SIGNER_POLICY_FAILURE" in _codes(report), _text(report)
    assert "the institution's seal" in _text(report)
    path = tmp_path / "no-seal.pdf"
    path.write_bytes(cut)
    result = _cli_verify(dep, path)
    assert result.exit_code == 1 and "Thiếu chữ ký bắt buộc" in result.output, result.output  # type: ignore[attr-defined]


def test_three_roles_signed_by_one_key_is_invalid_in_pdf_and_xml(
    setup: Installed, one_key: IssuedDocument, tmp_path: Path
) -> None:
    dep, _docs = setup
    text = _pdfsig(one_key.pdf, tmp_path)
    assert text.count("Signature Validation: Signature is Valid.") == 3, text  # each signature is fine alone
    for data in (one_key.pdf, one_key.xml):
        report = check_upload(dep, data).report  # registered (the insider issued it), and still not valid
        assert report.verdict == "invalid" and "SIGNER_POLICY_FAILURE" in _codes(report), _text(report)
        assert "One signer holds two roles" in _text(report)
    path = tmp_path / "one-key.xml"
    path.write_bytes(one_key.xml)
    result = _cli_verify(dep, path)
    assert result.exit_code == 1 and "Cùng một người ký giữ hai vai trò" in result.output, result.output  # type: ignore[attr-defined]


# --- XML attacks ------------------------------------------------------------------------------------------------


def _slots(root: etree._Element) -> list[etree._Element]:
    return root.findall(f"{{{SIGNED_NS}}}ChuKySo/{{{SIGNED_NS}}}ChuKy")


def test_xml_with_later_signatures_removed_is_invalid(setup: Installed, tmp_path: Path) -> None:
    dep, docs = setup
    root = etree.fromstring(docs[2].xml)
    for slot in _slots(root)[1:]:  # keep the teacher's signature only
        slot.getparent().remove(slot)
    stripped = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    result = _xmlsec(stripped, "sig-homeroom_teacher", dep, tmp_path)
    assert result.returncode == 0 and "OK" in result.stderr, result.stderr  # what is left verifies alone
    report = dep.xml_verifier.verify(stripped)
    assert report.verdict == "invalid" and "SIGNER_POLICY_FAILURE" in _codes(report), _text(report)
    assert "A required signature is missing" in _text(report)
    assert report.signatures[0].indication == "valid"
    path = tmp_path / "teacher-only.xml"
    path.write_bytes(stripped)
    result2 = _cli_verify(dep, path)
    assert result2.exit_code == 1 and "A required signature is missing" in result2.output  # type: ignore[attr-defined]


def test_xml_role_label_not_covered_by_the_signature_is_invalid(setup: Installed, tmp_path: Path) -> None:
    """The diploma's principal slot relabelled: the VaiTro attribute is outside every signature, so only the
    signed ClaimedRole may say who signed; a label that differs from it is a forgery of the shown role."""
    dep, docs = setup
    root = etree.fromstring(docs[0].xml)
    principal = _slots(root)[0]
    assert principal.get("VaiTro") == "principal"
    principal.set("VaiTro", "homeroom_teacher")
    relabelled = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    assert _xmlsec(relabelled, "sig-principal", dep, tmp_path).returncode == 0  # the signature does not see it
    report = check_upload(dep, relabelled).report
    assert report.verdict == "invalid" and "SIGNER_POLICY_FAILURE" in _codes(report), _text(report)
    assert "is not the role the signature covers" in _text(report)


def test_xml_whose_signed_role_is_missing_is_invalid(setup: Installed) -> None:
    """A signature without a ClaimedRole inside SignedProperties (stripping it breaks the signature; so this is
    checked on the policy directly with what the verifier would extract)."""
    dep, _docs = setup
    cert = dep.dev_pki.cert("seal")
    reasons = policy.check("copy", [SignedRole(None, cert, label="seal")])
    assert reasons and reasons[0].code == "SIGNER_POLICY_FAILURE"
    assert "signed property" in reasons[0].en


# --- the rules as data ------------------------------------------------------------------------------------------


def test_rules_order_seal_last_and_distinct_subjects(setup: Installed) -> None:
    dep, _docs = setup
    pki = dep.dev_pki
    teacher, principal, seal = (pki.cert(r) for r in ("homeroom_teacher", "principal", "seal"))
    good = [SignedRole("homeroom_teacher", teacher), SignedRole("principal", principal), SignedRole("seal", seal)]
    assert policy.check("transcript", good) == []
    assert policy.check("diploma", good[1:]) == []
    swapped = [good[1], good[0], good[2]]
    assert "not in the required order" in " ".join(r.en for r in policy.check("transcript", swapped))
    seal_first = [good[2], good[0], good[1]]
    assert "seal must be the last" in " ".join(r.en for r in policy.check("transcript", seal_first))
    extra = policy.check("copy", [good[0], good[2]])
    assert "does not have" in " ".join(r.en for r in extra)
    # another certificate of the same subject (a renewed key) is still the same person
    renewed = SignedRole("principal", teacher)
    same_person = policy.check("transcript", [good[0], renewed, good[2]])
    assert "One signer holds two roles" in " ".join(r.en for r in same_person)


def test_pdf_field_name_role_is_accepted_only_for_older_documents(setup: Installed) -> None:
    from datetime import UTC, datetime

    dep, _docs = setup
    seal = dep.dev_pki.cert("seal")
    old = SignedRole("seal", seal, datetime(2026, 6, 1, tzinfo=UTC), role_from_field_name=True)
    new = SignedRole("seal", seal, datetime(2027, 2, 1, tzinfo=UTC), role_from_field_name=True)
    assert policy.check("copy", [old]) == []
    assert "signed attribute" in " ".join(r.en for r in policy.check("copy", [new]))


def test_registry_hook_refuses_an_unregistered_signer(setup: Installed) -> None:
    """The deployment's SignerRegistry (issue #21) is consulted for each role and issuer; False is invalid."""
    dep, docs = setup
    asked: list[tuple[str, str | None]] = []

    def registry(role: str, issuer: str | None, certificate: object, when: object) -> bool | None:
        asked.append((role, issuer))
        return role != "principal"

    from verifier.xml import XmlVerifier

    checker = XmlVerifier(dep.trust_roots, dep.intermediates)
    checker.signer_registry = registry
    report = checker.verify(docs[0].xml)
    assert report.verdict == "invalid" and "not registered for the role" in _text(report)
    school = schemas.parse_document(schemas.load_sample("diploma_thpt")).issuer.code
    assert asked == [("principal", school), ("seal", school)]
