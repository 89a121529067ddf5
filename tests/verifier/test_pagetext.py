"""The attached XML must say what the pages show: renders signed with a swapped attachment are caught by comparing
the XML's key data with the text poppler's pdftotext extracts from the pages."""

from __future__ import annotations

import pytest

import schemas
from hsm_adapters.soft import SoftKeyBackend
from schemas.xml import to_xml
from sealtrail.devpki import DevPki
from signer.issue import ROLE_ORDER
from signer.pdf import PadesSigner, SignatureRequest
from signer.render import Renderer
from verifier.pdf import PdfReport, PdfVerifier


def _signed_render(dev_pki: DevPki, shown: schemas.Document, attached: schemas.Document) -> bytes:
    """A render of ``shown`` whose PDF/A-3 attachment is the XML of ``attached``, signed by each of its slots'
    roles in the law's order (the signer policy: teacher, principal, seal; the seal locks it)."""
    rendered = Renderer().render(shown, doc_id="VB-TEST", qr_payload="https://a.vn/v/x", xml=to_xml(attached))
    signer = PadesSigner(trust_roots=[dev_pki.root], other_certs=[dev_pki.issuing_ca], timestamp_urls=[dev_pki.tsa_url])
    pdf = rendered.pdf
    slots = sorted(rendered.slots, key=lambda s: ROLE_ORDER.index(s.role))
    for i, slot in enumerate(slots):
        backend = SoftKeyBackend.from_pkcs12(dev_pki.p12_path(slot.role))
        request = SignatureRequest(slot.field_name, slot.role, "test", lock_document=i == len(slots) - 1)
        pdf = signer.sign(pdf, backend, request)
    return pdf


def _verify(dev_pki: DevPki, pdf: bytes) -> PdfReport:
    return PdfVerifier([dev_pki.root], [dev_pki.issuing_ca]).verify(pdf)


def _mismatch(report: PdfReport) -> str:
    (reason,) = [r for r in report.reasons if r.code == "ATTACHMENT_MISMATCH"]
    return reason.en


@pytest.mark.parametrize("sample", ["diploma_thpt", "transcript_thcs", "transcript_thpt", "transcript_primary"])
def test_a_matching_attachment_is_valid(dev_pki: DevPki, sample: str) -> None:
    doc = schemas.parse_document(schemas.load_sample(sample))
    report = _verify(dev_pki, _signed_render(dev_pki, doc, doc))
    assert report.verdict == "valid", report.reasons


def test_a_diploma_whose_attachment_names_someone_else_is_invalid(dev_pki: DevPki) -> None:
    shown = schemas.parse_document(schemas.load_sample("diploma_thpt"))
    assert isinstance(shown, schemas.Diploma)
    holder = shown.holder.model_copy(
        update={"given_name": "Hương", "birth_date": shown.holder.birth_date.replace(day=1)}
    )
    swapped = shown.model_copy(update={"holder": holder, "diploma_number": "HN 9999999"})
    report = _verify(dev_pki, _signed_render(dev_pki, shown, swapped))
    assert report.verdict == "invalid"
    assert all(s.indication == "valid" for s in report.signatures)  # the signatures are fine: the data is not
    why = _mismatch(report)
    assert "holder name" in why and "birth date" in why and "diploma number" in why and "register" not in why


def test_a_transcript_whose_attachment_swaps_two_subjects_scores_is_invalid(dev_pki: DevPki) -> None:
    """Each subject stays self-consistent (so the XSD and the averages check pass), but the page disagrees."""
    shown = schemas.parse_document(schemas.load_sample("transcript_thcs"))
    assert isinstance(shown, schemas.Transcript)
    year = shown.years[0]
    maths = next(s for s in year.subjects if s.subject == "Toán")
    literature = next(s for s in year.subjects if s.subject == "Ngữ văn")
    scores = ("hk1", "hk2", "year_average")
    swap = {
        id(maths): maths.model_copy(update={k: getattr(literature, k) for k in scores}),
        id(literature): literature.model_copy(update={k: getattr(maths, k) for k in scores}),
    }
    subjects = tuple(swap.get(id(s), s) for s in year.subjects)
    swapped = shown.model_copy(update={"years": (year.model_copy(update={"subjects": subjects}), *shown.years[1:])})
    report = _verify(dev_pki, _signed_render(dev_pki, shown, swapped))
    assert report.verdict == "invalid", report.reasons
    assert _mismatch(report).endswith(f"{year.school_year} Ngữ văn, {year.school_year} Toán")


def test_without_pdftotext_the_check_is_indeterminate(dev_pki: DevPki, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = schemas.parse_document(schemas.load_sample("diploma_thpt"))
    pdf = _signed_render(dev_pki, doc, doc)
    monkeypatch.setenv("PATH", "/nonexistent")
    report = _verify(dev_pki, pdf)
    assert report.verdict == "indeterminate"
    assert "PAGE_TEXT_UNAVAILABLE" in {r.code for r in report.reasons}
